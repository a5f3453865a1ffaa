"""`cryo serve` pages through Flask's test client: sign-in, roles, filters, errors."""

import pytest
import treatments
from dashboard import PASSWORDS, make_archive

from host_tools.serve.app import create_app


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    engine, folder = make_archive(tmp_path_factory.mktemp("dash"))
    yield create_app(engine, folder, secret=b"test")
    engine.dispose()


def _signed_in(app, name):
    c = app.test_client()
    r = c.post("/login", data={"name": name, "password": PASSWORDS[name]})
    assert r.status_code == 302
    with c.session_transaction() as s:
        csrf = s["csrf"]
    return c, csrf


def test_every_page_needs_a_user_and_a_wrong_password_is_refused(mpy, app):
    c = app.test_client()
    for page in ("/", "/sessions", "/fleet", "/session/virtual-a/1", "/live"):
        r = c.get(page)
        assert r.status_code == 302 and r.location.startswith("/login")
    r = c.post("/login", data={"name": "svc", "password": "guess"})
    assert r.status_code == 401 and b"unknown user or wrong password" in r.data


def test_read_only_for_all_but_service(mpy, app):
    for name, status in (("ops", 403), ("eng", 403), ("svc", 200)):
        c, csrf = _signed_in(app, name)
        assert (b'id="reindex"' in c.get("/").data) == (name == "svc")
        r = c.post("/reindex", data={"csrf": csrf})
        assert r.status_code == status
    assert b"re-indexed 2 devices, 9 sessions" in r.data
    c, _ = _signed_in(app, "svc")
    assert c.post("/reindex", data={"csrf": "forged"}).status_code == 400


def test_live_view_is_for_engineers_and_says_when_no_board_is_connected(mpy, app):
    ops, _ = _signed_in(app, "ops")
    assert ops.get("/live").status_code == 403
    eng, _ = _signed_in(app, "eng")
    assert b"No board connected" in eng.get("/live").data
    assert eng.get("/api/live").status_code == 404


def test_the_sessions_page_lists_the_newest_and_says_how_many_match(mpy, app, monkeypatch):
    from host_tools.serve import app as pages

    monkeypatch.setattr(pages, "PAGE_ROWS", 4)
    c, _ = _signed_in(app, "ops")
    page = c.get("/sessions").data.decode()
    assert "9 sessions: the newest 4 shown" in page
    assert page.count('class="session"') == 4 and "/session/virtual-b/3" in page


def test_session_filters_and_their_errors(mpy, app):
    c, _ = _signed_in(app, "ops")
    page = c.get("/sessions?fault=any&since=2026-09-01&until=2026-10-01").data.decode()
    assert "3 sessions" in page and page.count('class="session"') == 3
    r = c.get("/sessions?outcome=exploded")
    assert r.status_code == 400 and "outcome &#39;exploded&#39; is not one of" in r.data.decode()
    r = c.get("/session/virtual-a/99")
    assert r.status_code == 404 and b"no session 99" in r.data
    r = c.get("/session/elsewhere/1")
    assert r.status_code == 404 and b"not in" in r.data


def test_a_report_page_has_what_the_pdf_has(mpy, app):
    c, _ = _signed_in(app, "ops")
    page = c.get("/session/virtual-a/3").data.decode()
    for what in ("Device serial", "virtual-a", "Cycles done", "Fault at", "dose", "Reviewed by"):
        assert what in page, what
    assert '"tissue_c": [' in page and "const FAULTS" in page


def test_the_devices_page_shows_each_firmware_hash(mpy, app):
    c, _ = _signed_in(app, "ops")
    page = c.get("/").data.decode()
    for fw in ("0.1.0", "0.2.0"):
        full = treatments.fw_hash(fw)
        assert f'<td class="fw-hash" title="{full}">{full[:12]}</td>' in page


def test_sessions_of_a_board_whose_clock_was_not_set_say_so(mpy, tmp_path):
    from host_tools.archive_db import location, store, users

    treatments.write(tmp_path / "c.img", 3, clock=False)
    treatments.pull(tmp_path / "c.img", tmp_path / "archive", "virtual-c")
    engine = store.open_engine(location.locate(tmp_path / "archive").url)
    users.set_user(engine, "ops", "operator", PASSWORDS["ops"])
    c, _ = _signed_in(create_app(engine, tmp_path / "archive", secret=b"test"), "ops")
    page = c.get("/sessions").data.decode()
    assert page.count('<td class="started">clock not set</td>') == 3
    assert "0 sessions" in c.get("/sessions?since=2000-01-01").data.decode()
    page = c.get("/sessions?clock_not_set=yes").data.decode()
    assert "3 sessions" in page and page.count('class="session"') == 3
    fleet = c.get("/fleet").data.decode()
    assert "3 sessions from boards whose clock was not set are in no week" in fleet
    assert '"faults": []' in fleet  # its fault has no week either
    engine.dispose()
