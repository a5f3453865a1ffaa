"""Convert °C / s / kPa limits into the interlock's raw integer limit block.

Control path (floats allowed): runs when a parameter changes, when the
setpoint changes, and when the cold junction has moved by more than
``CJ_RESYNC_C`` since the last conversion. The MAX31855 reports a linear
reading referenced to its die, so the raw code of a fixed tissue temperature
moves with the cold junction; the MAX31856 linearises and its codes do not.
Both drivers' ``code_for(temp_c, cj_c)`` give the code the chip would report.
"""

from cryo.interlock import block as B

CJ_RESYNC_C = 0.5  # re-convert the limits when the cold junction moved this much
_SAT = (1 << 28) - 1


def _code(drv, temp_c, cj_c):
    # keep=True: every temperature here is converted again at each cold-
    # junction move, so the driver keeps its EMF (one polynomial per resync).
    return int(drv.code_for(temp_c, cj_c, True))


def codes_per_c(drv, at_c, cj_c):
    """Local slope of the driver's code scale (codes per °C) around ``at_c``."""
    d = _code(drv, at_c + 10.0, cj_c) - _code(drv, at_c - 10.0, cj_c)
    return d / 20.0 if d > 0 else 1.0


def _q_shift(slope):
    """Right shift that brings the code scale to >= 4 codes/°C (integrals stay small)."""
    q = 0
    while (slope / (1 << (q + 1))) >= 4.0 and q < 12:
        q += 1
    return q


def _clamp_int(x):
    x = int(x)
    if x > _SAT:
        return _SAT
    if x < -_SAT:
        return -_SAT
    return x


def _agreement(L, p, drv0, drv, cj_c, setpoint_c, i_m, i_b, i_max, i_shift):
    """Slots ``i_*``: a tissue channel's expected code from channel 0's,
    code ≈ B + (M * code0 >> shift), fitted through two tissue temperatures
    (the chips and thermocouple types may differ), and the disagreement
    limit in that channel's codes. No driver: a limit nothing can exceed."""
    if drv is None:
        L[i_m] = 1
        L[i_max] = 1 << 28
        return
    ta, tb = p["floor_c"], 35.0
    a0, b0 = _code(drv0, ta, cj_c), _code(drv0, tb, cj_c)
    a1, b1 = _code(drv, ta, cj_c), _code(drv, tb, cj_c)
    ratio = (b1 - a1) / (b0 - a0) if b0 != a0 else 1.0
    span0 = max(abs(_code(drv0, -200.0, cj_c)), abs(_code(drv0, 200.0, cj_c)), 1)
    shift = 12
    while shift > 0 and abs(ratio) * (1 << shift) * span0 >= (1 << 29):
        shift -= 1
    m = int(ratio * (1 << shift) + (0.5 if ratio >= 0 else -0.5))
    L[i_m] = m
    L[i_shift] = shift
    L[i_b] = a1 - ((m * a0) >> shift)
    L[i_max] = max(1, int(p["disagree_c"] * codes_per_c(drv, setpoint_c, cj_c) + 0.5))


