"""The web console in a real headless Chromium, against a real broker, worker, API and action worker."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.integration.actions_harness import Actions
from tests.integration.api_harness import Api, run_cli, start_api, wait_worker_ready
from tests.integration.harness import Cluster, failures_per_run, flow_run_event
from tools.browser import chromium

# Generous: a loaded 2-core machine. Nothing here measures speed.
WAIT = 60
ABSOLUTE = re.compile(r"https?://[^\s\"'<>)]+")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    driver = chromium(tmp_path / "chromium-profile")
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: WebDriver, check: Any, what: str) -> Any:
    return WebDriverWait(driver, WAIT, poll_frequency=0.2).until(
        lambda d: check(d), message=f"timed out waiting for {what}"
    )


def origin_of(api: Api) -> str:
    return f"http://127.0.0.1:{api.port}"


def assert_only_same_origin(driver: WebDriver, origin: str) -> None:
    """Every loaded or linked resource of the page is the console's own origin."""
    for attribute in ("src", "href", "action"):
        for element in driver.find_elements(By.CSS_SELECTOR, f"[{attribute}]"):
            # The DOM property is the resolved absolute URL, whatever the markup says.
            resolved = element.get_property(attribute)
            if isinstance(resolved, str) and resolved:
                assert resolved.startswith(origin + "/"), (attribute, resolved)
    source = driver.page_source
    for found in ABSOLUTE.findall(source):
        assert found.startswith(origin), found


