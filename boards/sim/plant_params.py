"""Plant files of the virtual board: their fields, checks and loading.

A plant is a JSON object (boards/sim/plants/*.json, fields in
docs/plant.md); :func:`load` gives the checked dict that
:class:`plant.Plant` is built from. A bad file is a :class:`PlantError`
naming the field and what is allowed. Runs under MicroPython and CPython.
"""

import shipped

_KEYS = {
    "name": "str",
    "description": "str",
    "layers": "list",
    "core_c": "num",
    "ambient_c": "num",
    "h_air_w_m2k": "num",
    "h_spray_w_m2k": "num",
    "h_spray_cold_gain": "num",
    "cryogen_c": "num",
    "latent_heat_j_m3": "num",
    "freeze_upper_c": "num",
    "freeze_lower_c": "num",
    "blood_rho_c_j_m3k": "num",
    "dead_time_s": "num",
    "line_chill_tau_s": "num",
    "line_warm_tau_s": "num",
    "reservoir_kg": "num",
    "flow_kg_s": "num",
    "supply_pressure_kpa": "num",
    "probe_tau_s": "num",
    "probe_noise_c": "num",
    "aux_tau_s": "num",
    "aux_noise_c": "num",
    "cold_junction_start_c": "num",
    "cold_junction_rise_c": "num",
    "cold_junction_tau_s": "num",
    "max_substep_s": "num",
}
_LAYER_KEYS = (
    "name",
    "thickness_mm",
    "nodes",
    "k_unfrozen",
    "k_frozen",
    "rho_c_unfrozen",
    "rho_c_frozen",
    "perfusion_1_s",
)


class PlantError(ValueError):
    """A plant file is invalid; the message names the field and what is allowed."""


def num(params, key):
    v = params[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise PlantError("plant field %r must be a number, got %r" % (key, v))
    return float(v)


def validate(params):
    """Raise PlantError naming the first bad field of a plant dict."""
    if not isinstance(params, dict):
        raise PlantError("plant must be a JSON object")
    for k in params:
        if k not in _KEYS:
            raise PlantError("unknown plant field %r; allowed: %s" % (k, ", ".join(sorted(_KEYS))))
    for k in _KEYS:
        if k in ("name", "description"):
            continue
        if k not in params:
            raise PlantError("plant field %r is missing" % k)
        if _KEYS[k] == "num":
            num(params, k)
    layers = params["layers"]
    if not isinstance(layers, list) or not layers:
        raise PlantError("plant field 'layers' must be a non-empty list")
    for i, lay in enumerate(layers):
        if not isinstance(lay, dict):
            raise PlantError("layers[%d] must be an object" % i)
        for k in _LAYER_KEYS:
            if k not in lay:
                raise PlantError("layers[%d] field %r is missing" % (i, k))
        for k in lay:
            if k not in _LAYER_KEYS:
                raise PlantError(
                    "layers[%d]: unknown field %r; allowed: %s" % (i, k, ", ".join(_LAYER_KEYS))
                )
        if not isinstance(lay["nodes"], int) or lay["nodes"] < 1:
            raise PlantError("layers[%d].nodes must be an integer >= 1" % i)
        for k in _LAYER_KEYS[3:]:
            if num(lay, k) < 0:
                raise PlantError("layers[%d].%s must be >= 0" % (i, k))
        if num(lay, "thickness_mm") <= 0:
            raise PlantError("layers[%d].thickness_mm must be > 0" % i)
    if num(params, "freeze_upper_c") <= num(params, "freeze_lower_c"):
        raise PlantError("freeze_upper_c must be above freeze_lower_c")
    for k in ("probe_tau_s", "aux_tau_s", "line_chill_tau_s", "line_warm_tau_s", "max_substep_s"):
        if num(params, k) <= 0:
            raise PlantError("plant field %r must be > 0" % k)
    if num(params, "reservoir_kg") < 0 or num(params, "dead_time_s") < 0:
        raise PlantError("reservoir_kg and dead_time_s must be >= 0")


# The plant files of the regulation bench and the plant-aware watch tests
# (docs/plant.md: the default and one change each at the edge of the ranges).
VARIANTS = (
    "default",
    "dead_time_3s",
    "slow_noisy_probe",
    "noisy_probe",
    "weak_spray",
    "spray_1_5x",
    "perfused_6x",
)


def plants_dir():
    """Directory of the shipped plant files (boards/sim/plants)."""
    return shipped.folder("plants")


def load(name_or_path):
    """Plant dict from a shipped name ('default') or a JSON file path."""
    params = shipped.load_json("plant", "plants", name_or_path, PlantError)
    validate(params)
    return params
