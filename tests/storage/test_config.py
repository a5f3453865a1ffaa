"""Configuration schema, files and roles: clear messages, no silent defaults."""

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryo.storage import config as C
from cryo.storage import roles
from cryo.storage import schema as S
from cryo.storage.audit import AuditTrail


@pytest.fixture
def cfg():
    return S.defaults()


def test_every_field_has_type_unit_range_role_and_valid_default():
    for name, ftype, unit, lo, hi, role, default, doc in S.FIELDS:
        assert role in S.ROLES and doc
        if ftype in ("float", "int"):
            assert lo <= default <= hi and isinstance(unit, str)
        assert S.check_value(name, default) is None
    assert S.validate(S.defaults()) == []


@pytest.mark.parametrize(
    "name, value, message",
    [
        (
            "protocol.target_c",
            -75.0,
            "protocol.target_c = -75 degC is out of range: allowed -50 .. -20 degC",
        ),
        ("pid.kp", 11, "pid.kp = 11 1/degC is out of range: allowed 0 .. 10 1/degC"),
        (
            "protocol.cycles",
            2.5,
            "protocol.cycles = 2.5 has the wrong type: expected a whole number (1 .. 3)",
        ),
        (
            "protocol.freeze_s",
            "20",
            'protocol.freeze_s = "20" has the wrong type: expected a number (5 .. 30 s)',
        ),
        ("sensor.tissue.type", "J", 'sensor.tissue.type = "J" is not allowed: one of K, T'),
        (
            "log.overwrite_unpulled",
            1,
            "log.overwrite_unpulled = 1 has the wrong type: expected true or false",
        ),
        (
            "limits.floor_c",
            float("nan"),
            "limits.floor_c = nan degC is outside the factory clinical bound -60 .. -30 degC (no role can widen it)",
        ),
    ],
)
def test_out_of_range_and_wrong_type_messages(cfg, name, value, message):
    cfg[name] = value
    assert S.validate(cfg) == [message]


def test_cross_field_rules_name_both_fields(cfg):
    cfg["limits.floor_c"] = -50.0
    cfg["protocol.target_c"] = -45.0
    assert S.validate(cfg) == [
        "protocol.target_c = -45 degC is too close to the hard limit: allowed from "
        "limits.floor_c + limits.floor_margin_c = -40 degC upwards"
    ]
    cfg = S.defaults()
    cfg["limits.max_freeze_s"] = 20.0
    cfg["protocol.freeze_s"] = 25.0
    assert S.validate(cfg) == [
        "protocol.freeze_s = 25 s reaches the hard limit: allowed below limits.max_freeze_s = 20 s"
    ]
    cfg = S.defaults()
    cfg["limits.cold_dose_cs"] = 1000.0
    cfg["limits.max_cycles"] = 1
    msgs = S.validate(cfg)
    assert "protocol.cycles = 2 exceeds the hard limit: allowed up to limits.max_cycles = 1" in msgs
    assert any("cold dose 1400 degC*s" in m and "limits.cold_dose_cs = 1000" in m for m in msgs)
    cfg = S.defaults()
    cfg["protocol.thaw_threshold_c"] = -5.0
    cfg["protocol.target_c"] = -20.0
    cfg["limits.sentinel_floor_c"] = -60.0
    cfg["limits.floor_c"] = -55.0
    assert S.validate(cfg) == [
        "limits.sentinel_floor_c = -60 degC must not be below limits.floor_c = -55 degC"
    ]


def test_missing_unknown_and_version_messages(cfg):
    del cfg["pid.ki"]
    cfg["pid.kx"] = 1
    cfg["schema_version"] = 4
    msgs = S.validate(cfg)
    assert "pid.ki is missing: required, allowed 0 .. 5 1/(degC*s)" in msgs
    assert "unknown field pid.kx (not in schema v3)" in msgs
    assert any(m.startswith("schema_version = 4 is not supported here: expected 3") for m in msgs)


@pytest.mark.parametrize(
    "name, value, role, message",
    [
        ("pid.kp", 0.1, "operator", "role operator may not change pid.kp: requires engineer"),
        (
            "limits.floor_c",
            -70.0,
            "engineer",
            "role engineer may not change limits.floor_c: requires service",
        ),
        (
            "log.overwrite_unpulled",
            True,
            "operator",
            "role operator may not change log.overwrite_unpulled: requires service",
        ),
        ("pid.zz", 1, "service", "unknown field pid.zz"),
    ],
)
def test_role_violations_are_named_and_leave_cfg_unchanged(cfg, name, value, role, message):
    before = dict(cfg)
    with pytest.raises(C.ConfigError) as e:
        C.set_field(cfg, name, value, role)
    assert str(e.value) == message
    assert cfg == before


