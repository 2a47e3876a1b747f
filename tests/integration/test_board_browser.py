"""The board in a real browser: Debian's headless Chromium, driven by Selenium
through Debian's chromedriver (no browser download), against the board served
by uvicorn over a database filled through `mailtriage ingest`.

One browser for the module; its time zone is Asia/Tokyo (UTC+9, no DST), so
the page's script visibly moves each deadline into the viewer's zone. A
screenshot of each page goes to `<pytest basetemp>/test-output/board/`
(pytest prints the folder; `--basetemp=DIR` keeps it in a known place).
Without Chromium the test skips on a laptop and fails under CI=true."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

from boards import HOSTILE_BODY, HOSTILE_SUBJECT, LEAD, PASSWORD, Bench, board_app, board_site, serve
from helpers import need

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.getbasetemp() / "test-output" / "board"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    print(f"\nboard screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    need(CHROMIUM.exists() and CHROMEDRIVER.exists(), "Debian's chromium and chromium-driver (apt-get install -y "
                                                      "chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        need(False, "selenium (pip install -e '.[test]')")
        raise
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1000", "--password-store=basic",
                 "--disable-features=PasswordLeakDetection,HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"credentials_enable_service": False,      # no password manager
                                              "profile.password_manager_enabled": False,
                                              "profile.password_manager_leak_detection": False})
    service = Service(executable_path=str(CHROMEDRIVER), env={"TZ": "Asia/Tokyo",
                                                              "HOME": str(tmp_path_factory.mktemp("home"))})
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Bench:
    return board_site(tmp_path_factory.mktemp("board") / "site")


@pytest.fixture(scope="module")
def board(bench: Bench) -> Iterator[str]:
    asgi, app = board_app(bench.site)
    with serve(asgi) as url:
        yield url
    app.store.close()


def css(driver: Any, selector: str) -> Any:
    """The element, waited for a while; if it never comes, the page the browser
    shows instead (address, title, text) is the failure's message."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, 10).until(expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, selector)))
    except TimeoutException:
        text = driver.execute_script("return document.body ? document.body.innerText : ''") or ""
        raise AssertionError(f"no {selector!r} on {driver.current_url} ({driver.title!r}): {text[:600]!r}") from None


def all_css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def no_alert(driver: Any) -> bool:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


def click_and_wait(driver: Any, element: Any) -> None:
    """Click what loads a new page and wait until the old one is gone: a click
    can return while a slow answer (Argon2 on a busy machine) is still on its way."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    element.click()
    WebDriverWait(driver, 30).until(expected_conditions.staleness_of(element))


def submit_login(driver: Any, name: str, password: str) -> None:
    css(driver, "#name").clear()
    css(driver, "#name").send_keys(name)
    css(driver, "#password").send_keys(password)
    click_and_wait(driver, css(driver, "form.login button"))


def log_in(driver: Any, board: str) -> None:
    """Each test stands alone: log in unless an earlier test left a session."""
    driver.get(board + "/")
    if "/login" in driver.current_url:
        submit_login(driver, LEAD, PASSWORD)
    assert driver.current_url == board + "/"


def test_the_lead_logs_in_sees_the_breached_s1_and_opens_it(browser: Any, board: str, bench: Bench,
                                                             shots: Path) -> None:
    browser.get(board + "/")
    assert browser.current_url == board + "/login?next=/"
    browser.save_screenshot(str(shots / "login.png"))

    submit_login(browser, LEAD, "a wrong password")
    assert css(browser, "p.error").text == "Wrong name or password."
    assert "/login" in browser.current_url and all_css(browser, "#breached") == []
    browser.save_screenshot(str(shots / "login-refused.png"))

    submit_login(browser, LEAD, PASSWORD)
    assert browser.current_url == board + "/"
    rows = all_css(browser, "tr.breached")
    assert [row.find_element("css selector", "a").text for row in rows] == [bench.refs["outage"]]
    deadline = rows[0].find_element("css selector", "time")
    # 09:15 UTC, shown by the page's script in the browser's zone (Tokyo, UTC+9); the calendar's text stays as title.
    assert re.search(r"\b(18:15|06:15 PM)\b.*GMT\+9", deadline.text), deadline.text        # the browser's locale decides the form
    assert deadline.get_attribute("title") == "Mon 02 Mar 09:15 UTC"
    assert "overdue 1h45m" in rows[0].text
    assert [row.find_element("css selector", "a").text for row in all_css(browser, "tr.soon")] == [
        bench.refs["soon"], bench.refs["hostile"]]
    browser.save_screenshot(str(shots / "overview.png"))

    click_and_wait(browser, rows[0].find_element("css selector", "a"))
    assert browser.current_url == f"{board}/tickets/{bench.refs['outage']}"
    assert css(browser, "#subject").text == "Production down: nobody can work"
    assert css(browser, "#sla").text == "breached"
    assert "breached" in css(browser, "body").text and "escalated" in css(browser, "body").text
    browser.save_screenshot(str(shots / "ticket-breached.png"))


def test_hostile_subject_and_body_render_as_text(browser: Any, board: str, bench: Bench, shots: Path) -> None:
    log_in(browser, board)
    browser.get(f"{board}/tickets/{bench.refs['hostile']}")
    assert no_alert(browser)
    assert css(browser, "#subject").text == HOSTILE_SUBJECT                      # visible, as written
    assert css(browser, "pre.body").text == HOSTILE_BODY.strip()
    assert browser.execute_script("return document.querySelectorAll('img').length") == 0
    assert browser.execute_script("return document.querySelectorAll('b').length") == 0
    assert browser.execute_script(
        "return Array.from(document.scripts).map(s => s.textContent).filter(t => t.includes('alert')).length") == 0
    browser.save_screenshot(str(shots / "ticket-hostile.png"))

    browser.get(board + "/")
    assert no_alert(browser)
    assert HOSTILE_SUBJECT in [cell.text for cell in all_css(browser, "tr.soon td.subject")]
    assert browser.execute_script("return document.scripts.length") == 1           # the time-zone script alone


def test_report_tickets_and_the_sizes_of_a_phone_and_a_wall(browser: Any, board: str, bench: Bench,
                                                             shots: Path) -> None:
    log_in(browser, board)
    browser.get(board + "/report")
    assert css(browser, "h1").text == "SLA compliance"
    assert len(all_css(browser, "svg rect")) >= 6 and len(all_css(browser, "table.report")) == 3
    browser.save_screenshot(str(shots / "report.png"))

    browser.get(board + "/")
    click_and_wait(browser, css(browser, 'a[href="/tickets?queue=support&severity=S2&tier=L1"]'))
    assert [a.text for a in all_css(browser, "td a")] == [bench.refs["soon"]]
    browser.save_screenshot(str(shots / "tickets.png"))

    try:
        browser.set_window_size(390, 844)                                         # a phone
        browser.get(board + "/")
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        browser.save_screenshot(str(shots / "overview-phone.png"))
        browser.set_window_size(2560, 1440)                                       # a wall screen
        browser.get(board + "/")
        assert browser.execute_script("return getComputedStyle(document.body).fontSize") == "22px"
        browser.save_screenshot(str(shots / "overview-wall.png"))
    finally:
        browser.set_window_size(1280, 1000)

    click_and_wait(browser, css(browser, "header form button"))                    # log out
    assert "/login" in browser.current_url
    browser.get(board + "/report")
    assert "/login" in browser.current_url
    names = {path.name for path in shots.iterdir()}
    assert {"overview-phone.png", "overview-wall.png", "report.png", "tickets.png"} <= names
