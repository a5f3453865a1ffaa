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


def test_sessions_by_outcome(mpy, capsys, archive):
    a = ("archive", "--archive", str(archive), "--json", "query", "sessions")
    faulted = json.loads(_run(capsys, *a, "--outcome", "fault")[1])
    # board a's sessions i = 2 and 5 (i % 3 == 2); board b's two completed
    assert [(r["serial"], r["session"], r["outcome"]) for r in faulted] == [
        ("virtual-a", 3, "fault"),
        ("virtual-a", 6, "fault"),
    ]
    completed = json.loads(_run(capsys, *a, "--outcome", "completed")[1])
    assert [(r["serial"], r["session"]) for r in completed] == [
        ("virtual-a", 1),
        ("virtual-a", 2),
        ("virtual-a", 4),
        ("virtual-a", 5),
        ("virtual-b", 1),
        ("virtual-b", 2),
    ]
    assert json.loads(_run(capsys, *a, "--outcome", "stopped")[1]) == []


def test_devices_by_firmware_version_or_hash(mpy, capsys, archive):
    a = ("archive", "--archive", str(archive), "--json", "query", "devices")
    rc, out, _ = _run(capsys, *a, "--firmware", "0.2.0")
    assert rc == 0 and [d["serial"] for d in json.loads(out)] == ["virtual-b"]
    (b,) = json.loads(out)
    assert b["fw_hash"] == treatments.fw_hash("0.2.0") != treatments.CONFIG_HASH
    rc, out, _ = _run(capsys, *a, "--firmware", treatments.fw_hash("0.1.0")[:10].upper())
    assert rc == 0 and [d["serial"] for d in json.loads(out)] == ["virtual-a"]
    # too short to name a build: only a version of that name would match
    assert json.loads(_run(capsys, *a, "--firmware", treatments.fw_hash("0.1.0")[:6])[1]) == []


def test_devices_by_valve_cycles(mpy, capsys, archive):
    a = ("archive", "--archive", str(archive), "--json", "query", "devices")
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
    assert status["revision"] == "0005" and status["rows"]["session"] == 8
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


def test_devices_by_last_pull_including_those_never_pulled(mpy, capsys, archive, tmp_path):
    import datetime as dt
    import shutil

    copy = tmp_path / "archive"
    shutil.copytree(archive, copy)
    # a device whose records reached the archive another way: no pull of it logged
    shutil.copytree(copy / "virtual-b", copy / "virtual-n")
    (copy / "virtual-n" / "pulls.jsonl").unlink()
    assert _run(capsys, "archive", "--archive", str(copy), "reindex")[0] == 0
    a = ("archive", "--archive", str(copy), "--json", "query", "devices")
    tomorrow = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).date().isoformat()

    def serials(*argv):
        rc, out, err = _run(capsys, *a, *argv)
        assert rc == 0, err
        return [d["serial"] for d in json.loads(out)]

    assert serials("--pulled-before", "2000-01-01") == ["virtual-n"]  # never pulled
    assert serials("--pulled-before", tomorrow) == ["virtual-a", "virtual-b", "virtual-n"]
    assert serials("--pulled-since", "2000-01-01") == ["virtual-a", "virtual-b"]
    assert serials("--pulled-since", tomorrow) == []


def test_a_time_with_an_offset_is_the_same_instant_on_sqlite_and_postgresql(
    mpy, capsys, archive, pg_url
):
    assert _run(capsys, "archive", "--archive", pg_url, "reindex", "--from", str(archive))[0] == 0

    def sessions(where, *argv):
        rc, out, err = _run(
            capsys, "archive", "--archive", where, "--json", "query", "sessions", *argv
        )
        assert rc == 0, err
        return [(r["serial"], r["session"]) for r in json.loads(out)]

    later = [("virtual-b", 1), ("virtual-b", 2)]  # days 40 and 43
    for where in (str(archive), pg_url):
        # 01:00 at UTC+2 is 23:00 UTC the day before: session 2 (2026-09-04 00:00) is after it
        got = sessions(where, "--since", "2026-09-04T01:00+02:00")
        assert got == [("virtual-a", n) for n in range(2, 7)] + later, where
        assert sessions(where, "--since", "2026-09-03T23:00") == got
        # without an offset the time is UTC: session 2 began before 01:00
        assert sessions(where, "--since", "2026-09-04T01:00")[0] == ("virtual-a", 3)
        assert sessions(where, "--until", "2026-09-04T02:00+02:00") == [("virtual-a", 1)]
        assert sessions(where, "--until", "2026-09-04") == [("virtual-a", 1)]  # UTC midnight


def test_the_tables_are_readable_in_an_80_column_terminal(mpy, capsys, archive, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    a = ("archive", "--archive", str(archive), "query")
    for what, must in (
        ("sessions", ("virtual-a", "2026-09-01 00:00", "completed", "fault", "dose", "-34.1")),
        ("devices", ("virtual-b", "0.2.0", treatments.fw_hash("0.2.0")[:12], "no_cool")),
    ):
        rc, out, _ = _run(capsys, *a, what)
        assert rc == 0 and "…" not in out
        assert max(map(len, out.splitlines())) <= 80
        for text in must:
            assert text in out, (what, text)
    monkeypatch.setenv("COLUMNS", "200")
    rc, out, _ = _run(capsys, *a, "sessions", "--wide")  # every column, for a wide terminal
    assert rc == 0 and "duration s" in out and "cycles done" in out and "…" not in out


def test_cryo_logs_pull_says_what_it_indexed_and_where(mpy, capsys, tmp_path):
    from host_tools.virtual.port import VirtualPort

    img = tmp_path / "a.img"
    treatments.write(img, 3)
    arch = tmp_path / "arch"
    with VirtualPort(image=img) as vp:
        rc, out, _ = _run(capsys, "logs", "--port", vp.port, "--archive", str(arch), "pull")
        assert rc == 0
        db = arch / "archive.sqlite3"
        assert (
            f"indexed 3 new or changed sessions, 2 audit entries, 2 device events, 1 pulls into {db}"
            in out
        )
        rc, out, _ = _run(capsys, "logs", "--port", vp.port, "--archive", str(arch), "pull")
        assert rc == 0 and "indexed 0 new or changed sessions, 0 audit entries" in out