def test_unknown_role_is_named(cfg):
    with pytest.raises(
        ValueError, match="unknown role 'admin': allowed operator, engineer, service"
    ):
        C.set_field(cfg, "protocol.cycles", 1, "admin")


def test_set_field_checks_limits_and_audits(cfg, tmp_path):
    audit = AuditTrail(str(tmp_path / "audit.log"))
    assert C.set_field(cfg, "limits.max_freeze_s", 25.0, "service", audit, 5) == 60.0
    with pytest.raises(C.ConfigError, match="protocol.freeze_s = 28 s reaches the hard limit"):
        C.set_field(cfg, "protocol.freeze_s", 28.0, "operator", audit, 6)
    assert cfg["protocol.freeze_s"] == 20.0  # unchanged by the refused change
    assert C.set_field(cfg, "limits.max_freeze_s", 40.0, "service", audit, 7) == 25.0
    assert C.set_field(cfg, "protocol.freeze_s", 28.0, "operator", audit, 8) == 20.0
    # a higher role may change lower-role fields
    assert C.set_field(cfg, "protocol.freeze_s", 15.0, "service", audit, 9) == 28.0
    entries = audit.entries()
    assert [e[1:7] for e in entries] == [
        [5, "config", "service", "limits.max_freeze_s", 60.0, 25.0],
        [7, "config", "service", "limits.max_freeze_s", 25.0, 40.0],
        [8, "config", "operator", "protocol.freeze_s", 20.0, 28.0],
        [9, "config", "service", "protocol.freeze_s", 28.0, 15.0],
    ]
    assert audit.verify() == []


def test_save_load_round_trip_writes_last_known_good(cfg, tmp_path):
    p = str(tmp_path / "config")
    C.save(cfg, p)
    loaded, fault = C.load(p)
    assert loaded == cfg and fault is None
    assert (tmp_path / "config.lkg").read_bytes() == (tmp_path / "config").read_bytes()
    head = (tmp_path / "config").read_bytes().split(b"\n")[0].decode()
    assert head.startswith("CRYOCFG 3 ")


def test_save_refuses_invalid_config(cfg, tmp_path):
    cfg["protocol.cycles"] = 9
    with pytest.raises(
        C.ConfigError, match="not saved: protocol.cycles = 9 is out of range: allowed 1 .. 3"
    ):
        C.save(cfg, str(tmp_path / "config"))
    assert not (tmp_path / "config").exists()


def _good_then(tmp_path, cfg, mutate):
    p = tmp_path / "config"
    C.save(cfg, str(p))
    C.load(str(p))  # boot once: last known good = this file
    data = bytearray(p.read_bytes())
    p.write_bytes(bytes(mutate(data)))
    return str(p)


def _flip(data):
    data[-5] ^= 0x01
    return data


def _edit_value(data):
    # valid CRC, invalid value: the file was written by a tool that skipped validation
    head, body = bytes(data).split(b"\n", 1)
    obj = json.loads(body)
    obj["limits.floor_c"] = -120.0
    return C.encode(obj)


@pytest.mark.parametrize(
    "mutate, expect",
    [
        (_flip, "CRC mismatch"),
        (lambda d: d[: len(d) - 30], "truncated: body is"),
        (lambda d: d[:5], "truncated or not a config file (no header line)"),
        (lambda d: b"", "truncated or not a config file"),
        (
            lambda d: d.replace(b"CRYOCFG 3", b"CRYOCFG 7", 1),
            "header version 7 does not match schema_version 3",
        ),
        (lambda d: b"hello\n{}", "not a config file (header must start with CRYOCFG)"),
        (
            _edit_value,
            "invalid: limits.floor_c = -120 degC is outside the factory clinical bound -60 .. -30 degC",
        ),
    ],
)
def test_bad_file_at_boot_falls_back_to_last_known_good_with_fault(cfg, tmp_path, mutate, expect):
    p = _good_then(tmp_path, cfg, mutate)
    loaded, fault = C.load(p)
    assert loaded == cfg
    assert fault.code == C.FAULT_FALLBACK and fault.source == "lkg"
    assert expect in fault.messages[0] and fault.messages[0].startswith(p)
    assert "using last known good" in str(fault)


