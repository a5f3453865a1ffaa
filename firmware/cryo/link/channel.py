"""The command channel: polled by the controller loop, never by the tick.

``CommandChannel(controller, stream_in, stream_out)``; the loop calls
``poll()`` in the slack after each control tick. One ``poll()`` does bounded
work whatever arrives:

* reads at most ``_RX_BUDGET`` bytes in ``_RX_CHUNK`` pieces
  (``stream_in.readinto`` must not block: ``cryo.link.stdio.StdioStream``
  guarantees that with ``select.poll``),
* completes and executes at most one frame (<= ``messages.MAX_LINE`` bytes,
  assembled in a preallocated bytearray; longer lines are discarded up to
  the next newline and answered with ``E_TOO_LONG``),
* emits at most one telemetry frame when due,
* writes what the output stream accepts from a preallocated ring
  (``cryo.link.outbox``; frames that do not fit are dropped and counted,
  never waited for).

An idle ``poll()`` (nothing to read, nothing due) allocates nothing. Every
rejected input gets an error reply and increments ``errors[code]``; nothing
else changes. Exceptions from the controller are caught and reported as
``E_INTERNAL``: the channel never raises into the control loop.

What the channel needs from the controller is documented in docs/link.md
("Controller interface").
"""

from micropython import const

from cryo.link import files
from cryo.link import messages as m
from cryo.link.errors import AuthFailed, Denied, Locked, NotNow
from cryo.link.framing import FrameError, encode, json_safe, payload_length
from cryo.link.outbox import Outbox
from cryo.link.parser import parse

_RX_CHUNK = const(64)
_RX_BUDGET = const(576)  # bytes scanned per poll: one MAX_LINE frame + slack
_NL = const(0x0A)


