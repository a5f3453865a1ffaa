"""Proof of the cryogen solenoid at the start of every FREEZE.

A solenoid stuck open that the regulator absorbs (its demand drops but
never stays at zero for long: the extra cryogen holds the target) shows
nothing to a watch that waits for a zero demand, and the master valve
closes it off in every THAW, so the fault stays latent until the cryogen
is wanted again. The proof makes the evidence: on entering FREEZE the
interlock opens the master valve but holds the solenoid's permit back,
and the line (aux) and tissue thermocouples must show that nothing flows
before the solenoid may open:

* after a grace ``L_STUCK_GRACE_MS`` (the line's dead time and the
  sensors' lag), the tissue must not fall by ``L_STUCK_DROP`` — on both
  tissue channels when the redundant one is fitted (the spray cools the
  skin under both; a noisy probe moves one). The redundant channel is
  compared in its own codes against the same count: on a finer scale
  (MAX31856) that is a smaller fall, so the pair is never less sensitive
  than the tissue channel alone;
* the line passes the proof as soon as it warms by ``L_AUX_RISE`` above
  its lowest reading after the grace (nothing flows);
* a line that rested during the grace must not then fall by
  ``L_AUX_DROP`` (after a PRECOOL the reading keeps falling for a while
  after the flow stopped: that fall is no evidence);
* by the grace + 2 x ``L_STUCK_MS`` a line still colder than
  ``L_DEPL_AUX`` (liquid at the nozzle) that never warmed is stuck open;
  otherwise the proof passes.

With a working solenoid the proof costs the time the line needs to show
it warms (about a second after a PRECOOL or a THAW); a stuck one is found
with the master valve the only cryogen it has delivered. Both readings go
through the same integer low-pass as the stuck-open watch (an eighth of
the way per evaluation, x8 fixed point), so probe noise cannot pass or
fail it. Integer-only and allocation-free (the interlock's safety path).
"""

from micropython import const

from cryo.interlock import block as B

_OFF = const(0)  # no proof running
_RUN = const(1)  # proof started, no sample yet
_GRACE = const(2)  # proof running, before the grace ends
_REF = const(3)  # proof running, references taken
_LP = const(3)  # low-pass shift (x8 fixed point), as in cryo.interlock.stuck

PASS = const(1)
STUCK = const(2)


class SolenoidProof:
    def __init__(self, clock):
        self._clock = clock
        self._st = _OFF
        self.running = 0  # 1 while a proof runs (read by the interlock every evaluation)
        self._t0 = clock.ticks_ms()
        self._seed = True
        self._ts = 0  # tissue low-pass, x8
        self._t2 = 0  # redundant tissue low-pass, x8
        self._as = 0  # line low-pass, x8
        self._amin = 0  # lowest line low-pass since the grace ended
        self._tref = 0  # tissue low-pass at the grace's end
        self._t2ref = 0
        self._aref = 0  # line low-pass at the grace's end
        self._still = 0  # the line did not fall during the grace

    def start(self, now):
        """FREEZE entered: the solenoid stays closed until the proof passes."""
        self._st = _RUN
        self.running = 1
        self._t0 = now
        self._seed = True

    def cancel(self):
        self._st = _OFF
        self.running = 0

    def check(self, now, lim, code, aux_live, two):
        """0 while the proof runs (or none runs), PASS or STUCK once decided
        (the proof then ends). ``two``: the redundant tissue channel is
        fitted."""
        if self._st == _OFF:
            return 0
        t = code[B.TISSUE]
        a = code[B.AUX]
        if self._seed:
            self._seed = False
            self._ts = t << _LP
            self._t2 = code[B.TISSUE2] << _LP
            self._as = a << _LP
            self._amin = self._as
            self._aref = self._as  # the line at the proof's start
            self._st = _GRACE
        else:
            self._ts += t - (self._ts >> _LP)
            self._t2 += code[B.TISSUE2] - (self._t2 >> _LP)
            self._as += a - (self._as >> _LP)
        t = self._ts
        a = self._as
        if a < self._amin:
            self._amin = a
        age = self._clock.diff(now, self._t0)
        grace = lim[B.L_STUCK_GRACE_MS]
        if age < grace:
            return 0  # the line's dead time: cryogen may still be on its way
        if self._st == _GRACE:
            self._st = _REF
            self._tref = t
            self._t2ref = self._t2
            # The line fell during the grace: the sensor's lag after a
            # PRECOOL (or cryogen already). Its further fall is no evidence
            # then; only a warming line passes.
            # (Shifted only with a line sensor: without one its limits are
            # 2**28 and would leave the small ints.)
            self._still = 1 if aux_live and self._aref - a < lim[B.L_AUX_DROP] << _LP else 0
            self._aref = a
            self._amin = a  # a rise counts from here: cryogen could have arrived
            return 0
        drop = lim[B.L_STUCK_DROP] << _LP
        if self._tref - t >= drop and (not two or self._t2ref - self._t2 >= drop):
            return self._end(STUCK)  # the tissue falls with the solenoid closed
        if aux_live:
            if lim[B.L_AUX_RISE] > 0 and a - self._amin >= lim[B.L_AUX_RISE] << _LP:
                return self._end(PASS)  # the line warms: nothing flows
            if self._still and self._aref - a >= lim[B.L_AUX_DROP] << _LP:
                return self._end(STUCK)  # a resting line chills
            if age >= grace + 2 * lim[B.L_STUCK_MS]:
                # A cold line that never warmed: liquid still arrives.
                return self._end(STUCK if a < lim[B.L_DEPL_AUX] << _LP else PASS)
            return 0
        if age >= grace + lim[B.L_STUCK_MS]:
            return self._end(PASS)
        return 0

    def _end(self, verdict):
        self._st = _OFF
        self.running = 0
        return verdict

    def arm_for_proof(self, now, ref):
        """Allocation proofs only: a proof past its grace with the tissue
        reference ``ref`` (so the next check finds the tissue fallen)."""
        self._st = _REF
        self.running = 1
        self._t0 = self._clock.add(now, -100000)
        self._tref = ref << _LP
        self._t2ref = self._t2 + (1000 << _LP)
        self._seed = False