def test_newer_schema_version_is_rejected_with_message(cfg, tmp_path):
    p = tmp_path / "config"
    newer = dict(cfg, schema_version=4)
    p.write_bytes(C.encode(newer))
    loaded, fault = C.load(str(p))
    assert loaded is None and fault.code == C.FAULT_UNUSABLE
    assert "schema_version = 4 is newer than this firmware supports (3)" in fault.messages[0]


def test_no_usable_config_is_a_fault_not_a_default(tmp_path):
    loaded, fault = C.load(str(tmp_path / "config"))
    assert loaded is None and fault.code == C.FAULT_UNUSABLE
    assert fault.messages == [
        str(tmp_path / "config") + ": missing",
        str(tmp_path / "config.lkg") + ": missing",
    ]


V1 = {
    "schema_version": 1,
    "kp": 0.08,
    "ki": 0.02,
    "kd": 0.0,
    "tc_type": "K",
    "tc_offset": 0.5,
    "target_temp": -35.0,
    "freeze_time": 25,
    "cycles": 3,
    "thaw_temp": 1.0,
    "min_thaw_time": 45,
    "floor_temp": -60.0,
    "max_freeze_time": 60,
    "max_cycles": 3,
    "alarm_volume": 70,
    "lcd_contrast": 4,
}


def test_v1_file_is_migrated_written_back_and_reported(tmp_path):
    p = tmp_path / "config"
    p.write_bytes(C.encode(V1))
    notes = []
    loaded, fault = C.load(str(p), notes)
    assert fault is None
    assert loaded["schema_version"] == 3
    assert loaded["pid.kp"] == 0.08 and loaded["protocol.target_c"] == -35.0
    assert loaded["sensor.tissue.type"] == "K" and loaded["protocol.cycles"] == 3
    assert loaded["log.sample_hz"] == 10  # new in v2: documented default, reported
    assert any("log.sample_hz added with default 10 (not in v1)" in n for n in notes)
    assert any("v1 field lcd_contrast dropped" in n for n in notes)
    assert p.read_bytes().startswith(b"CRYOCFG 3 ")  # stored in the new version
    # v1 tc_offset -> v2 sensor.tissue.offset_c -> v3 two-point calibration
    assert loaded["sensor.tissue.cal"] == {"m1": -200.0, "r1": -199.5, "m2": 0.0, "r2": 0.5}
    assert "sensor.tissue.offset_c" not in loaded
    again, fault2 = C.load(str(p), [])
    assert again == loaded and fault2 is None


def test_invalid_v1_file_is_not_silently_fixed(tmp_path):
    p = tmp_path / "config"
    p.write_bytes(C.encode(dict(V1, target_temp=-90.0)))
    loaded, fault = C.load(str(p))
    assert loaded is None
    assert (
        "protocol.target_c = -90 degC is out of range: allowed -50 .. -20 degC" in fault.messages[0]
    )


def test_parse_value_from_text():
    assert C.parse_value("protocol.cycles", "3") == 3
    assert C.parse_value("log.overwrite_unpulled", "true") is True
    with pytest.raises(
        C.ConfigError, match="pid.kp = 'abc' is not a number: allowed 0 .. 10 1/degC"
    ):
        C.parse_value("pid.kp", "abc")


def test_role_pins_are_salted_hashes(tmp_path):
    p = str(tmp_path / "roles")
    roles.set_pin(p, "service", "482913", iterations=50)
    roles.set_pin(p, "operator", "1111", iterations=50)
    text = (tmp_path / "roles").read_text()
    assert "482913" not in text and text.count("\n") == 2
    assert roles.check_pin(p, "service", "482913")
    assert not roles.check_pin(p, "service", "482914")
    assert not roles.check_pin(p, "engineer", "482913")  # deny by default
    with pytest.raises(ValueError, match="PIN for service must be 4..12 digits"):
        roles.set_pin(p, "service", "12")


