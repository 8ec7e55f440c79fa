"""The status page in a real browser (Debian's headless Chromium driven through Selenium) against
the local stack with the real agent: live badges, a policy violation's message, a hostile name
shown as text, keyboard use and a 375 px wide screen. Screenshots are kept as artifacts under
`.ferry/artifacts/` (or `$FERRY_TEST_ARTIFACTS`)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, TimeoutException
from selenium.webdriver import Chrome
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from ferry.local.agent_process import AgentProcess
from ferry.local.sample import SAMPLE_COMPOSE_PATH, commit_file, head_commit
from ferry.local.stack import LocalStack
from tests.conftest import running_in_ci
from tests.helpers import (
    commit,
    compose,
    create_application,
    create_repository,
    push_webhook,
    wait_for_status,
)

pytestmark = pytest.mark.docker

T = TypeVar("T")

CHROMIUM = os.environ.get("FERRY_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("FERRY_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = Path(
    os.environ.get("FERRY_TEST_ARTIFACTS")
    or Path(__file__).resolve().parents[2] / ".ferry" / "artifacts"
)
HOSTILE_NAME = "<img src=x onerror=alert(1)>"

# Runs before the page's own scripts in every document (through DevTools, so the page's CSP does
# not apply to it): records alerts and CSP violations instead of letting them pass unseen.
OBSERVE = """
window.__alerts = [];
window.__violations = [];
// A script the document could not load (a module of the page's graph included): so that a load
// the machine dropped can be told from a page still starting.
window.__scriptFailed = false;
window.addEventListener("error", (event) => {
  if (event.target instanceof HTMLScriptElement) window.__scriptFailed = true;
}, true);
window.alert = (message) => window.__alerts.push(String(message));
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""

# Records every value an application's sync badge shows, however briefly.
RECORD_BADGES = """
const [id] = arguments;
window.__seen = [];
window.__sameDocument = "still here";
const read = () => {
  const badge = document.querySelector(`tr[data-id="${id}"] [data-field="sync_status"]`);
  const text = badge ? badge.textContent : null;
  if (text && window.__seen[window.__seen.length - 1] !== text) window.__seen.push(text);
};
read();
new MutationObserver(read).observe(document.body, {
  subtree: true, childList: true, characterData: true,
});
"""


def browser_missing() -> str | None:
    """None when Chromium and its driver are installed, else what is missing."""
    for program in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(program) is None:
            return f"{program} not found (Debian: apt-get install chromium chromium-driver)"
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chrome]:
    """Headless Chromium with a fresh profile; fails in CI when it is missing, skips elsewhere."""
    missing = browser_missing()
    if missing is not None:
        if running_in_ci():
            pytest.fail(f"{missing}; CI must provide the browser")
        pytest.skip(f"{missing}; the web page's browser tests need it")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # runs as root in CI containers
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        "--window-size=1280,900",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": OBSERVE})
    yield driver
    driver.quit()


def wait_in(driver: Chrome, probe: Callable[[Chrome], T], *, timeout: float = 30) -> T:
    """Poll the page until `probe` returns something truthy (WebDriverWait: a deadline, no
    fixed sleeps); on timeout, say what the page showed and keep a screenshot."""
    try:
        result: T = WebDriverWait(driver, timeout, poll_frequency=0.1).until(probe)
    except TimeoutException:
        shown = driver.execute_script(
            "return `${location.href}\\n${document.body.innerText}`.slice(0, 3000)"
        )
        path = screenshot(driver, "timeout")
        raise AssertionError(
            f"timed out after {timeout} s; screenshot {path}; the page showed:\n{shown}\n"
            f"console errors: {console_errors(driver)}\nrequests: {requested(driver)}"
        ) from None
    return result


