"""The control room in a real browser: Debian's headless Chromium driven by Selenium against a live
server (pytest-django's live_server). Screenshots land in .artifacts/browser/ (gitignored).

Skipped, with the reason, when chromium, chromedriver or selenium is missing (install:
`apt-get install -y chromium chromium-driver`).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from sessions_app.models import ChatSession
from tests.controlroom.support import PASSWORD, active_session, go_online, staff

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts" / "browser"

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    SKIP_REASON = (
        f"needs {', '.join(_missing)} (apt-get install chromium chromium-driver)" if _missing else ""
    )
except ImportError:  # pragma: no cover - selenium is a dev requirement
    SKIP_REASON = "selenium is not installed (requirements-dev.txt)"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(bool(SKIP_REASON), reason=SKIP_REASON or "-"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Callable[[str], None]]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    _blank(browser)

    def go(path: str) -> None:
        browser.get(live_server.url + path)

    yield go
    _blank(browser)


def _blank(browser: Any) -> None:
    """Leave the previous page before clearing cookies. A dashboard left open keeps polling; once its
    session cookie is gone, a poll is redirected to the login page, which sets a fresh CSRF cookie. If
    that response lands after the next test's login page has rendered its form, the form's token no
    longer matches the cookie and the login is refused with a 403 (seen in CI). about:blank stops the
    page's timers; the CDP call clears every cookie, not only the current document's."""
    browser.get("about:blank")
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})


def _shot(browser: Any, name: str) -> None:
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def _wait(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll `predicate`; an element replaced by a navigation in between (stale) counts as not yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except StaleElementReferenceException:
            pass
        time.sleep(0.1)
    return predicate()


def _login(browser: Any, go: Callable[[str], None], username: str) -> None:
    go(reverse("admin:login") + "?next=/admin/")
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "#login-form input[type=submit]").click()
    assert _wait(lambda: "/admin/login" not in browser.current_url), browser.page_source[:500]


@pytest.mark.parametrize(
    ("role", "sees", "does_not_see"),
    [
        ("support", ["Chat sessions", "Mitras", "Live sessions"], ["Pricing tiers", "Payment requests"]),
        ("finance", ["Pricing tiers", "Payment requests"], ["Chat sessions", "Live sessions"]),
        ("admin", ["Pricing tiers", "Chat sessions", "Live sessions", "Audit trail"], []),
    ],
)
def test_each_role_logs_in_and_sees_its_part(browser, page, role, sees, does_not_see):
    staff(role, f"browser-{role}")
    _login(browser, page, f"browser-{role}")
    body = browser.find_element(By.TAG_NAME, "body").text
    _shot(browser, f"dashboard-{role}")
    assert browser.find_element(By.ID, "cr-dashboard").is_displayed()
    for text in sees:
        assert text in body, text
    for text in does_not_see:
        assert text not in body, text


def test_dashboard_counts_change_without_reload_after_a_session_starts(
    browser, page, settings, make_customer, make_mitra
):
    settings.CONTROLROOM_DASHBOARD_REFRESH_MS = 500
    mitra = make_mitra("Kirana")
    go_online(mitra)
    staff("support", "browser-watch")
    _login(browser, page, "browser-watch")
    active = browser.find_element(By.ID, "cr-active")
    assert active.text == "0"
    browser.execute_script("window.__sameDocument = true;")
    _shot(browser, "dashboard-before")

    active_session(make_customer(), mitra)

    assert _wait(lambda: browser.find_element(By.ID, "cr-active").text == "1"), "count did not update"
    assert browser.execute_script("return window.__sameDocument === true;"), "the page was reloaded"
    _shot(browser, "dashboard-after")


def test_reroute_in_the_browser(browser, page, make_customer, make_mitra):
    first, second = make_mitra("Lestari"), make_mitra("Made")
    go_online(first)
    session = active_session(make_customer(), first)
    go_online(second)
    staff("support", "browser-reroute")
    _login(browser, page, "browser-reroute")

    page(reverse("admin:controlroom_live"))
    _shot(browser, "live-sessions")
    browser.find_element(By.CSS_SELECTOR, f'tr[data-session="{session.pk}"] a.cr-reroute').click()
    Select(browser.find_element(By.NAME, "to_mitra")).select_by_visible_text(str(second))
    browser.find_element(By.ID, "cr-next").click()
    assert _wait(lambda: "Reroute session" in browser.find_element(By.TAG_NAME, "body").text)
    _shot(browser, "reroute-confirm")
    browser.find_element(By.ID, "cr-confirm").click()
    assert _wait(lambda: "rerouted to Made" in browser.find_element(By.TAG_NAME, "body").text)
    _shot(browser, "reroute-done")
    assert ChatSession.objects.get(pk=session.pk).mitra_id == second.pk
