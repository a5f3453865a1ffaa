"""Treatment logs of many kinds, written by the firmware's own log code on a virtual board.

Session ``i`` (0-based, numbered on across writes) starts ``start_day + 3 i``
days after 2026-09-01 UTC; its valve opens ``2 + i % 4`` times (FREEZE while
open, THAW while closed: a phase event at each change; the session ends with
the firmware's valve-cycle event, session and lifetime count, but for
session 1, logged as by a firmware without the counter), the tissue cooling
toward -34 degC when ``i`` is even (it reaches the -30 degC target) and
toward -26 degC when odd (it does not); it ends in a fault (outcome
"fault", interlock condition ``i % 18``) when ``i % 3 == 2``, else completed.
Every header carries the firmware's own hash (``fw_hash(fw)``, distinct
per version) and the configuration's (``CONFIG_HASH``, another). A write
with ``clock=False`` is a board whose RTC was never set: its records carry
RTC time 0. Also two audit entries per write (a config change, a fault
acknowledgement, at the time of the write's first session), or with
``restart_audit=True`` a wiped trail holding one new entry (an
acknowledgement) that numbers from 1 again; and device events (a boot, each
fault); the safety state latches the conditions of the write's faulted
sessions, counts a boot per session and the valve's lifetime cycles. What
the tests expect follows from these rules, stated once here (``expected``).
"""

import hashlib

from host_tools.virtual.port import write_demo_treatment

RTC_2026_09_01 = 841536000  # seconds since 2000-01-01 UTC
CONFIG_HASH = hashlib.sha256(b"the test treatments' configuration").hexdigest()


def fw_hash(fw: str) -> str:
    """The firmware image hash a board running version ``fw`` logs (SHA-256, hex)."""
    return hashlib.sha256(b"firmware image " + fw.encode()).hexdigest()


SCRIPT = """
from cryo.storage.log import TreatmentLog
from cryo.storage.audit import AuditTrail
from cryo.storage.events import DeviceEventLog
from cryo.storage.safety_state import SafetyState
from cryo.storage import records as R
from cryo.storage import device_records as D
START = START_DAY
CLOCK = CLOCK_SET
import os
if RESTART_AUDIT:
    for f in ('audit.log', 'audit.log.head'):
        try:
            os.remove(f)
        except OSError:
            pass
log = TreatmentLog({root!r}, sample_hz=10, segment_bytes=16384, max_bytes=1048576)
first = log.sessions()[-1]['session'] if log.sessions() else 0
trail = AuditTrail('audit.log')
dev = DeviceEventLog('events.bin', capacity=64)
dev.append(D.DEV_BOOT, 0, 1)
state = SafetyState('safety.bin')
lifetime = (state.load() or {{}}).get('valve_cycles', 0)
for k in range({sessions}):
    i = first + k
    rtc = RTC0 + (START + 3 * i) * 86400 if CLOCK else 0
    log.begin_session({{'rtc_s': rtc, 'rtc_ms': 0, 'fw_version': FW,
        'fw_hash': FW_HASH, 'config_hash': CONFIG_HASH, 'board_id': 'sim',
        'target_cc': -3000, 'thaw_cc': 0, 'freeze_ds': 200, 'cycles': 2, 'floor_cc': -6000,
        'max_freeze_ds': 600, 'min_thaw_ds': 300}}, now_ms=0)
    floor = -3400 if i % 2 == 0 else -2600
    opens = 2 + i % 4
    n = {seconds} * 10
    temp = 3200
    phase = 4
    log.event(R.EV_PHASE, 4, 3, now_ms=0)
    j = 0
    while j < n:
        valve = 1 if (j * 2 * opens // n) % 2 == 0 else 0
        ph = 4 if valve else 5
        if ph != phase:
            log.event(R.EV_PHASE, ph, phase, now_ms=j * 100)
            phase = ph
        temp += ((floor if valve else 3200) - temp) // (4 if valve else 6)
        log.sample(j * 100, temp + (j * 37) % 20 - 10, 240, -300, 80 * valve, valve, ph)
        j += 1
    t = (n - 1) * 100
    lifetime += opens
    if i > 0:  # session 1 was logged by a firmware without the valve counter
        log.event(R.EV_VALVE_CYCLES, opens, lifetime, now_ms=t)
    outcome = R.OUTCOME_COMPLETED
    if i % 3 == 2:
        log.event(R.EV_FAULT, i % 18, 3, now_ms=t)
        dev.append(D.DEV_FAULT, i % 18, 4)
        outcome = R.OUTCOME_FAULT
    log.end_session({{'outcome': outcome}}, now_ms=t)
latched = 0
for k in range({sessions}):
    if (first + k) % 3 == 2:
        latched |= 1 << ((first + k) % 18)
state.save(latched, 0, 0, boots=first + {sessions}, last_reset=0, valve_cycles=lifetime)
AT = RTC0 + (START + 3 * first) * 86400 if CLOCK else 0
if not RESTART_AUDIT:
    trail.config_change(AT, 'engineer', 'pid.kp', 0.174, 0.2)
trail.fault_ack(AT + 60 if CLOCK else 0, 'operator', 'sensor')
log.close()
dev.close()
print('@@OK@@')
"""


def _bytes_literal(hex_digits):
    # a list of ints: neither format braces nor placeholder names can appear in it
    return "bytes(%r)" % list(bytes.fromhex(hex_digits))


def write(image, sessions, seconds=20, start_day=0, fw="0.1.0", clock=True, restart_audit=False):
    script = (
        SCRIPT.replace("START_DAY", str(start_day))
        .replace("RTC0", str(RTC_2026_09_01))
        .replace("CLOCK_SET", str(clock))
        .replace("RESTART_AUDIT", str(restart_audit))
        .replace("FW_HASH", _bytes_literal(fw_hash(fw)))
        .replace("CONFIG_HASH", _bytes_literal(CONFIG_HASH))
        .replace("FW", repr(fw))
    )
    write_demo_treatment(image=image, seconds=seconds, sessions=sessions, treatment=script)


def expected(i):
    """What session ``i`` (0-based, across writes) should be indexed as."""
    from cryo.interlock.conditions import NAMES

    return {
        "session": i + 1,
        "target_reached": i % 2 == 0,
        "outcome": "fault" if i % 3 == 2 else "completed",
        "fault": NAMES[i % 18] if i % 3 == 2 else None,
        "valve_cycles": 2 + i % 4,
        "phase_events": 2 * (2 + i % 4),  # the first FREEZE, then one per change
        "lifetime_valve_cycles": None if i == 0 else sum(2 + k % 4 for k in range(i + 1)),
        "events": 2 * (2 + i % 4) + (i > 0) + (i % 3 == 2),  # phases, valve cycles, fault
    }


def pull(image, folder, serial, database=None):
    """Pull a virtual board's log into ``folder`` (and ``database``) through real mpremote."""
    from host_tools.archive import pull as archive_pull
    from host_tools.device.connect import Session
    from host_tools.virtual.port import VirtualPort

    with VirtualPort(image=image) as vp, Session(vp.port, stop_firmware=False) as s:
        return archive_pull.pull(s, folder, serial=serial, database=database)


def pull_all(boards, folder, database, go=None):
    """Pull ``(image, serial)`` after ``(image, serial)``, once ``go`` is set: a technician."""
    if go is not None:
        go.wait()
    for image, serial in boards:
        pull(image, folder, serial, database)