def test_micropython_gives_the_same_messages_and_hash(mpy, cfg):
    bad = dict(cfg)
    bad["protocol.target_c"] = -75.0
    bad["pid.kp"] = 0.1
    code = """
import json
from cryo.storage import schema as S, config as C
cfg = json.loads(%r)
bad = json.loads(%r)
msgs = S.validate(bad)
role = None
try:
    C.set_field(cfg, 'limits.floor_c', -70.0, 'operator')
except C.ConfigError as e:
    role = str(e)
import binascii
result([msgs, role, binascii.hexlify(C.config_hash(cfg)).decode(), C.encode(cfg).decode()])
""" % (json.dumps(cfg), json.dumps(bad))
    msgs, role, h, enc = mpy.run(code)
    assert msgs == S.validate(bad)
    assert role == "role operator may not change limits.floor_c: requires service"
    assert h == C.config_hash(cfg).hex()
    assert enc == C.encode(cfg).decode()
    # Hashed field by field, it is the digest of the file's canonical body.
    body = enc.split("\n", 1)[1].encode()
    assert h == hashlib.sha256(body).hexdigest()


def test_schema_ranges_equal_the_firmware_hard_ranges():
    # The device (cryo.protocol.params) enforces compiled-in
    # ranges; the host validates with this schema. They must agree, or the
    # host would accept files the device rejects.
    from cryo.protocol import params as P

    assert P.validate(S.defaults()) == []
    for name, pname in P.ALIASES.items():
        f, p = S.field(name), P.spec(pname)
        assert f is not None, "%s (alias of %s) is not a schema field" % (name, pname)
        if isinstance(p[1], bool):
            assert f[1] == "bool" and f[5] == p[5], (name, pname)
        else:
            assert (f[3], f[4], f[5]) == (p[2], p[3], p[5]), (name, pname)
            assert f[1] == ("int" if isinstance(p[1], int) else "float"), (name, pname)
        assert f[6] == p[1], ("default differs", name, pname)
    # Every firmware parameter can be stored (the interlock's safety parameters included).
    assert sorted(P.ALIASES.values()) == sorted(p[0] for p in P.PARAMS)


def test_schema_regulator_fields_equal_the_controller_ranges():
    # The controller's regulator/valve values (pid.*, valve.*) are checked on
    # the device with the same ranges, defaults and roles.
    from cryo.core import settings as CTL

    for name, default, lo, hi, role in CTL.EXTRAS:
        f = S.field(name)
        assert f is not None, name
        assert (f[3], f[4], f[5], f[6]) == (lo, hi, role, default), name
        assert S.check_value(name, hi) is None and S.check_value(name, lo) is None
        assert CTL.check_extra(name, hi) is None and CTL.check_extra(name, lo) is None
        above = hi + (1 if isinstance(hi, int) else 0.5)
        assert S.check_value(name, above) and CTL.check_extra(name, above), name
    # Measured SIMC gains on the default plant are the factory defaults.
    assert (S.field("pid.kp")[6], S.field("pid.ki")[6], S.field("pid.kd")[6]) == (0.174, 0.039, 0.0)
    assert S.field("valve.window_ms")[6] == 200 and S.field("valve.min_on_ms")[6] == 30


def test_pin_file_written_on_micropython_verifies_on_host(mpy, tmp_path):
    p = str(tmp_path / "roles")
    ok = mpy.run(
        """
from cryo.storage import roles
roles.set_pin(%r, 'engineer', '2468', iterations=100)
result([roles.check_pin(%r, 'engineer', '2468'), roles.check_pin(%r, 'engineer', '2469')])
"""
        % (p, p, p)
    )
    assert ok == [True, False]
    assert roles.check_pin(p, "engineer", "2468") and not roles.check_pin(p, "service", "2468")


def _random_configs(n, seed=7):
    import random

    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        cfg = S.defaults()
        for name, ftype, _unit, lo, hi, _role, _d, _doc in rnd.sample(S.FIELDS, 3):
            if ftype == "int":
                cfg[name] = rnd.randint(lo - 5, hi + 5)
            elif ftype == "float":
                cfg[name] = round(rnd.uniform(lo - 10, hi + 10), 2)
            elif ftype == "bool":
                cfg[name] = rnd.choice([True, False, 0, "yes"])
            else:
                cfg[name] = rnd.choice(list(ftype) + ["X", 3])
        out.append([cfg])
    return out