def test_console_shows_live_firings_timeline_explain_dead_letters_and_pauses(
    cluster: Cluster, browser: WebDriver
) -> None:
    worker = cluster.start_worker("w1")
    actions = Actions(cluster, action_max_attempts="1", action_backoff="0.1")
    api = start_api(
        cluster,
        worker_urls=f"http://127.0.0.1:{worker.web_port}",
        extra_env={"TRIPWIRE_TOPIC_ACTIONS_DLQ": actions.dlq},
    )
    wait_worker_ready(worker)
    actions.start()
    origin = origin_of(api)

    # Two failures of one run fire it; a webhook nobody listens on fails and is
    # dead-lettered at its first attempt.
    name = f"console-{uuid.uuid4().hex[:8]}"
    automation = {
        **failures_per_run(name, threshold=2, within=3600),
        "description": "fires on the second failure of a run",
        "actions": [
            {"type": "do-nothing"},
            {"type": "call-webhook", "url": "http://127.0.0.1:9/hook"},
        ],
    }
    applied = run_cli(api, "automations", "apply", "-", stdin=json.dumps(automation))
    assert applied.returncode == 0, applied.stderr
    automation_id = applied.stdout.split()[1]
    cluster.wait_loaded("w1", {automation_id})

    # The live feed: subscribed (the stream said `ready`) before anything fires.
    browser.get(f"{origin}/console/feed")
    wait_for(
        browser,
        lambda d: d.find_element(By.ID, "live-state").get_attribute("data-state") == "live",
        "the live feed to connect",
    )
    assert browser.find_elements(By.CSS_SELECTOR, "#feed-items tr") == []
    browser.execute_script("window.notReloaded = true;")
    now = datetime.now(UTC)
    cluster.produce_events(
        [
            flow_run_event("run-1", "Failed", now, number=70_001),
            flow_run_event("run-1", "Failed", now, number=70_002),
            flow_run_event("run-2", "Failed", now, number=70_003),
        ]
    )
    firing = wait_for(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, "#feed-items tr.firing.triggered"),
        "the firing in the live feed",
    )[0]
    assert name in firing.text
    assert "on prefect.flow-run.Failed" in firing.text
    assert "prefect.resource.id=prefect.flow-run.run-1" in firing.text
    failed_row = wait_for(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, "#feed-items tr.action.failed"),
        "the failed action in the live feed",
    )[0]
    assert "call-webhook" in failed_row.text
    assert browser.execute_script("return window.notReloaded === true;"), "the page reloaded"
    assert_only_same_origin(browser, origin)

    # The automation's page, reached from the feed.
    firing.find_element(By.LINK_TEXT, name).click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "timeline"), "the automation page")
    assert browser.current_url == f"{origin}/console/automations/{automation_id}"
    assert browser.find_element(By.ID, "name").text == name
    assert browser.find_element(By.ID, "state").text == "enabled"
    summary = browser.find_element(By.ID, "summary").text
    assert "Reactive: 2 x prefect.flow-run.Failed within 1h" in summary
    assert "per prefect.resource.id" in summary
    marks = browser.find_elements(By.CSS_SELECTOR, "svg.timeline circle.mark-triggered")
    assert len(marks) == 1
    title = marks[0].find_element(By.TAG_NAME, "title").get_attribute("textContent")
    assert title is not None and title.endswith("triggered")
    # run-2's single failure is an open bucket: its key and explain's sentence (run-1's
    # firing opened it a new, empty one, as Prefect does).
    buckets = {
        row.find_element(By.TAG_NAME, "code").text: row.text
        for row in browser.find_elements(By.CSS_SELECTOR, "#explain table.buckets tbody tr")
    }
    assert "1/2" in buckets["prefect.flow-run.run-2"]
    assert "1 of 2 events so far" in buckets["prefect.flow-run.run-2"]
    stored = json.loads(browser.find_element(By.ID, "prefect-json").text)
    assert stored["id"] == automation_id
    assert stored["trigger"]["threshold"] == 2

    # Test a change: the threshold tightened to 3, backtested from the page against the
    # deployed version over the last hour of the topic. run-1's firing would disappear.
    assert_backtest_of_a_tightened_threshold(browser, origin, automation_id)
    with api.client() as http:  # nothing was saved
        assert http.get(f"/automations/{automation_id}").json()["trigger"]["threshold"] == 2
    browser.get(f"{origin}/console/automations/{automation_id}")  # not the POST's page

    # The webhook's failure, with its error, once its outcome is in the history.
    def failures(driver: WebDriver) -> list[Any]:
        driver.refresh()
        return driver.find_elements(By.CSS_SELECTOR, "#failed-actions tbody tr")

    failed = wait_for(browser, failures, "the failed action on the automation page")
    assert len(failed) == 1
    assert "1 call-webhook" in failed[0].text
    assert browser.find_element(By.CSS_SELECTOR, "#counts [data-count=failed]").text == "1"
    assert browser.find_element(By.CSS_SELECTOR, "#counts [data-count=executed]").text == "1"
    browser.find_element(By.LINK_TEXT, "last 7d").click()
    wait_for(browser, lambda d: "range=7d" in d.current_url, "the 7 day range")
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.timeline circle.mark-failed")) == 1

    # Pause with the button: the page and the API say paused.
    browser.find_element(By.ID, "toggle").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "state").text == "paused", "the paused badge")
    assert browser.find_element(By.ID, "toggle").text == "Resume"
    with api.client() as http:
        assert http.get(f"/automations/{automation_id}").json()["enabled"] is False

    # The list: paused, last fired, the trigger in one line, no open bucket while paused.
    browser.get(f"{origin}/console/")
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-automation-id="{automation_id}"]')
    assert "paused" in row.text
    assert "never" not in row.find_element(By.CSS_SELECTOR, "td.when").text
    assert row.find_element(By.CSS_SELECTOR, "td.buckets").text == "0"
    assert row.find_element(By.CSS_SELECTOR, "button").text == "Resume"
    assert_only_same_origin(browser, origin)

    # Dead letters: the action's, and an event the worker could not read.
    cluster.produce([(b"bad-key", b"this is not JSON")])

    def both_kinds(driver: WebDriver) -> bool:
        driver.get(f"{origin}/console/dead-letters")
        kinds = {
            r.get_attribute("class") for r in driver.find_elements(By.CSS_SELECTOR, "tbody tr")
        }
        return kinds == {"event", "action"}

    wait_for(browser, both_kinds, "both dead letters")
    action_row = browser.find_element(By.CSS_SELECTOR, "tbody tr.action")
    assert name in action_row.text
    assert "call-webhook after 1 attempt(s)" in action_row.text
    event_row = browser.find_element(By.CSS_SELECTOR, "tbody tr.event")
    assert "not JSON" in event_row.text
    assert "this is not JSON" in event_row.text
    assert "bad-key" in event_row.text
    with api.client() as http:
        served = http.get("/dead-letters", params={"kind": "action"}).json()
    assert served["following"] is True
    assert [d["automation_id"] for d in served["dead_letters"]] == [automation_id]

    # The assets themselves name no other origin.
    for asset in ("console.js", "console.css"):
        text = httpx.get(f"{origin}/console/static/{asset}", timeout=10).text
        assert ABSOLUTE.findall(text) == [], asset