def open_page(driver: Chrome, stack: LocalStack, route: str = "#/") -> None:
    """Load the page afresh, signed in through the link `ferry up` prints, then go to `route`."""
    assert stack.state is not None
    driver.set_window_size(1280, 900)
    console_errors(driver)  # what earlier pages logged is theirs
    # Docker adding or removing an interface makes Chromium drop a request in flight
    # (ERR_NETWORK_CHANGED), the navigation or one of the page's modules: that is the machine,
    # not the page, so load it again. Any other script that does not load fails the test.
    for _attempt in range(3):
        driver.get("about:blank")  # a new document, not a same-page fragment change
        driver.get(f"{stack.api_url}/#token={stack.state.token}")
        if driver.current_url.startswith("chrome-error:"):
            continue
        started = wait_in(driver, lambda d: _live(d) or _script_failed(d))
        if started == "live":
            break
        errors = _logged_errors(driver)
        if not any("ERR_NETWORK_CHANGED" in error for error in errors):
            raise AssertionError(f"the page's scripts did not load: {errors}")
    else:
        raise AssertionError("the page did not load in 3 attempts (ERR_NETWORK_CHANGED)")
    if route != "#/":
        driver.execute_script("window.location.hash = arguments[0]", route)


def _logged_errors(driver: Chrome) -> list[str]:
    """The console's errors, waiting a moment for the first (they reach the log after the
    failure that caused them)."""
    errors: list[str] = []

    def logged(d: Chrome) -> bool:
        errors.extend(console_errors(d))
        return bool(errors)

    with contextlib.suppress(TimeoutException):  # none came: the caller says so
        WebDriverWait(driver, 5, poll_frequency=0.1).until(logged)
    return errors


def _live(driver: Chrome) -> str | None:
    return "live" if text(driver, "#live") == "● live" else None


def _script_failed(driver: Chrome) -> str | None:
    return "script failed" if driver.execute_script("return window.__scriptFailed") else None


def text(driver: Chrome, selector: str) -> str | None:
    """What the first element matching `selector` shows now (None when there is none); read in
    one step, so a re-rendered element is never stale."""
    shown: str | None = driver.execute_script(
        "return document.querySelector(arguments[0])?.innerText ?? null", selector
    )
    return shown


def sync_badge(driver: Chrome, application_id: str) -> str | None:
    return text(driver, f'tr[data-id="{application_id}"] [data-field="sync_status"]')


def console_errors(driver: Chrome) -> list[str]:
    """Errors the browser's console received since the last call (failed loads, exceptions)."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [entry["message"] for entry in entries if entry["level"] == "SEVERE"]


def requested(driver: Chrome) -> list[str]:
    """The URLs the page has fetched (completed requests), in order."""
    names: list[str] = driver.execute_script(
        "return performance.getEntriesByType('resource').map((entry) => entry.name)"
    )
    return names


def page_problems(driver: Chrome) -> dict[str, Any]:
    """Alerts, CSP violations and console errors the page caused so far."""
    return {
        "alerts": driver.execute_script("return window.__alerts"),
        "violations": driver.execute_script("return window.__violations"),
        "errors": console_errors(driver),
    }


def screenshot(driver: Chrome, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"web-ui-{name}.png"
    assert driver.save_screenshot(str(path)), path
    return path


@pytest.fixture
def sample_synced(stack: LocalStack, api: httpx.Client, local_agent: AgentProcess) -> str:
    """The sample application, synced at its repository's head (now that the agent runs)."""
    state = stack.state
    assert state is not None and state.sample_webhook_secret is not None
    head = head_commit(state.sample_path)
    response = push_webhook(stack.api_url, state.sample_repository.id, state.sample_webhook_secret)
    assert response.status_code == 202, response.text
    wait_for_status(api, state.sample_application.id, "synced", commit=head, timeout=90)
    return state.sample_application.id


