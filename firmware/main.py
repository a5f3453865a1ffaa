"""Board entry point: build the board, load the configuration, run the loop.

boot.py has already driven both valves closed and mounted the
flash. Whatever happens here — an exception at start-up, an uncaught
exception in the loop, a KeyboardInterrupt from the console — the
``finally`` below de-energises both valves before the interpreter returns to
the REPL; a hardware watchdog that is no longer fed then resets the board.

Serial line: during a treatment (PRECOOL/FREEZE/THAW) the controller turns
Ctrl-C off (``micropython.kbd_intr(-1)``) so nothing on the console can
interrupt the loop; when idle Ctrl-C works and the host's command channel
(``cryo.link``, polled between ticks) can ask for service mode, which stops
the loop with the valves closed and leaves the REPL to the service tools.
"""

import micropython

# Ctrl-C off before anything else. The port turns it on for every file it
# runs (pyexec), boot.py's setting included; interrupted in the imports
# below, main.py would end into an open REPL on a locked device. Two
# straight-line statements: a Ctrl-C that came earlier is raised at the
# first jump, in the loop, and caught there. main() opens the console again
# on a development device.
micropython.kbd_intr(-1)
try:
    for _i in range(2):
        pass
except KeyboardInterrupt:
    pass

if hasattr(micropython, "alloc_emergency_exception_buf"):  # absent on the unix port
    micropython.alloc_emergency_exception_buf(100)

# Every file is named from the flash root boot.py set (cryo.paths.set_root:
# "/" or the pyboard's "/flash"), at use, not at import.
from cryo import paths  # noqa: E402 - after Ctrl-C is off


def _optional(what, fn):
    """A store on the flash that could not be opened (OSError: a damaged or
    full filesystem; ValueError: a bad setting) is reported and left out:
    the controller then blocks treatment (STORAGE) instead of not starting,
    so the valves stay closed and the service link stays up."""
    try:
        return fn()
    except (OSError, ValueError) as e:
        print("main: %s unavailable: %r" % (what, e))
        return None


def _load_config(key, locked):
    """(cfg, fault) from storage, or ({}, None) when no config file exists.

    ``key``: the device key of a provisioned (``locked``) device, which MACs
    its configuration (``cryo.storage.config``). There, a missing file is
    no factory state (provisioning seals one, ``host_tools.keys``) and an
    unreadable key cannot check one: both refuse treatment (CONFIG) with
    the reason, rather than run on defaults nobody chose."""
    import os

    from cryo.storage import config as cfgstore

    problem = None
    config_path = paths.on_flash(paths.CONFIG_PATH)
    if locked and key is None:
        problem = "%s: cannot be checked: the device key in %s is unreadable; provision again" % (
            paths.CONFIG_PATH,
            paths.AUTH_PATH,
        )
    else:
        try:
            os.stat(config_path)
        except OSError:
            try:
                os.stat(config_path + ".lkg")
            except OSError:
                if not locked:
                    return {}, None  # factory state: built-in defaults
                problem = (
                    "%s: missing on a provisioned device (deleted outside the firmware?); %s"
                    % (
                        paths.CONFIG_PATH,
                        cfgstore.REWRITE,
                    )
                )
    if problem is not None:
        fault = cfgstore.ConfigFault(cfgstore.FAULT_UNUSABLE, [problem], None)
    else:
        cfg, fault = cfgstore.load(config_path, key=key)
        if fault is None:
            return cfg, None
    print("main:", fault)
    return (cfg if fault.code == cfgstore.FAULT_FALLBACK else {}), fault


def _boot_app():
    """boot.py's app selection (``APP``), if boot.py ran in this namespace.

    On a board boot.py and main.py share one global namespace, so ``APP``
    is a global here; imported as a module (tests, the virtual board) there
    is none and the firmware runs unverified from the source tree
    (``fault`` 0, no manifest hash).
    """
    return globals().get("APP")