def test_validation_messages_identical_on_both_interpreters(mpy):
    cpy, mp = mpy.differential("cryo.storage.schema", "validate", _random_configs(40))
    assert sum(1 for m in cpy if m) > 20  # most random configs are invalid somewhere


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_every_out_of_range_value_is_named_with_its_range(data):
    f = data.draw(st.sampled_from([f for f in S.FIELDS if f[1] in ("int", "float")]))
    name, ftype, unit, lo, hi = f[:5]
    if ftype == "int":
        v = data.draw(st.one_of(st.integers(max_value=lo - 1), st.integers(min_value=hi + 1)))
    else:
        v = data.draw(
            st.one_of(
                st.floats(max_value=lo, exclude_max=True, allow_nan=False),
                st.floats(min_value=hi, exclude_min=True, allow_nan=False),
            )
        )
    cfg = S.defaults()
    cfg[name] = v
    msgs = S.validate(cfg)
    assert len(msgs) == 1
    assert msgs[0].startswith(name + " = ")
    if name in S.CLINICAL_BOUNDS:
        assert "outside the factory clinical bound" in msgs[0] and "no role can widen" in msgs[0]
    else:
        assert "out of range: allowed" in msgs[0]
    assert S._allowed(f) in msgs[0]


V2 = {
    "schema_version": 2,
    "pid.kp": 0.05,
    "pid.ki": 0.01,
    "pid.kd": 0.0,
    "pid.period_ms": 100,
    "sensor.tissue.type": "K",
    "sensor.tissue.chip": "MAX31855",
    "sensor.tissue.offset_c": 0.5,
    "sensor.tissue.gain": 1.02,
    "sensor.aux.type": "K",
    "sensor.aux.chip": "MAX31855",
    "sensor.aux.offset_c": 0.0,
    "sensor.aux.gain": 1.0,
    "protocol.target_c": -30.0,
    "protocol.freeze_s": 20.0,
    "protocol.cycles": 2,
    "protocol.thaw_threshold_c": 0.0,
    "protocol.min_thaw_s": 30.0,
    "limits.floor_c": -60.0,
    "limits.floor_margin_c": 10.0,
    "limits.sentinel_floor_c": -50.0,
    "limits.max_freeze_s": 60.0,
    "limits.max_cycles": 3,
    "limits.cold_dose_cs": 6000.0,
    "alarm.volume_pct": 80,
    "alarm.audio_pause_s": 120,
    "alarm.low_reservoir_pct": 15,
    "log.sample_hz": 10,
    "log.commit_every": 10,
    "log.max_kib": 1024,
    "log.overwrite_unpulled": False,
}


def test_v2_file_is_migrated_keeping_its_values_and_converting_calibration(tmp_path):
    p = tmp_path / "config"
    p.write_bytes(C.encode(V2))
    notes = []
    loaded, fault = C.load(str(p), notes)
    assert fault is None and loaded["schema_version"] == 3
    # Stored values stay: a stored gain is not replaced by the new default.
    assert loaded["pid.kp"] == 0.05 and loaded["protocol.target_c"] == -30.0
    # New fields get their documented default, each reported.
    assert loaded["limits.stale_ms"] == 500 and loaded["valve.window_ms"] == 200
    assert any("limits.stale_ms added with default 500 (not in v2)" in n for n in notes)
    # Linear calibration (gain 1.02, offset 0.5) -> the same line, two-point form.
    cal = loaded["sensor.tissue.cal"]
    for m in (-200.0, -100.0, 0.0, 20.0):
        true = cal["r1"] + (m - cal["m1"]) * (cal["r2"] - cal["r1"]) / (cal["m2"] - cal["m1"])
        assert abs(true - (1.02 * m + 0.5)) < 1e-9
    assert loaded["sensor.aux.cal"] is None  # identity
    assert "sensor.tissue.gain" not in loaded and "sensor.aux.offset_c" not in loaded
    assert any("sensor.tissue.cal two-point form" in n for n in notes)
    assert p.read_bytes().startswith(b"CRYOCFG 3 ")
    from cryo.protocol import params as P

    assert P.validate(loaded) == []


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("sensor.tissue.cal", {"m1": -190.0, "r1": -195.8}, "sensor.tissue.cal has the wrong form"),
        (
            "sensor.tissue.cal",
            {"m1": -190.0, "r1": -195.8, "m2": -185.0, "r2": 0.0},
            "sensor.tissue.cal: points m1 = -190 and m2 = -185 degC too close: "
            "allowed at least 10 degC apart",
        ),
        (
            "sensor.aux.cal",
            {"m1": -100.0, "r1": -195.8, "m2": 0.0, "r2": 0.0},
            "sensor.aux.cal: gain 1.958 implausible: allowed 0.8 .. 1.2 (check the points)",
        ),
        (
            "sensor.tissue2.cal",
            {"m1": "LN2", "r1": -195.8, "m2": 0.0, "r2": 0.0},
            'sensor.tissue2.cal.m1 = "LN2" is not a temperature',
        ),
        ("pid.bands", [[-25.0, 0.2, 0.04]], "pid.bands[0] has the wrong form"),
        (
            "pid.bands",
            [[-25.0, 0.2, 0.04, 0.0], [-40.0, 11.0, 0.04, 0.0]],
            "pid.bands[1] kp = 11 is out of range: allowed 0 .. 10",
        ),
        ("pid.bands", [[-25.0, 0.2, 0.04, 0.0]] * 9, "pid.bands has the wrong form"),
    ],
)
def test_calibration_and_gain_band_fields_are_checked(cfg, name, value, message):
    cfg[name] = value
    msgs = S.validate(cfg)
    assert len(msgs) == 1 and msgs[0].startswith(message), msgs


