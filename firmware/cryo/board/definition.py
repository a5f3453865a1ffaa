"""The board definition (``board.json``): its schema, checked once.

``validate(defn)`` raises ``BoardError`` naming the first missing or wrong
field, before ``cryo.board.Board`` builds anything from it; ``CHANNELS``
are the thermocouple channel names a definition may use. Data and checks
only (no ``machine``): the boot layer ships it beside ``cryo/board``.
"""

# The thermocouple channels a board may fit, by name; the index is the
# interlock's channel number (0 tissue, required; 1 redundant tissue; 2 the
# line/nozzle; 3 the independent skin probe on its own connector and chip).
# Defined here, in the boot layer, for everything above it.
CHANNELS = ("tissue", "tissue2", "aux", "tissue3")
_REQUIRED = ("spi", "thermocouples", "valve", "master_valve", "inputs")
_INPUTS = ("estop", "footswitch", "handpiece")
_OPTIONAL_INPUTS = ("valve_supply",)


class BoardError(ValueError):
    """The board definition is wrong; the message names the field."""


def pin_id(spec, where):
    if not isinstance(spec, dict) or "pin" not in spec:
        raise BoardError("board definition: %s needs a 'pin' field" % where)
    pid = spec["pin"]
    if isinstance(pid, bool) or not isinstance(pid, (int, str)):
        raise BoardError(
            "board definition: %s.pin must be an int or a pin name, got %r" % (where, pid)
        )
    return pid


def validate(defn):
    """Raise BoardError naming the first missing or wrong field."""
    if not isinstance(defn, dict):
        raise BoardError("board definition must be a JSON object")
    for k in _REQUIRED:
        if k not in defn:
            raise BoardError(
                "board definition: field %r is missing (required: %s)" % (k, ", ".join(_REQUIRED))
            )
    tcs = defn["thermocouples"]
    if not isinstance(tcs, dict) or "tissue" not in tcs:
        raise BoardError(
            "board definition: 'thermocouples' must map channel names to chips and include 'tissue'"
        )
    for name, spec in tcs.items():
        if name not in CHANNELS:
            raise BoardError(
                "board definition: thermocouple channel %r unknown; allowed: %s"
                % (name, ", ".join(CHANNELS))
            )
        if spec.get("chip") not in ("max31855", "max31856"):
            raise BoardError(
                "board definition: thermocouples.%s.chip must be 'max31855' or 'max31856'" % name
            )
        if spec.get("type", "K") not in ("K", "T"):
            raise BoardError("board definition: thermocouples.%s.type must be 'K' or 'T'" % name)
        if "cs" not in spec:
            raise BoardError("board definition: thermocouples.%s needs a 'cs' pin" % name)
    spi = defn["spi"]
    pins = [k for k in ("sck", "mosi", "miso") if k in spi] if isinstance(spi, dict) else ()
    if not isinstance(spi, dict) or len(pins) not in (0, 3):
        raise BoardError(
            "board definition: spi must be an object giving sck, mosi and miso together, or "
            "none of them (the bus id fixes the pins, as on stm32); got %s"
            % (", ".join(pins) if pins else repr(spi))
        )
    inputs = defn["inputs"]
    if not isinstance(inputs, dict):
        raise BoardError("board definition: 'inputs' must map input roles to pins")
    for role in inputs:
        if role not in _INPUTS and role not in _OPTIONAL_INPUTS:
            raise BoardError(
                "board definition: input %r unknown; allowed: %s"
                % (role, ", ".join(_INPUTS + _OPTIONAL_INPUTS))
            )
    for role in _INPUTS + _OPTIONAL_INPUTS:
        if role not in inputs:
            if role in _OPTIONAL_INPUTS:
                continue
            raise BoardError("board definition: inputs.%s is missing" % role)
        spec = inputs[role]
        pin_id(spec, "inputs." + role)
        if spec.get("pull") not in ("up", "down", None):
            raise BoardError(
                "board definition: inputs.%s.pull must be 'up', 'down' or null (no pull)" % role
            )
        if not isinstance(spec.get("invert", False), bool):
            raise BoardError("board definition: inputs.%s.invert must be true or false" % role)
    if not isinstance(inputs["estop"].get("irq_hard", False), bool):
        raise BoardError(
            "board definition: inputs.estop.irq_hard must be true (hard pin interrupt: rp2, "
            "stm32) or false (soft: esp32, whose Pin.irq has no 'hard'), got %r"
            % (inputs["estop"]["irq_hard"],)
        )
    _validate_valve(defn["valve"])
    if "safety_timer" in defn:
        _validate_safety_timer(defn["safety_timer"])


