"""`cryo config` through the real CLI on the real-time virtual board.

Each case runs the `cryo` command in a subprocess, as a technician would,
with its output going to a pipe: patches diff only their own fields, list
fields take JSON, a file repeating a key is refused, nothing is cut in a
pipe, the sensors shown are the board definition's, and wrong PINs are
delayed more and more by the device's count of failures.
"""

import json
import threading
import time

import pytest
from clirun import cryo

from cryo.link import backoff
from host_tools.virtual.board import VirtualBoard

pytestmark = [pytest.mark.sim, pytest.mark.mpy]

PINS = {"service": "4321", "engineer": "2468", "operator": "1357"}


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    d = tmp_path_factory.mktemp("cfgcli")
    vb = VirtualBoard(flash=str(d / "flash.img"), link=str(d / "port"), log=lambda m: None)
    vb.open()
    t = threading.Thread(target=vb.serve, daemon=True)
    t.start()
    run = Cryo(vb.port, d)
    assert run("config", "pin", "service", "4321", "--role", "service", "--pin", "4321")[0] == 0
    for role in ("engineer", "operator"):
        rc = run("config", "pin", role, PINS[role], "--role", "service", "--pin", "4321")[0]
        assert rc == 0
    yield run
    vb._stop = True
    t.join(5)
    vb.close()


class Cryo:
    """`cryo` on this board, as (exit code, stdout, stderr): its port and a
    lock folder of its own, no PIN from the environment."""

    def __init__(self, port, tmp):
        self.env = {"CRYO_PORT": port, "CRYO_LOCK_DIR": str(tmp / "locks"), "CRYO_PIN": None}

    def __call__(self, *argv, timeout=120):
        p = cryo(*argv, env=self.env, timeout=timeout)
        return p.returncode, p.stdout, p.stderr


def test_a_patch_diffs_only_its_own_fields_after_apply(board, tmp_path):
    patch = tmp_path / "patch.json"
    patch.write_text('{"protocol.target_c": -30}')
    rc, out, err = board("config", "diff", str(patch), "--json")
    assert rc == 0, err
    rows = json.loads(out)
    assert [r["field"] for r in rows] in ([], ["protocol.target_c"])
    args = ("--role", "operator", "--pin", PINS["operator"], "-y")
    assert board("config", "apply", str(patch), *args)[0] == 0
    rc, out, err = board("config", "diff", str(patch))
    assert rc == 0 and out.strip() == "no differences", out
    patch.write_text('{"protocol.target_c": -28}')
    rc, out, _ = board("config", "diff", str(patch), "--json")
    assert json.loads(out) == [{"field": "protocol.target_c", "device": -30, "file": -28}]


def test_list_fields_are_set_from_json_and_checked_by_the_schema(board):
    args = ("--role", "engineer", "--pin", PINS["engineer"], "-y")
    rc, _, err = board("config", "set", "pid.bands=[[-25, 0.2, 0.05, 0]]", *args)
    assert rc == 0, err
    rc, out, _ = board("config", "get", "pid.bands", "--json")
    assert json.loads(out) == {"pid.bands": [[-25, 0.2, 0.05, 0]]}
    rc, _, err = board("config", "set", "pid.bands=[[-25, 0.2]]", *args)
    assert rc == 5 and "pid.bands[0]" in err, err
    rc, _, err = board("config", "set", "pid.bands=[", *args)
    assert rc == 5 and "is not JSON" in err, err
    rc, _, err = board("config", "set", "pid.bands=[]", *args)
    assert rc == 0, err


def test_a_file_repeating_a_key_is_refused_naming_it(board, tmp_path):
    dup = tmp_path / "dup.json"
    dup.write_text('{"protocol.target_c": -30, "protocol.target_c": -25}')
    for argv in (
        ("config", "diff", str(dup)),
        ("config", "apply", str(dup), "--role", "operator", "--pin", PINS["operator"], "-y"),
    ):
        rc, _, err = board(*argv)
        assert rc == 5 and "'protocol.target_c' appears more than once" in err, err
    rc, out, _ = board("config", "get", "protocol.target_c")
    assert out.strip() != "-25"


def test_sim_run_refuses_a_config_repeating_a_key(tmp_path):
    dup = tmp_path / "dup.json"
    dup.write_text('{"pid.kp": 0.1, "pid.kp": 0.2}')
    p = cryo("sim", "run", "--config", dup)
    assert p.returncode == 5 and "'pid.kp' appears more than once" in p.stderr, p.stderr


def test_nothing_is_cut_in_a_pipe(board):
    rc, out, _ = board("config", "show")  # stdout is a pipe
    assert rc == 0 and "…" not in out
    assert "protocol.thaw_threshold_c" in out and "sensor.rate_noise_c" in out


def test_the_sensors_shown_are_the_board_definitions(board):
    # boards/sim/board.json wires MAX31855 type K converters
    rc, out, _ = board("config", "show", "--json")
    shown = json.loads(out)
    assert shown["board"]["sensor.tissue.chip"] == "MAX31855"
    assert shown["board"]["sensor.tissue.type"] == "K"
    rc, out, _ = board("config", "show")
    line = next(x for x in out.splitlines() if "sensor.tissue.chip" in x)
    assert "MAX31855 (board definition" in line
    rc, out, _ = board("config", "get", "sensor.aux.type")
    assert out.strip() == "K"


def test_wrong_pins_wait_longer_each_time_and_a_right_pin_clears_it(board):
    def attempt(pin):
        t0 = time.monotonic()
        rc, _, err = board(
            "config", "set", "protocol.cycles=2", "--role", "service", "--pin", pin, "-y"
        )
        return rc, err, time.monotonic() - t0

    base = attempt("0000")  # the first failure: no wait yet
    assert base[0] == 4 and "wrong PINs in a row: 1" in base[1], base
    times = [base[2]]
    for i in range(2, backoff.FREE + 3):
        rc, err, took = attempt("000%d" % i)
        assert rc == 4 and f"wrong PINs in a row: {i}" in err, err
        times.append(took)
    # the attempts after FREE failures wait 1 s, then 2 s (BASE_MS doubling):
    # each takes at least its wait (a lower bound, whatever the host's load)
    for i, took in enumerate(times[backoff.FREE :], start=backoff.FREE):
        assert took >= backoff.delay_ms(i) / 1000, (i, times)
    assert backoff.delay_ms(backoff.FREE + 1) > backoff.delay_ms(backoff.FREE)
    rc, err, took = attempt(PINS["service"])  # right PIN: after its wait, accepted
    waited = backoff.delay_ms(backoff.FREE + 2) / 1000
    assert rc == 0 and f"waiting {waited:g} s" in err, err
    assert took >= waited
    rc, err, took = attempt("9999")  # the count was cleared: no wait
    assert rc == 4 and "wrong PINs in a row: 1" in err and "waiting" not in err, err
    assert attempt(PINS["service"])[0] == 0