def test_good_calibration_and_bands_validate_and_round_trip(cfg, tmp_path):
    cfg["sensor.tissue.cal"] = {"m1": -190.0, "r1": -195.8, "m2": 0.5, "r2": 0.0}
    cfg["pid.bands"] = [[-25.0, 0.174, 0.039, 0.0], [-40.0, 0.12, 0.02, 0.0]]
    assert S.validate(cfg) == []
    p = str(tmp_path / "config")
    C.save(cfg, p)
    loaded, fault = C.load(p)
    assert fault is None and loaded == cfg
    assert S.defaults()["pid.bands"] == []  # the default list is not shared
    assert S.defaults()["pid.bands"] is not S.defaults()["pid.bands"]


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"limits.approach_max_s": 50.0, "limits.max_freeze_s": 60.0},
            "limits.approach_max_s = 50 must exceed limits.max_freeze_s = 60",
        ),
        (
            {"limits.p_min_kpa": 300.0, "limits.p_max_kpa": 250.0, "limits.p_low_kpa": 300.0},
            "limits.p_min_kpa = 300 must be below limits.p_max_kpa = 250",
        ),
        (
            {"limits.heartbeat_ms": 300, "pid.period_ms": 200},
            "limits.heartbeat_ms = 300 must be at least 2 * pid.period_ms = 200",
        ),
        (
            {"valve.min_on_ms": 150, "valve.min_off_ms": 100, "valve.window_ms": 200},
            "valve.min_on_ms + valve.min_off_ms = 250 ms must fit in valve.window_ms = 200 ms",
        ),
    ],
)
def test_device_cross_rules_are_in_the_schema(cfg, changes, message):
    # Each rule is one the device enforces too (cryo.protocol.params or the
    # controller/valve): a file the host accepts is one the device accepts.
    from cryo.core import settings as CTL
    from cryo.protocol import params as P

    cfg.update(changes)
    msgs = S.validate(cfg)
    assert any(m.startswith(message) for m in msgs), msgs
    extras = {e[0]: cfg.get(e[0], e[1]) for e in CTL.EXTRAS}
    assert P.validate(cfg) or CTL.check_extras(extras, cfg["pid.period_ms"])


def test_v3_checks_and_v2_migration_identical_on_micropython(mpy):
    cases = [
        ["sensor.tissue.cal", {"m1": -190.0, "r1": -195.8, "m2": 0.5, "r2": 0.0}],
        ["sensor.tissue.cal", {"m1": -100.0, "r1": -195.8, "m2": 0.0, "r2": 0.0}],
        ["sensor.aux.cal", None],
        ["pid.bands", [[-25.0, 0.2, 0.04, 0.0], [-40.0, 11.0, 0.04, 0.0]]],
        ["pid.bands", "fast"],
    ]
    cpy, mp = mpy.differential("cryo.storage.schema", "check_value", cases)
    assert cpy == mp
    assert cpy[0] is None and cpy[2] is None and all(cpy[i] for i in (1, 3, 4))
    cpy, mp = mpy.differential("cryo.storage.schema", "migrate", [[V2]])
    assert cpy == mp
    assert cpy[0][0]["schema_version"] == 3 and len(cpy[0][1]) > 40
