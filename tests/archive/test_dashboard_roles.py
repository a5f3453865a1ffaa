"""`cryo serve` pages through Flask's test client: sign-in, roles, filters, errors."""

import pytest
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