class CommandChannel:
    def __init__(
        self, controller, stream_in, stream_out, clock=None, tx_size=m.MAX_REPLY, auth=None
    ):
        self._ctl = controller
        # cryo.link.auth.Authenticator on a provisioned device; None: nothing
        # is authenticated (development device).
        self._auth = auth
        self._in = stream_in
        self._out = stream_out
        if clock is None:
            clock = controller.clock
        self._clock = clock
        self._line = bytearray(m.MAX_LINE)
        self._n = 0
        self._overflow = False
        self._rx = bytearray(_RX_CHUNK)
        self._rx_pos = 0
        self._rx_len = 0
        self._tx = Outbox(tx_size)
        self._tel_period = 0  # ms, 0 = off
        self._tel_due = 0
        self.tel_seq = 0
        self.unlock_s = 0  # a granted service unlock (locked device), seconds
        # Counters (read by `stats` and tests).
        self.frames = 0  # requests executed successfully
        self.rx_bytes = 0
        self.tx_bytes = 0
        self.tx_dropped = 0  # frames that did not fit the output ring
        self.internal = 0
        self.errors = {}
        for code in m.ERRORS:
            self.errors[code] = 0

    # ---- the loop's entry point -------------------------------------

    def poll(self):
        """Bounded, non-blocking work: read, maybe execute one frame, telemetry, write.

        Reads at most ``_RX_BUDGET`` bytes (one maximal frame) and stops at
        the first completed line, so one call per control tick already
        serves one request per tick. Returns True if it did anything (a
        loop with slack may call again), False when idle. Never raises: a
        failing stream counts in ``internal`` (the loop must not stop).
        """
        try:
            return self._poll()
        except Exception:  # noqa: BLE001 - never into the control loop
            self.internal += 1
            return False

    def _poll(self):
        busy = False
        self.tx_bytes += self._tx.flush(self._out)
        budget = _RX_BUDGET
        while budget > 0:
            if self._rx_pos >= self._rx_len:
                self._rx_pos = 0
                self._rx_len = 0
                try:
                    n = self._in.readinto(self._rx)
                except OSError:
                    n = 0
                if not n:
                    break
                self._rx_len = n
                self.rx_bytes += n
                budget -= n
            busy = True
            if self._scan():
                break
        if self._tel_period:
            now = self._clock.ticks_ms()
            if self._clock.diff(now, self._tel_due) >= 0:
                self._telemetry(now)
                busy = True
        self.tx_bytes += self._tx.flush(self._out)
        return busy

    @property
    def rx_pending(self):
        """Bytes read from the stream but not yet scanned."""
        return self._rx_len - self._rx_pos

    @property
    def telemetry_period_ms(self):
        return self._tel_period

    # ---- input ------------------------------------------------------

    def _scan(self):
        rx = self._rx
        line = self._line
        i = self._rx_pos
        end = self._rx_len
        n = self._n
        cap = len(line)
        while i < end:
            c = rx[i]
            i += 1
            if c == _NL:
                self._rx_pos = i
                self._n = 0
                if self._overflow:
                    self._overflow = False
                    self._error(None, m.E_TOO_LONG, "frame longer than %d bytes" % cap)
                    return True
                if n:
                    self._execute(n)
                    return True
                continue  # empty line: ignored
            if n < cap:
                line[n] = c
                n += 1
            else:
                self._overflow = True
        self._rx_pos = i
        self._n = n
        return False

    def _execute(self, n):
        rid = None
        try:
            rid, cmd, args = parse(self._line, n)
            if self._auth is not None and m.needs_auth(cmd, args):
                if "role" not in args:
                    raise FrameError(m.E_ARGS, "%s: missing field 'role'" % cmd)
                plen = payload_length(self._line, n)
                self._auth.verify(self._line, plen, cmd, args["role"], args.get(m.SEQ))
            reply = self._dispatch(cmd, args)
        except FrameError as e:
            # parse() sets e.rid; a FrameError raised while dispatching keeps None.
            self._error(rid if e.rid is None else e.rid, e.code, e.msg)
            return
        except ValueError as e:
            self._error(rid, m.E_INVALID, str(e))
            return
        except Denied as e:
            self._error(rid, m.E_DENIED, str(e))
            return
        except NotNow as e:
            self._error(rid, m.E_STATE, str(e))
            return
        except AuthFailed as e:
            self._error(rid, m.E_AUTH, str(e), {"required": e.required})
            return
        except Locked as e:
            self._error(rid, m.E_LOCKED, str(e), {"retry_s": e.retry_s, "fails": e.fails})
            return
        except Exception as e:  # noqa: BLE001 - never into the control loop
            self.internal += 1
            self._error(rid, m.E_INTERNAL, "%s: %s" % (type(e).__name__, e))
            return
        self.frames += 1
        reply["id"] = rid
        reply["ok"] = True
        self._send(reply)

    def _error(self, rid, code, msg, extra=None):
        self.errors[code] += 1
        reply = {"id": rid, "ok": False, "err": code, "msg": msg}
        if extra:
            reply.update(extra)
        self._send(reply)

    # ---- commands ---------------------------------------------------

    def _dispatch(self, cmd, args):
        if cmd == "status":
            return {"status": json_safe(self._ctl.status())}
        if cmd == "telemetry":
            return self._cmd_telemetry(args)
        if cmd == "get":
            return self._cmd_get(args["name"])
        if cmd == "set":
            return self._cmd_set(args["name"], args["value"], args["role"])
        if cmd == "hello":
            import cryo

            out = {"fw": cryo.VERSION, "proto": m.VERSION, "max_line": m.MAX_LINE}
            out["auth"] = self._auth is not None
            out["serial"] = files.serial()  # the host's archive folder
            if self._auth is not None:
                out["device"] = self._auth.device_id
            return out
        if cmd == "challenge":
            if self._auth is None:
                raise FrameError(
                    m.E_UNSUPPORTED,
                    "this device is not provisioned: its commands need no authentication",
                )
            return self._auth.challenge(args["role"], args.get(m.SESSION, False))
        if cmd == "stats":
            return {"stats": self.stats()}
        if cmd == "autotune" or cmd == "step":
            return self._cmd_run(cmd, args)
        # ack, service, reset, save, the log reads: role-checked one-shot actions
        role = args["role"]
        self._need(role, m.ACTION_ROLE[cmd], cmd)
        if cmd in m.FILE_COMMANDS:
            return self._files(cmd, args)
        if cmd == "ack":
            return {"result": json_safe(self._call("ack_fault", role))}
        if cmd == "service":
            unlock = 0
            if self._auth is not None:
                # a locked device: service mode is the REPL unlock
                self._need(role, m.UNLOCK_ROLE, "service mode on a provisioned device")
                unlock = self._unlock_seconds(args)
            self._call("request_service_mode", role)
            self.unlock_s = unlock
            return {"service": True, "unlock_s": unlock}
        if cmd == "reset":
            self._call("request_reset", role)
            return {"reset": True}
        return {"saved": json_safe(self._call("save_config", role))}  # save

    def _files(self, cmd, args):
        if cmd == "read":
            return files.read(args["path"], args["offset"], args.get("n", files.READ_MAX))
        if cmd == "list":
            return files.listing(args["path"], args.get("after", ""))
        return files.mark_pulled(getattr(self._ctl, "log", None), args["upto"])

    def _unlock_seconds(self, args):
        lo, default, hi = m.UNLOCK_S
        s = args.get("unlock_s", default)
        if not lo <= s <= hi:
            raise ValueError("unlock_s %d out of range: %d..%d seconds" % (s, lo, hi))
        return s

    def _need(self, role, needed, what):
        if not m.role_allows(role, needed):
            raise Denied("%s needs role %s or higher (got %s)" % (what, needed, role))

    def _call(self, name, *args):
        fn = getattr(self._ctl, name, None)
        if fn is None:
            raise FrameError(m.E_UNSUPPORTED, "this controller does not offer %s" % name)
        return fn(*args)

    def _cmd_telemetry(self, args):
        if "rate_hz" in args:
            rate = args["rate_hz"]
            if rate == 0:
                self._tel_period = 0
            elif m.TEL_MIN_HZ <= rate <= m.TEL_MAX_HZ:
                self._tel_period = int(1000 / rate + 0.5)
                self._tel_due = self._clock.ticks_ms()
            else:
                raise ValueError(
                    "telemetry rate_hz %s out of range: 0 (off) or %s..%s"
                    % (rate, m.TEL_MIN_HZ, m.TEL_MAX_HZ)
                )
        p = self._tel_period
        return {"rate_hz": round(1000 / p, 3) if p else 0, "period_ms": p}

    def _cmd_get(self, name):
        return {"name": name, "value": json_safe(self._call("get_param", name), None)}

    def _cmd_set(self, name, value, role):
        applied = self._call("set_param", name, value, role)
        return {"name": name, "value": json_safe(applied, None)}

    def _cmd_run(self, cmd, args):
        action = args["action"]
        if action not in m.RUN_ACTIONS:
            raise FrameError(
                m.E_ARGS,
                "%s: action %r unknown; allowed: %s" % (cmd, action, ", ".join(m.RUN_ACTIONS)),
            )
        base = "autotune" if cmd == "autotune" else "step_test"
        if action == "status":
            return {"state": self._run_status(base)}
        role = args.get("role")
        if role is None:
            raise FrameError(m.E_ARGS, "%s %s: missing field 'role'" % (cmd, action))
        self._need(role, m.ACTION_ROLE[cmd], "%s %s" % (cmd, action))
        if action == "stop":
            self._call("stop_" + base, "host request")
            return {"state": self._run_status(base)}
        params = {}
        for k in args:
            if k not in ("action", "role"):
                params[k] = args[k]
        self._call("start_" + base, params)
        return {"state": self._run_status(base)}

    def _run_status(self, base):
        # A recorded trace (up to minutes of samples) would not fit a frame;
        # the host records the response from telemetry instead.
        st = json_safe(self._call(base + "_status"), None)
        if type(st) is dict and "trace" in st:
            tr = st.pop("trace")
            st["trace_len"] = len(tr) if type(tr) is list else 0
        return st

    def stats(self):
        errs = {}
        for code in self.errors:
            if self.errors[code]:
                errs[code] = self.errors[code]
        return {
            "frames": self.frames,
            "errors": errs,
            "rx_bytes": self.rx_bytes,
            "tx_bytes": self.tx_bytes,
            "tx_dropped": self.tx_dropped,
            "internal": self.internal,
            "tel_seq": self.tel_seq,
        }

    # ---- output -----------------------------------------------------

    def _telemetry(self, now):
        self._tel_due = self._clock.add(self._tel_due, self._tel_period)
        if self._clock.diff(now, self._tel_due) >= 0:
            self._tel_due = self._clock.add(now, self._tel_period)  # fell behind: no burst
        self.tel_seq += 1
        try:
            obj = json_safe(self._ctl.status())
        except Exception:  # noqa: BLE001 - telemetry must not stop the loop
            self.internal += 1
            return
        obj["tel"] = self.tel_seq
        self._send(obj)

    def _send(self, obj):
        try:
            frame = encode(obj)
        except Exception:  # noqa: BLE001 - e.g. a controller value json cannot encode
            self.internal += 1
            frame = encode(
                {"id": obj.get("id"), "ok": False, "err": m.E_INTERNAL, "msg": "unencodable reply"}
            )
        n = len(frame)
        cap = self._tx.size
        if n > cap and "ok" in obj:  # a reply that can never fit: say so, don't go silent
            self.internal += 1
            frame = encode(
                {
                    "id": obj.get("id"),
                    "ok": False,
                    "err": m.E_INTERNAL,
                    "msg": "reply of %d bytes exceeds the %d-byte frame limit" % (n, cap),
                }
            )
        if not self._tx.put(frame):
            self.tx_dropped += 1