# The cryogen valve: an on/off solenoid (default) or a PWM-driven
# proportional valve, and the PWM frequencies a definition may give it.
VALVE_KINDS = ("solenoid", "proportional")
VALVE_FREQ = (20, 20000)


def _validate_valve(v):
    """``{"pin", "kind": "solenoid"|"proportional", ...}``: the cryogen valve.

    A solenoid (the default) is a Pin, time-proportioned by the firmware; a
    proportional valve is driven by ``machine.PWM`` at ``freq`` Hz, its
    duty the opening, and demands below ``min_demand`` (its cracking point)
    close it. Both are normally closed (``active_high``)."""
    if not isinstance(v, dict):
        raise BoardError('board definition: valve must be an object like {"pin": 2}')
    pin_id(v, "valve")
    sc = v.get("service_cycles")
    if sc is not None and (isinstance(sc, bool) or not isinstance(sc, int) or not 0 < sc < 1 << 30):
        raise BoardError(
            "board definition: valve.service_cycles must be an integer 1..2**30-1 (the fitted "
            "valve's rated cycles, with a margin), got %r" % (sc,)
        )
    kind = v.get("kind", "solenoid")
    if kind not in VALVE_KINDS:
        raise BoardError(
            "board definition: valve.kind %r unknown; allowed: %s" % (kind, ", ".join(VALVE_KINDS))
        )
    if kind == "solenoid":
        for k in ("freq", "min_demand"):
            if k in v:
                raise BoardError(
                    "board definition: valve.%s is for a proportional valve only "
                    '("kind": "proportional"); a solenoid has no PWM' % k
                )
        return
    if v.get("active_high", True) is not True:
        raise BoardError(
            "board definition: a proportional valve must be active_high (duty 0 = closed: a "
            "normally closed valve whose driver's gate pull-down closes it at reset)"
        )
    f = v.get("freq")
    if isinstance(f, bool) or not isinstance(f, int) or not VALVE_FREQ[0] <= f <= VALVE_FREQ[1]:
        raise BoardError(
            "board definition: valve.freq must be the proportional valve driver's PWM frequency, "
            "an integer %d..%d Hz (the valve's data sheet), got %r" % (VALVE_FREQ + (f,))
        )
    md = v.get("min_demand", 0.0)
    if isinstance(md, bool) or not isinstance(md, (int, float)) or not 0.0 <= md < 0.5:
        raise BoardError(
            "board definition: valve.min_demand must be a number 0 <= x < 0.5 (the valve's "
            "cracking point as a fraction of full opening: lower demands close it), got %r" % (md,)
        )


def _validate_safety_timer(st):
    """``{"id": int, "hard": bool}``: which ``machine.Timer`` watches the loop."""
    if not isinstance(st, dict):
        raise BoardError(
            'board definition: safety_timer must be an object like {"id": -1, "hard": true}'
        )
    for k in st:
        if k not in ("id", "hard"):
            raise BoardError("board definition: safety_timer.%s unknown; allowed: id, hard" % k)
    tid = st.get("id")
    if isinstance(tid, bool) or not isinstance(tid, int) or tid < -1:
        raise BoardError(
            "board definition: safety_timer.id must be a machine.Timer id: -1 (virtual "
            "timer: rp2, stm32) or a hardware timer >= 0 (esp32: 0-3), got %r" % (tid,)
        )
    if not isinstance(st.get("hard", False), bool):
        raise BoardError(
            "board definition: safety_timer.hard must be true (callback in hard interrupt "
            "context) or false (scheduled), got %r" % (st["hard"],)
        )