def build(board=None, app=None, locked=False):
    """Board, controller and command channel (no loop yet).

    ``app``: boot's app selection result (default: boot.py's ``APP``). Its
    ``fault`` raises the FIRMWARE interlock condition (treatment blocked
    until a service acknowledgement, or for good when no app is authentic);
    its ``manifest_sha256`` is the session headers' ``fw_hash``.
    """
    from cryo import board as cboard
    from cryo.controller import Controller
    from cryo.storage.safety_state import SafetyState

    if app is None:
        app = _boot_app()

    if board is None:
        board = cboard.build()
    from cryo.link.auth import load_audit_key

    # a provisioned device keys its audit entries and its configuration file
    key = load_audit_key(paths.on_flash(paths.AUTH_PATH))
    cfg, fault = _load_config(key, locked)

    rtc = cboard.rtc_seconds(board)  # audit trail: seconds since 2000-01-01
    rtc_log = None if rtc is None else (lambda: (rtc(), 0))  # log: (s, ms)

    def make_log():
        from cryo.storage import log as logmod

        if "log.sample_hz" in cfg:
            # The stored log.* settings (rate, commit policy, space, retention).
            return logmod.from_config(cfg, clock=board.clock, rtc=rtc_log)
        return logmod.TreatmentLog(clock=board.clock, rtc=rtc_log)

    def make_audit():
        from cryo.storage.audit import AuditTrail

        return AuditTrail(paths.on_flash(paths.AUDIT_PATH), rtc=rtc, key=key)

    def make_events():
        from cryo.storage.events import DeviceEventLog

        return DeviceEventLog(rtc=rtc)

    log = _optional("treatment log", make_log)
    audit = _optional("audit trail", make_audit)
    events = _optional("device event log", make_events)
    ctl = Controller(
        board,
        cfg,
        log=log,
        audit=audit,
        config_fault=fault,
        app=app,
        state=SafetyState(),
        events=events,
        rtc=rtc_log,
        console_locked=locked,
        config_key=key,
    )

    def make_link():
        from cryo.link import auth
        from cryo.link.channel import CommandChannel
        from cryo.link.stdio import StdioStream

        s = StdioStream()
        # A provisioned device authenticates every state-changing command.
        a = auth.load(
            board.clock,
            paths.on_flash(paths.AUTH_PATH),
            paths.on_flash(paths.ROLES_PATH),
            paths.on_flash(paths.AUTH_FAILS_PATH),
        )
        if a is not None and a.problem:
            print("main: authentication:", a.problem)
        return CommandChannel(ctl, s, s, auth=a)

    ctl.attach_link(_optional("command channel", make_link))
    return board, ctl


def provisioned():
    """True on a provisioned device (``auth.txt`` on the flash): it is
    locked - Ctrl-C off, the command link the only interface, the REPL
    only through an authenticated service unlock (docs/security.md)."""
    import os

    try:
        os.stat(paths.on_flash(paths.AUTH_PATH))
        return True
    except OSError:
        return False


def main(board=None, app=None):
    locked = provisioned()
    if locked:
        _lock_again()
    else:
        micropython.kbd_intr(3)  # a development device: Ctrl-C stops the loop
    ctl = None
    unlocked = False
    try:
        board, ctl = build(board, app, locked)
        ctl.run()
        if ctl.reset_requested:
            ctl.safe()
            print("main: reset requested by %s" % ctl.service_role)
            board.reset()  # never returns
        if ctl.service_requested:
            print("main: service mode (%s): control loop stopped, valves closed" % ctl.service_role)
            unlocked = locked and _unlock(ctl)
        return ctl
    finally:
        # Valves closed whatever got us here (exception, Ctrl-C, service).
        try:
            if ctl is not None:
                ctl.safe()
            elif board is not None:
                board.safe_outputs()
            else:
                from cryo import board as cboard

                cboard.safe_valves()
        finally:
            if locked and not unlocked:
                _halt()  # never returns: no REPL on a locked device
            micropython.kbd_intr(3)


def _lock_again():
    """main.py runs: any service unlock has ended, and boot.py's reset timer
    (armed in case main.py never ran) is no longer needed."""
    from cryo.link import unlock

    t = globals().get("BOOT", {}).get("timer")
    if t is not None:
        t.deinit()
    unlock.end(paths.on_flash(paths.AUTH_UNLOCK_PATH))


def _unlock(ctl):
    """The authenticated service unlock of a locked device (the channel
    granted it to the service role and the controller audited it): the REPL
    for ``unlock_s`` seconds, then a hard reset; any reset ends it sooner."""
    from cryo.link import unlock

    s = ctl.link.unlock_s if ctl.link is not None else 0
    if not s:
        return False
    # the timer stays referenced while it runs
    globals()["_UNLOCK_TIMER"] = unlock.begin(paths.on_flash(paths.AUTH_UNLOCK_PATH), ctl.clock, s)
    print("main: service unlock for %d s: REPL open until then or the next reset" % s)
    return True


def _halt():
    """A locked device whose controller stopped without an unlock: valves
    are closed; restart the board instead of returning to the REPL."""
    import time

    from cryo import board as cboard

    print("main: locked device: controller stopped; restarting")
    try:
        t = cboard.reset_after(500)
    except Exception:  # noqa: BLE001 - no timer: stay here, valves closed, until power-off
        t = None
    while True:
        time.sleep_ms(100 if t is not None else 1000)


if __name__ == "__main__":
    main()
