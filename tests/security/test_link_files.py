"""What the link's read path (cryo.link.files) serves, under MicroPython:
the log folder's files and the pull's state files, nothing else - no key,
PIN verifier or app file by any spelling - and bounded reads."""

import pytest


def test_only_log_files_are_readable(run_sec):
    names = [
        "logs/seg00000001.bin",
        "logs/pulled",
        "audit.log",
        "audit.log.head",
        "events.bin",
        "safety.bin",
        "auth.txt",
        "roles.txt",
        "app/key",
        "auth.fails",
        "config.json",
        "logs/../auth.txt",
        "logs/./x",
        "logs/",
        "logs",
        "/auth.txt",
        "logs/sub/x",
        "audit.log/../auth.txt",
    ]
    r = run_sec(
        "from cryo.link import files\n"
        "out = []\n"
        f"for n in {names!r}:\n"
        "    out.append(files.readable(n))\n"
        "errs = []\n"
        "for args in (('auth.txt', 0, 10), ('audit.log', -1, 10), ('audit.log', 0, 0),\n"
        "             ('audit.log', 0, files.READ_MAX + 1)):\n"
        "    try:\n"
        "        files.read(*args)\n"
        "        errs.append(None)\n"
        "    except ValueError as e:\n"
        "        errs.append(str(e))\n"
        "try:\n"
        "    files.listing('app', '')\n"
        "    errs.append(None)\n"
        "except ValueError as e:\n"
        "    errs.append(str(e))\n"
        "result([out, errs])\n"
    )
    readable, errs = r
    assert dict(zip(names, readable)) == {n: i < 6 for i, n in enumerate(names)}
    assert "only the log folder" in errs[0]
    assert all(e and "n 1..1024" in e for e in errs[1:4]), errs
    assert "only the log folder logs may be listed" in errs[4]


@pytest.mark.parametrize("cmd", ["list", "read", "pulled"])
def test_log_reads_are_authenticated_for_engineer_or_above(cmd):
    from cryo.link import messages as m
    from host_tools import fwimport  # noqa: F401

    assert m.needs_auth(cmd, {}) and m.ACTION_ROLE[cmd] == "engineer"
    assert not m.role_allows("operator", m.ACTION_ROLE[cmd])