def test_web_page_sample_synced_then_push_goes_syncing_then_synced_without_reload(
    stack: LocalStack, browser: Chrome, sample_synced: str, unique: str
) -> None:
    state = stack.state
    assert state is not None and state.sample_webhook_secret is not None
    open_page(browser, stack)
    wait_in(browser, lambda d: sync_badge(d, sample_synced) == "synced")
    assert text(browser, f'tr[data-id="{sample_synced}"] a') == "hello"
    screenshot(browser, "applications")
    browser.execute_script(RECORD_BADGES, sample_synced)

    compose_file = state.sample_path / SAMPLE_COMPOSE_PATH
    changed = re.sub(
        r"echo '[^']*'", f"echo 'hello from the web page {unique}'", compose_file.read_text()
    )
    head = commit_file(state.sample_path, SAMPLE_COMPOSE_PATH, changed, f"Web page test {unique}")
    response = push_webhook(stack.api_url, state.sample_repository.id, state.sample_webhook_secret)
    assert response.status_code == 202, response.text

    commit_shown = f'tr[data-id="{sample_synced}"] code.commit'
    wait_in(
        browser,
        lambda d: (
            d.execute_script("return window.__seen").count("syncing")
            and sync_badge(d, sample_synced) == "synced"
            and text(d, commit_shown) == head[:12]
        ),
        timeout=90,
    )
    seen = browser.execute_script("return window.__seen")
    assert seen[0] == "synced" and seen[-1] == "synced", seen
    assert "syncing" in seen[1:-1], seen
    assert browser.execute_script("return window.__sameDocument") == "still here"  # no reload
    assert f"Web page test {unique}" in (text(browser, f'tr[data-id="{sample_synced}"]') or "")
    assert page_problems(browser) == {"alerts": [], "violations": [], "errors": []}


def test_web_page_shows_policy_violation_message(
    stack: LocalStack,
    api: httpx.Client,
    local_agent: AgentProcess,
    browser: Chrome,
    git_repo: Path,
    unique: str,
) -> None:
    assert stack.state is not None
    privileged = compose().replace("    image:", "    privileged: true\n    image:", 1)
    commit(git_repo, "app/compose.yaml", privileged)
    repository = create_repository(api, git_repo)
    application = create_application(
        api,
        name=f"privileged {unique}",
        repository_id=repository["id"],
        agent_id=stack.state.agent_id,
    )
    refused = wait_for_status(api, application["id"], "out_of_sync", timeout=90)
    message = refused["last_sync_error"]
    assert "privileged" in message

    open_page(browser, stack)
    error_in_row = f'tr[data-id="{application["id"]}"] [data-field="last_sync_error"]'
    wait_in(browser, lambda d: d.find_elements(By.CSS_SELECTOR, error_in_row))
    assert text(browser, error_in_row) == message.strip()
    assert sync_badge(browser, application["id"]) == "out of sync"

    browser.find_element(By.CSS_SELECTOR, f'tr[data-id="{application["id"]}"] a').click()
    wait_in(browser, lambda d: text(d, "main h1") == f"privileged {unique}")
    assert text(browser, '.facts [data-field="last_sync_error"]') == message.strip()
    wait_in(browser, lambda d: "failed" in (text(d, "table.history tbody") or ""))
    screenshot(browser, "policy-violation")
    assert page_problems(browser) == {"alerts": [], "violations": [], "errors": []}


def test_web_page_renders_hostile_name_as_text(
    stack: LocalStack,
    api: httpx.Client,
    local_agent: AgentProcess,
    browser: Chrome,
    git_repo: Path,
) -> None:
    assert stack.state is not None
    commit(git_repo, "app/compose.yaml", compose(), "<script>alert(2)</script> in a message")
    repository = create_repository(api, git_repo)
    application = create_application(
        api, name=HOSTILE_NAME, repository_id=repository["id"], agent_id=stack.state.agent_id
    )
    wait_for_status(api, application["id"], "synced", "out_of_sync", timeout=90)

    open_page(browser, stack)
    link = f'tr[data-id="{application["id"]}"] a'
    wait_in(browser, lambda d: d.find_elements(By.CSS_SELECTOR, link))
    assert text(browser, link) == HOSTILE_NAME
    row = text(browser, f'tr[data-id="{application["id"]}"]') or ""
    assert "<script>alert(2)</script> in a message" in row
    assert browser.find_elements(By.TAG_NAME, "img") == []
    assert browser.find_elements(By.CSS_SELECTOR, "main script") == []

    browser.find_element(By.CSS_SELECTOR, link).click()
    wait_in(browser, lambda d: text(d, "main h1") == HOSTILE_NAME)
    assert browser.title == f"{HOSTILE_NAME} · Ferry"
    assert browser.find_elements(By.TAG_NAME, "img") == []
    with pytest.raises(NoAlertPresentException):
        _ = browser.switch_to.alert.text
    assert page_problems(browser) == {"alerts": [], "violations": [], "errors": []}