def build(p, drv0, drv1, cj_c, setpoint_c, levels, pressure_code=None, drv_aux=None, drv3=None):
    """Full limit block (list of ints, length ``interlock.NL``) for params ``p``.

    ``drv0``/``drv1``/``drv3``: drivers of the tissue channels (``drv1``,
    ``drv3`` None when not fitted); ``cj_c``: present cold-junction temperature;
    ``setpoint_c``: the active tissue setpoint; ``levels``: the pin levels
    of a pressed footswitch, a held handpiece and a closed e-stop loop;
    ``pressure_code(kpa)`` maps a supply pressure to the raw ADC code (None:
    no pressure sensor).
    """
    L = [0] * B.NL
    slope = codes_per_c(drv0, setpoint_c, cj_c)
    q = _q_shift(slope)
    qs = slope / (1 << q)  # shifted codes per °C used by the integrals
    L[B.L_FLOOR0] = _code(drv0, p["floor_c"], cj_c)
    L[B.L_FLOOR1] = _code(drv1, p["floor_c"], cj_c) if drv1 is not None else -(1 << 28)
    L[B.L_DOSE_THR] = _code(drv0, p["dose_threshold_c"], cj_c)
    L[B.L_DOSE_MAX] = _clamp_int(p["dose_max_cs"] * qs * 1000.0)
    L[B.L_SP] = _code(drv0, setpoint_c, cj_c)
    L[B.L_HYST] = _code(drv0, setpoint_c + p["nocool_hyst_c"], cj_c) - L[B.L_SP]
    L[B.L_NOCOOL_MAX] = _clamp_int(p["nocool_max_cs"] * qs * 1000.0)
    L[B.L_WATCH_DROP] = max(1, int(p["watch_drop_c"] * slope + 0.5))
    L[B.L_WATCH_MS] = int(p["watch_s"] * 1000)
    L[B.L_PRECOOL_MS] = int(p["precool_s"] * 1000)
    L[B.L_FREEZE_MAX_MS] = int(p["freeze_max_s"] * 1000)
    _agreement(L, p, drv0, drv1, cj_c, setpoint_c, B.L_DIS_M, B.L_DIS_B, B.L_DIS_MAX, B.L_DIS_SHIFT)
    _agreement(
        L, p, drv0, drv3, cj_c, setpoint_c, B.L_DIS3_M, B.L_DIS3_B, B.L_DIS3_MAX, B.L_DIS3_SHIFT
    )
    L[B.L_FLOOR3] = _code(drv3, p["floor_c"], cj_c) if drv3 is not None else -(1 << 28)
    L[B.L_STUCK_DROP] = max(1, int(p["stuck_rate_c_s"] * p["stuck_window_s"] * slope + 0.5))
    L[B.L_STUCK_MS] = int(p["stuck_window_s"] * 1000)
    L[B.L_STUCK_GRACE_MS] = int(p["stuck_grace_s"] * 1000)
    L[B.L_DEPL_DROP] = max(1, int(p["depl_drop_c"] * slope + 0.5))
    L[B.L_DEPL_MS] = int(p["depl_window_s"] * 1000)
    if pressure_code is not None:
        L[B.L_P_MIN] = int(pressure_code(p["p_min_kpa"]))
        L[B.L_P_MAX] = int(pressure_code(p["p_max_kpa"]))
        L[B.L_P_LOW] = int(pressure_code(p["p_low_kpa"]))
    else:
        L[B.L_P_MIN] = -(1 << 28)
        L[B.L_P_MAX] = 1 << 28
        L[B.L_P_LOW] = -(1 << 28)
    L[B.L_STALE_MS] = int(p["stale_ms"])
    L[B.L_DEBOUNCE] = int(p["debounce"])
    L[B.L_HEARTBEAT_MS] = int(p["heartbeat_ms"])
    L[B.L_OVERRUNS] = int(p["overruns"])
    L[B.L_DUTY_FULL] = int(p["duty_full"] * 1000 + 0.5)
    L[B.L_Q] = q
    L[B.L_FOOT_PRESSED], L[B.L_HAND_HELD], L[B.L_ESTOP_OK] = levels
    L[B.L_APPROACH_MS] = int(p["approach_max_s"] * 1000)
    L[B.L_TUNE_MS] = int(p["tune_max_s"] * 1000)
    L[B.L_ZONE_HI] = _code(drv0, 1.0, cj_c)
    L[B.L_ZONE_LO] = _code(drv0, -10.0, cj_c)
    if drv_aux is not None:
        L[B.L_DEPL_AUX] = _code(drv_aux, p["depl_aux_c"], cj_c)
        # The line's code scale where a stuck valve shows (cold line).
        aux_slope = codes_per_c(drv_aux, p["depl_aux_c"], cj_c)
        L[B.L_AUX_DROP] = max(1, int(p["stuck_line_c"] * aux_slope + 0.5))
        L[B.L_AUX_RISE] = L[B.L_AUX_DROP]
    else:
        L[B.L_DEPL_AUX] = 1 << 28
        L[B.L_AUX_DROP] = 1 << 28
        L[B.L_AUX_RISE] = 0
    L[B.L_FLOW_MAX_MS] = int(p["flow_max_s"] * 1000)
    L[B.L_NEED_WDT] = 1 if p["require_wdt"] else 0
    L[B.L_LEAD_MS] = int(p["floor_lead_s"] * 1000)
    return L