def assert_backtest_of_a_tightened_threshold(
    browser: WebDriver, origin: str, automation_id: str
) -> None:
    """Run the page's backtest with the threshold at 3; see both timelines and the counts."""
    form = browser.find_element(By.ID, "backtest-json")
    prefilled = json.loads(form.get_property("value"))
    assert prefilled["id"] == automation_id
    assert prefilled["trigger"]["threshold"] == 2
    tightened = {**prefilled, "trigger": {**prefilled["trigger"], "threshold": 3}}
    browser.execute_script("arguments[0].value = arguments[1];", form, json.dumps(tightened))
    Select(browser.find_element(By.ID, "backtest-hours")).select_by_value("1")
    browser.find_element(By.ID, "backtest-run").click()
    result = wait_for(
        browser, lambda d: d.find_elements(By.ID, "backtest-result"), "the backtest's result"
    )[0]
    assert browser.current_url.startswith(f"{origin}/console/automations/{automation_id}/")
    assert not browser.find_elements(By.ID, "backtest-error")

    def count(kind: str) -> str:
        return str(result.find_element(By.CSS_SELECTOR, f"[data-count={kind}]").text)

    assert (count("only_new"), count("only_deployed"), count("both")) == ("0", "1", "0")
    # Both versions' rows: the new one empty, the deployed one with run-1's firing.
    rows = [
        label.text
        for label in result.find_elements(By.CSS_SELECTOR, "#backtest-timeline .row-label")
    ]
    assert rows == ["new version", "deployed"]
    marks = result.find_elements(By.CSS_SELECTOR, "#backtest-timeline circle.mark")
    assert [m.get_attribute("class") for m in marks] == ["mark mark-only_deployed"]
    deployed_y = result.find_elements(By.CSS_SELECTOR, "#backtest-timeline .row-line")[1]
    assert marks[0].get_attribute("cy") == deployed_y.get_attribute("y1")
    title = marks[0].find_element(By.TAG_NAME, "title").get_attribute("textContent") or ""
    assert "only deployed" in title and "prefect.flow-run.run-1" in title
    summary = result.find_element(By.ID, "backtest-summary").text
    read = re.search(r"([\d,]+) events read", summary)
    assert read is not None and int(read.group(1).replace(",", "")) >= 3, summary
    assert "Not cut" in summary
    assert result.find_element(By.ID, "backtest-cut").get_attribute("data-cut") == ""
    (row,) = result.find_elements(By.CSS_SELECTOR, "#backtest-firings tbody tr")
    assert "only deployed" in row.text and "prefect.flow-run.run-1" in row.text
    # The form keeps what was tested and the range chosen; nothing was saved.
    shown = json.loads(browser.find_element(By.ID, "backtest-json").get_property("value"))
    assert shown["trigger"]["threshold"] == 3
    chosen = Select(browser.find_element(By.ID, "backtest-hours")).first_selected_option
    assert chosen.get_attribute("value") == "1"