def test_web_page_token_stays_out_of_urls_and_sign_out_asks_for_it_again(
    stack: LocalStack, browser: Chrome, sample_synced: str
) -> None:
    assert stack.state is not None
    token = stack.state.token
    open_page(browser, stack)
    wait_in(browser, lambda d: sync_badge(d, sample_synced) == "synced")
    assert token not in browser.current_url  # the fragment is dropped once read
    urls = requested(browser)
    assert any("/api/v1/applications" in url for url in urls), urls
    assert not [url for url in urls if token in url or "token=" in url]
    assert browser.execute_script("return sessionStorage.getItem('ferry.token')") == token

    browser.find_element(By.ID, "sign-out").click()
    field = wait_in(browser, lambda d: d.find_element(By.ID, "token"))
    assert browser.execute_script("return sessionStorage.getItem('ferry.token')") is None
    assert browser.find_elements(By.CSS_SELECTOR, "tr[data-id]") == []

    field.send_keys("tok_nope.wrong" + Keys.ENTER)
    wait_in(browser, lambda d: "refused" in (text(d, "main") or ""))
    assert browser.execute_script("return sessionStorage.getItem('ferry.token')") is None

    browser.find_element(By.ID, "token").send_keys(token + Keys.ENTER)
    wait_in(browser, lambda d: sync_badge(d, sample_synced) == "synced")
    assert token not in browser.current_url


def test_web_page_keyboard_reaches_and_opens_an_application(
    stack: LocalStack, browser: Chrome, sample_synced: str
) -> None:
    open_page(browser, stack)
    wait_in(browser, lambda d: sync_badge(d, sample_synced) == "synced")
    target = f"#/applications/{sample_synced}"
    body = browser.find_element(By.TAG_NAME, "body")
    body.click()
    for _ in range(40):
        focused: WebElement = browser.switch_to.active_element
        if (focused.get_attribute("href") or "").endswith(target):
            break
        focused.send_keys(Keys.TAB)
    else:
        pytest.fail("Tab never reached the sample's link")
    focused.send_keys(Keys.ENTER)
    wait_in(browser, lambda d: text(d, "main h1") == "hello")
    # The application's page: the deploy's path through the state machine and its history.
    states: list[str] = wait_in(
        browser,
        lambda d: d.execute_script(
            "return [...document.querySelectorAll('.deploy-path ol.states li')]"
            ".map((item) => item.textContent)"
        ),
    )
    assert states[:2] == ["Marked", "DispatchToAgent"] and "DispatchToAgent" in states, states
    assert "ApplyDeployResult" in states, states
    buttons = browser.execute_script(
        "return [...document.querySelectorAll('.actions button')].map((b) => b.textContent)"
    )
    assert buttons[:3] == ["Sync repository", "Redeploy", "Cancel deploy"], buttons


def test_web_page_redeploy_button_redeploys_live(
    stack: LocalStack, browser: Chrome, sample_synced: str
) -> None:
    open_page(browser, stack, f"#/applications/{sample_synced}")
    wait_in(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".deploy-path ol.states li"))
    before = text(browser, ".deploy-path code")

    browser.find_element(By.XPATH, "//button[normalize-space()='Redeploy']").click()
    confirm = wait_in(browser, expected_conditions.alert_is_present())
    assert confirm and confirm.text.startswith("Redeploy hello at ")
    confirm.accept()

    wait_in(browser, lambda d: "accepted" in (text(d, "#notice") or ""))
    wait_in(
        browser,
        lambda d: (
            text(d, ".deploy-path code") not in (None, before)
            and text(d, '.deploy-path [data-field="execution"]') == "succeeded"
            and text(d, '.badges [data-field="sync_status"]') == "synced"
        ),
        timeout=90,
    )
    screenshot(browser, "application")


def test_web_page_fits_375px_wide(stack: LocalStack, browser: Chrome, sample_synced: str) -> None:
    for route in ("#/", f"#/applications/{sample_synced}", "#/agents", "#/repositories"):
        open_page(browser, stack, route)
        browser.set_window_size(375, 800)
        wait_in(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "main h1"))
        width = browser.execute_script("return window.innerWidth")
        wait_in(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "main table, main .empty"))
        assert browser.execute_script("return document.documentElement.scrollWidth") <= width, route
    screenshot(browser, "375px")
    assert page_problems(browser) == {"alerts": [], "violations": [], "errors": []}
