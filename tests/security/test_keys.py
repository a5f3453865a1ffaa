"""`cryo keys`: the development master secret stays outside the repository."""

import stat

import pytest

from host_tools import ROOT, cli, keys
from host_tools.errors import AccessDenied, InvalidInput


def test_init_writes_a_private_key_outside_the_repository(tmp_path, capsys):
    assert cli.main(["keys", "init", "--dir", str(tmp_path / "k")]) == 0
    p = tmp_path / "k" / keys.MASTER_NAME
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert len(keys.load_master(str(tmp_path / "k"))) == 32
    assert "created" in capsys.readouterr().out
    # never replaced: a second init would orphan every provisioned device
    assert cli.main(["keys", "init", "--dir", str(tmp_path / "k")]) == 5
    assert "refusing to replace" in capsys.readouterr().err


def test_init_refuses_a_directory_inside_the_repository():
    with pytest.raises(InvalidInput, match="inside the repository"):
        keys.init_master(str(ROOT / "docs" / "keys"))
    assert not (ROOT / "docs" / "keys").exists()


def test_missing_or_bad_master_named_clearly(tmp_path):
    with pytest.raises(AccessDenied, match="no service master secret at .*cryo keys init"):
        keys.load_master(str(tmp_path))
    (tmp_path / keys.MASTER_NAME).write_text("zz\n")
    with pytest.raises(InvalidInput, match="64 hex digits"):
        keys.load_master(str(tmp_path))