def test_console_requires_the_token_and_can_be_turned_off(cluster: Cluster) -> None:
    token = uuid.uuid4().hex  # any secret will do
    api = start_api(cluster, token=token)
    origin = origin_of(api)
    page = {"Accept": "text/html"}
    with httpx.Client(base_url=origin, timeout=30) as anonymous:
        # A browser is sent to sign in; anything else gets the API's 401.
        asked = anonymous.get("/console/dead-letters", headers=page)
        assert asked.status_code == 303
        assert asked.headers["location"] == "/console/login?next=%2Fconsole%2Fdead-letters"
        for path in ("/console/", "/console/feed/stream", "/console/automations/x"):
            assert anonymous.get(path).status_code == 401, path
        assert anonymous.post(f"/console/automations/{uuid.uuid4()}/pause").status_code == 401
        assert anonymous.post(f"/console/automations/{uuid.uuid4()}/backtest").status_code == 401
        # The sign-in page and its assets are open; they show nothing of the service.
        assert anonymous.get("/console/login", headers=page).status_code == 200
        assert anonymous.get("/console/static/console.css").status_code == 200

        wrong = anonymous.post("/console/login", data={"token": "guess", "next": "/console/"})
        assert wrong.status_code == 401
        assert "tripwire_console" not in wrong.cookies
        # A form posted from another site is refused, the right token or not.
        forged = anonymous.post(
            "/console/login", data={"token": token}, headers={"Origin": "http://evil.example"}
        )
        assert forged.status_code == 403
        signed = anonymous.post(
            "/console/login",
            data={"token": token, "next": "/console/feed"},
            headers={"Origin": origin},
        )
        assert signed.status_code == 303
        assert signed.headers["location"] == "/console/feed"
        cookie = signed.cookies["tripwire_console"]
        assert token not in cookie
        # `next` never leads off the console.
        away = anonymous.post("/console/login", data={"token": token, "next": "//evil.example/"})
        assert away.headers["location"] == "/console/"

    bearer_header = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=origin, timeout=30, headers=bearer_header) as bearer:
        created = bearer.post("/api/automations/", json=failures_per_run("guarded", 2, 60))
        assert created.status_code == 201, created.text
        guarded = created.json()
    with httpx.Client(
        base_url=origin, timeout=30, cookies={"tripwire_console": cookie}
    ) as browser_like:
        listed = browser_like.get("/console/", headers=page)
        assert listed.status_code == 200
        assert "Content-Security-Policy" in listed.headers
        assert "Sign out" in listed.text
        # The cookie opens the console, not the API: API clients send the bearer token.
        assert browser_like.get("/api/dead-letters").status_code == 401
        # The page's backtest calls the API route with the token, not the cookie.
        tested = browser_like.post(
            f"/console/automations/{guarded['id']}/backtest",
            data={"automation": json.dumps(guarded), "hours": "1"},
            headers={"Origin": origin},
        )
        assert tested.status_code == 200, tested.text
        assert 'id="backtest-result"' in tested.text
        # What the API refuses is shown on the page, the field named.
        for text, says in (("{not json", "Not valid JSON"), ('{"name": "x"}', "trigger")):
            refused = browser_like.post(
                f"/console/automations/{guarded['id']}/backtest",
                data={"automation": text, "hours": "1"},
                headers={"Origin": origin},
            )
            assert refused.status_code == 422
            assert 'id="backtest-error"' in refused.text and says in refused.text
        forged_test = browser_like.post(
            f"/console/automations/{guarded['id']}/backtest",
            data={"automation": json.dumps(guarded), "hours": "1"},
            headers={"Origin": "http://evil.example"},
        )
        assert forged_test.status_code == 403
    with httpx.Client(base_url=origin, timeout=30, cookies={"tripwire_console": "forged"}) as bad:
        assert bad.get("/console/").status_code == 401
    with httpx.Client(base_url=origin, timeout=30, headers=bearer_header) as bearer:
        assert bearer.get("/console/dead-letters").status_code == 200
        assert bearer.get("/api/dead-letters").status_code == 200

    off = start_api(cluster, "api-off", extra_env={"TRIPWIRE_CONSOLE_ENABLED": "false"})
    with httpx.Client(base_url=origin_of(off), timeout=30) as client:
        assert client.get("/console/").status_code == 404
        assert client.get("/console/static/console.js").status_code == 404
        assert client.get("/").status_code == 404
        assert client.get("/api/health").status_code == 200
