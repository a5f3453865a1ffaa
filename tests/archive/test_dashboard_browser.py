"""The dashboard in a real headless Chromium (Debian's chromium and chromedriver, selenium).

Lists the virtual boards' sessions, opens a report and zooms its trace,
filters by fault, and shows a live virtual board's temperature updating.
With ``CRYO_SCREENSHOTS=FOLDER`` the main pages are also saved there
(docs/dashboard-*.png are made this way).
"""

import os
import shutil
import time
from pathlib import Path

import pytest
from dashboard import PASSWORDS, Server, make_archive
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait
from sim_harness import SimProcess

from host_tools.serve.live import LiveBoard

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    engine, folder = make_archive(tmp_path_factory.mktemp("browser"))
    yield engine, folder
    engine.dispose()


@pytest.fixture(scope="module")
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000"):
        opts.add_argument(a)
    if os.geteuid() == 0:
        opts.add_argument("--disable-dev-shm-usage")
    drv = webdriver.Chrome(options=opts, service=Service(DRIVER))
    drv.implicitly_wait(5)
    yield drv
    drv.quit()


def _sign_in(drv, server, name):
    drv.delete_all_cookies()
    drv.get(server.url + "/login")
    drv.find_element(By.ID, "name").send_keys(name)
    drv.find_element(By.ID, "password").send_keys(PASSWORDS[name])
    drv.find_element(By.ID, "sign-in").click()
    WebDriverWait(drv, 10).until(lambda d: "/login" not in d.current_url)


def _shot(drv, name):
    folder = os.environ.get("CRYO_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        drv.save_screenshot(str(Path(folder) / f"dashboard-{name}.png"))


def test_sessions_report_zoom_and_fault_filter(mpy, archive, browser):
    server = Server(*archive)
    try:
        _sign_in(browser, server, "ops")
        _shot(browser, "devices")
        browser.get(server.url + "/sessions")
        rows = browser.find_elements(By.CSS_SELECTOR, "tr.session")
        serials = [r.find_element(By.TAG_NAME, "td").text for r in rows]
        assert serials == ["virtual-b"] * 3 + ["virtual-a"] * 6  # newest first
        _shot(browser, "sessions")
        # a report: its trace, zoomed by dragging across the chart
        browser.find_element(By.CSS_SELECTOR, "a[href='/session/virtual-a/3']").click()
        assert (
            "Treatment session 3 — device virtual-a" in browser.find_element(By.TAG_NAME, "h1").text
        )
        summary = browser.find_element(By.ID, "summary").text
        assert "Fault at" in summary and "dose" in summary
        over = browser.find_element(By.CSS_SELECTOR, "#trace .u-over")
        full = browser.execute_script("return cryoCharts[0].scales.x.max")
        _shot(browser, "report")
        w = over.size["width"]
        ActionChains(browser).move_to_element_with_offset(
            over, -w // 4, 0
        ).click_and_hold().move_by_offset(w // 4, 0).release().perform()
        zoomed = browser.execute_script(
            "return [cryoCharts[0].scales.x.min, cryoCharts[0].scales.x.max]"
        )
        assert zoomed[1] < full * 0.9 and zoomed[0] > 0  # a window inside the session
        # the valve chart follows the zoom (one cursor for both)
        assert browser.execute_script("return cryoCharts[1].scales.x.max") == pytest.approx(
            zoomed[1]
        )
        # filter by fault
        browser.get(server.url + "/sessions")
        Select(browser.find_element(By.ID, "fault")).select_by_visible_text("dose")
        browser.find_element(By.ID, "apply").click()
        WebDriverWait(browser, 10).until(lambda d: "fault=dose" in d.current_url)
        rows = browser.find_elements(By.CSS_SELECTOR, "tr.session")
        assert [r.find_element(By.CLASS_NAME, "faults").text for r in rows] == ["dose", "dose"]
        browser.get(server.url + "/fleet")
        assert len(browser.find_elements(By.CSS_SELECTOR, ".uplot")) == 3
        _shot(browser, "fleet")
    finally:
        server.stop()


class _Board(SimProcess):
    """`cryo sim` running the controller; the live view waits for its boot itself."""

    def wait_ready(self):
        pass


@pytest.mark.sim
def test_live_view_shows_a_virtual_boards_temperature_updating(mpy, tmp_path, archive, browser):
    board = _Board(tmp_path)
    live = LiveBoard(board.port, rate_hz=5).start()
    server = Server(*archive, live=live)
    try:
        _sign_in(browser, server, "eng")
        browser.get(server.url + "/live")
        tissue = browser.find_element(By.ID, "tissue")
        WebDriverWait(browser, 120).until(lambda d: tissue.text not in ("", "—"))
        first = float(tissue.text)
        assert 20 < first < 40  # skin at rest on the virtual board's plant
        seen = {tissue.text}
        deadline = time.monotonic() + 20
        while len(seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.3)
            seen.add(tissue.text)
        assert len(seen) >= 3, seen  # new frames keep arriving
        assert "pid.kp = " in browser.find_element(By.ID, "gains").text
        assert browser.find_element(By.ID, "phase").text == "IDLE"
        _shot(browser, "live")
    finally:
        server.stop()
        live.stop()
        board.stop()
