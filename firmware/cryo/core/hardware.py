"""Hardware from the board definition: drivers, codes, identity.

Everything here runs once at construction (or when limits are rebuilt),
never in the safety path: the thermocouple driver per channel, the supply
pressure transducer's kPa → raw ADC code, the level that means
pressed/held/loop-closed for each input, the calibrated view of a driver
the limit block is built through, and the firmware identity for session
headers.
"""

from cryo.board import CHANNELS  # noqa: F401 - the controller's channel order


def board_def(board):
    d = getattr(board, "definition", None)
    if d is None:
        d = getattr(board, "config", None)
    return d if isinstance(d, dict) else {}


def make_sensor(board, name):
    """Driver for thermocouple channel ``name`` from the board definition."""
    spec = getattr(board, "tc", {}).get(name)
    if spec is None:
        spec = board_def(board).get("thermocouples", {}).get(name, {})
    chip = spec.get("chip", "max31855")
    tc_type = spec.get("type", "K")
    cs = board.cs[name]
    # Imported for the chip the board has: each driver module (and the
    # MAX31855's NIST tables) costs heap a board without that chip keeps.
    if chip == "max31856":
        from cryo.sensing.max31856 import MAX31856

        return MAX31856(board.spi, cs, tc_type, clock=board.clock)
    from cryo.sensing.max31855 import MAX31855

    return MAX31855(board.spi, cs, tc_type)


def pressure_code_fn(board):
    """kPa → raw ADC code for the board's pressure transducer (or None)."""
    if getattr(board, "pressure_adc", None) is None:
        return None
    spec = getattr(board, "pressure", None) or board_def(board).get("pressure_adc", {})
    fs = float(spec.get("full_scale_kpa", 400.0))
    zero = float(spec.get("zero_fraction", 0.1))
    span = float(spec.get("span_fraction", 0.8))

    def code(kpa):
        f = kpa / fs
        if f > 1.0:
            f = 1.0
        return int(65535 * (zero + span * f))

    return code


def active_level(board, role):
    """Pin level meaning pressed/held/loop-closed for input ``role``.

    cryo.board.Board returns raw pins and says which level is active
    (``active_level``); a board object without it is taken as active-high.
    """
    f = getattr(board, "active_level", None)
    if f is None:
        return 1
    try:
        return f(role)
    except (KeyError, ValueError):
        return 1


def fw_hash_of(app):
    """32-byte firmware identity from boot's app selection (zeros if none).

    ``manifest_sha256`` is the hex SHA-256 of the booted slot's manifest
    (every file's hash is in it), so it identifies the whole image.
    """
    h = app.get("manifest_sha256") if app else None
    if h:
        try:
            if isinstance(h, str):
                h = h.encode()
            if len(h) == 64:
                from binascii import unhexlify

                h = unhexlify(h)
            if len(h) == 32:
                return bytes(h)
        except (TypeError, ValueError):
            pass
    return b"\x00" * 32


class CalibratedCodes:
    """A driver seen through its channel's calibration, for the limit block:
    ``code_for(true_c)`` is the code of the reading that calibrates to
    ``true_c`` (``cryo.supervision.channel.Calibration.invert``). Control path only."""

    def __init__(self, drv, cal):
        self._drv = drv
        self._cal = cal

    def code_for(self, temp_c, cj_c=None, keep=False):
        return self._drv.code_for(self._cal.invert(temp_c), cj_c, keep)


def fw_version():
    import cryo

    return cryo.VERSION
