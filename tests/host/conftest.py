"""Fixtures for the host-tool tests: keystore/build cache isolation, a virtual port."""

import pytest


@pytest.fixture(autouse=True)
def _isolated_host_state(tmp_path, monkeypatch):
    # Never touch the user's keystore; keep mpy-cross output per test session.
    monkeypatch.setenv("CRYO_KEYSTORE", str(tmp_path / "keys"))
    monkeypatch.delenv("CRYO_PORT", raising=False)


@pytest.fixture(scope="session", autouse=True)
def _build_cache(tmp_path_factory):
    import os

    d = tmp_path_factory.mktemp("build")
    old = os.environ.get("CRYO_BUILD_DIR")
    os.environ["CRYO_BUILD_DIR"] = str(d)
    yield d
    if old is None:
        os.environ.pop("CRYO_BUILD_DIR", None)
    else:
        os.environ["CRYO_BUILD_DIR"] = old
