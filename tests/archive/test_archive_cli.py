"""`cryo archive` from the command line: tables, --json, --csv, and clear errors."""

import csv
import io
import json

import pytest
import treatments

from host_tools.cli import main


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    treatments.write(d / "a.img", 6)
    treatments.write(d / "b.img", 2, start_day=40, fw="0.2.0")
    treatments.pull(d / "a.img", d / "archive", "virtual-a")
    treatments.pull(d / "b.img", d / "archive", "virtual-b")
    return d / "archive"


def _run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_sessions_as_json_csv_and_table(mpy, capsys, archive):
    a = ("archive", "--archive", str(archive))
    rc, out, _ = _run(capsys, *a, "--json", "query", "sessions", "--fault", "any")
    rows = json.loads(out)
    assert rc == 0 and [(r["serial"], r["session"], r["conditions"]) for r in rows] == [
        ("virtual-a", 3, "dose"),
        ("virtual-a", 6, "no_cool"),
    ]
    rc, out, _ = _run(
        capsys, *a, "--csv", "query", "sessions", "--target-reached", "yes", "--until", "2026-10-01"
    )
    got = list(csv.DictReader(io.StringIO(out)))
    assert rc == 0 and [int(r["session"]) for r in got] == [1, 3, 5]  # even i, board a only
    rc, out, _ = _run(capsys, *a, "query", "sessions", "--device", "virtual-b")
    assert rc == 0 and "sessions (2)" in out


def test_devices_by_firmware_and_valve_cycles(mpy, capsys, archive):
    a = ("archive", "--archive", str(archive), "--json", "query", "devices")
    rc, out, _ = _run(capsys, *a, "--firmware", "0.2.0")
    assert rc == 0 and [d["serial"] for d in json.loads(out)] == ["virtual-b"]
    wear_a = sum(treatments.expected(i)["valve_cycles"] for i in range(6))
    rc, out, _ = _run(capsys, *a, "--min-valve-cycles", str(wear_a))
    rows = json.loads(out)
    assert [(d["serial"], d["valve_cycles"]) for d in rows] == [("virtual-a", wear_a)]
    assert rows[0]["last_pull_by"] and rows[0]["last_pull_at"]
    rc, out, _ = _run(capsys, *a, "--pulled-before", "2000-01-01")
    assert json.loads(out) == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (("sessions", "--outcome", "failed"), "--outcome 'failed' is not one of: completed"),
        (("sessions", "--fault", "hot"), "--fault 'hot' is not one of: any, overcool"),
        (("sessions", "--since", "last week"), "--since 'last week' is not a date: use YYYY-MM-DD"),
        (("sessions", "--target-reached", "maybe"), "'maybe' is not one of: yes, no"),
        (("sessions", "--limit", "0"), "--limit 0 must be 1 or more"),
        (("devices", "--min-valve-cycles", "-1"), "must be 0 or more"),
    ],
)
def test_bad_arguments_name_what_is_allowed(capsys, tmp_path, argv, message):
    rc, out, err = _run(capsys, "archive", "--archive", str(tmp_path / "none"), "query", *argv)
    assert rc != 0 and message in err and "Traceback" not in err
    assert not (tmp_path / "none").exists()  # nothing created for a query that was refused


def test_reindex_from_the_command_line_gives_the_same_answers(mpy, capsys, archive):
    q = ("archive", "--archive", str(archive), "--json", "query", "sessions")
    before = _run(capsys, *q)[1]
    rc, out, _ = _run(capsys, "archive", "--archive", str(archive), "--json", "reindex")
    assert rc == 0 and sorted(d["serial"] for d in json.loads(out)) == ["virtual-a", "virtual-b"]
    assert _run(capsys, *q)[1] == before
    rc, _, err = _run(capsys, "archive", "--archive", str(archive), "reindex", "--from", "/nope")
    assert rc != 0 and "--from /nope: no such archive folder" in err
    rc, out, _ = _run(capsys, "archive", "--archive", str(archive), "--json", "status")
    status = json.loads(out)
    assert status["revision"] == "0004" and status["rows"]["session"] == 8
    assert status["rows"]["device"] == 2 and status["rows"]["pull"] == 2


def test_a_dashboard_user_from_the_command_line(capsys, tmp_path, monkeypatch):
    import io

    from host_tools.archive_db import location, store, users

    a = ("archive", "--archive", str(tmp_path / "arch"), "user", "alice")
    rc, _, err = _run(capsys, *a, "--role", "janitor")
    assert rc == 5 and "role 'janitor' is not one of: operator, engineer, service" in err
    rc, _, err = _run(capsys, *a, "--role", "service")  # no terminal, no --password-stdin
    assert rc == 5 and "--password-stdin" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    rc, _, err = _run(capsys, *a, "--role", "service", "--password-stdin")
    assert rc == 5 and "at least 8 characters" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    assert _run(capsys, *a, "--role", "service", "--password-stdin")[0] == 0
    engine = store.open_engine(location.locate(tmp_path / "arch").url)
    assert users.check(engine, "alice", "correct horse") == "service"
    assert users.check(engine, "alice", "correct horsE") is None
    engine.dispose()


def test_cryo_serve_refuses_a_bad_address_or_board_port_before_serving(capsys, tmp_path):
    rc, _, err = _run(capsys, "serve", "--archive", str(tmp_path), "--listen", "8750")
    assert rc == 5 and "use HOST:PORT" in err
    rc, _, err = _run(capsys, "serve", "--archive", str(tmp_path), "--port", str(tmp_path / "no"))
    assert rc == 3 and err.startswith("cryo: error:")
