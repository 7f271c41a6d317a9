"""The ops dashboard (feedback, /dashboard) in a real (headless Debian) Chromium, against
all four services on the local Kafka: the queues table and both charts render, a new
chat ticket changes the queue figures without a reload, and a declared incident shows
among the active ones, its markup as text."""
from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from tests.conftest import OPS_TOKEN
from tests.integration.chat_client import ChatCustomer

pytestmark = pytest.mark.e2e

SCREENSHOT = "/tmp/dashboard-e2e.png"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'")
HOSTILE = "<img src=x onerror=window.__pwned=1>"

# Records what the page itself saw: any Content-Security-Policy violation (inline code
# or style would be one), and whether injected code ran (it would set window.__pwned).
PROBE = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""


class Ops:
    """One operator's browser context on the dashboard, with the page's errors collected."""

    def __init__(self, browser: Browser, feedback_url: str) -> None:
        self.context: BrowserContext = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 1000})
        self.context.add_init_script(PROBE)
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.url = feedback_url
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._console)
        self.page.on("dialog", lambda dialog: (self.errors.append(f"dialog: {dialog.message}"), dialog.dismiss()))

    def _console(self, message: ConsoleMessage) -> None:
        """Console errors, but the browser's own favicon request (the service has none)."""
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            self.errors.append(f"console: {message.text} ({message.location.get('url')})")

    def open(self, query: str = "") -> Page:
        response = self.page.goto(self.url + "/dashboard" + query)
        assert response is not None and response.status == 200
        headers = response.headers
        assert headers["content-security-policy"] == CSP
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store"
        return self.page

    def rendered(self) -> None:
        """The queues table, both charts (with their titles), and the live feed."""
        page = self.page
        expect(page.locator("#queue-total")).to_have_attribute("data-open", re.compile(r"^\d+$"))
        for chart in ("#csat-svg", "#times-svg"):
            expect(page.locator(chart)).to_be_visible()
            expect(page.locator(f"{chart} > title")).not_to_have_text("")
            expect(page.locator(f"{chart} > desc")).not_to_have_text("")
        expect(page.locator("#times-svg .legend")).to_contain_text("First response")
        expect(page.locator("#csat-table tbody tr")).to_have_count(14)
        expect(page.locator("#live")).to_have_text("live")
        expect(page.locator("#updated")).not_to_have_text("–")

    def check_clean(self) -> None:
        assert self.page.evaluate("window.__pwned") is None, "markup in the data ran as code"
        assert self.page.evaluate("window.__csp") == [], "Content-Security-Policy violations"
        assert not self.errors, f"page errors: {self.errors}"


@pytest.fixture
def ops(browser: Browser, pipeline_services) -> Iterator[Ops]:
    ops = Ops(browser, pipeline_services["feedback"].url)
    yield ops
    ops.context.close()


def open_chat_ticket(intake_url: str, text: str) -> dict[str, Any]:
    """A chat customer's first message (a new ticket). ChatCustomer is asyncio; the sync
    Playwright API owns this thread, so it runs in a thread of its own."""
    async def say() -> dict[str, Any]:
        async with aiohttp.ClientSession() as http:
            return await ChatCustomer(http, intake_url, name="Dashboard Watcher", language="en").say(text)

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, say()).result(timeout=60)


def queue_total(page: Page) -> int:
    return int(page.locator("#queue-total").get_attribute("data-open") or "0")


def test_the_page_speaks_spanish_and_serves_only_its_own_files(ops: Ops):
    page = ops.open("?lang=es")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.locator("#queues-title")).to_have_text("Colas en directo")
    expect(page.locator("#csat-caption")).to_have_text("CSAT por día")
    expect(page.locator("#csat-svg > title")).to_have_text("CSAT por día")
    for name in ("dashboard.js", "dashboard.css"):
        response = ops.context.request.get(f"{ops.url}/dashboard/static/{name}")
        assert response.status == 200 and response.headers["x-content-type-options"] == "nosniff"
    for name in ("survey.css", "dashboard.html", "..%2Fapp.py", "%2e%2e%2f__init__.py"):
        assert ops.context.request.get(f"{ops.url}/dashboard/static/{name}").status == 404, name
    ops.check_clean()


def test_queues_and_incidents_update_live_and_markup_stays_text(ops: Ops, pipeline_services):
    page = ops.open()
    ops.rendered()
    page.evaluate("window.__same_page = true")  # gone if the page reloads
    before = queue_total(page)

    said = f"My fibre internet connection keeps dropping every few minutes ({uuid.uuid4().hex[:6]})"
    open_chat_ticket(pipeline_services["intake"].url, said)
    page.wait_for_function("(before) => Number(document.getElementById('queue-total').dataset.open) > before", arg=before,
                           timeout=60_000)
    assert page.evaluate("window.__same_page") is True, "the page reloaded"

    notifier = pipeline_services["notifier"].url
    auth = {"Authorization": f"Bearer {OPS_TOKEN}"}
    service = f"dash-e2e-{uuid.uuid4().hex[:8]}"
    message = f"Fibre down in the north {HOSTILE}"
    fix_at = (datetime.now(timezone.utc) + timedelta(hours=2)).isoformat()
    declared = ops.context.request.post(f"{notifier}/api/incidents", headers=auth, data={
        "service": service, "region": "ES", "skill": "network", "message": {"en": message}, "expected_fix_at": fix_at})
    assert declared.status == 201, declared.text()
    incident_id = declared.json()["incident_id"]
    try:
        item = page.locator(f"#active-incidents li[data-incident='{incident_id}']")
        expect(item).to_have_count(1, timeout=60_000)
        expect(item.locator(".service")).to_have_text(service)
        expect(item.locator(".message")).to_have_text(message)
        expect(item.locator(".badge.region")).to_have_text("ES")
        expect(item.locator(".badge.skill")).to_have_text("network")
        expect(item.locator(".fix")).to_contain_text("expected fix")
        assert page.evaluate("document.querySelectorAll('#active-incidents img, #active-incidents script').length") == 0
        assert page.evaluate("window.__same_page") is True, "the page reloaded"
        page.screenshot(path=SCREENSHOT, full_page=True)
        ops.check_clean()
    finally:
        resolve_incident(ops, f"{notifier}/api/incidents/{incident_id}/resolve", auth)


def resolve_incident(ops: Ops, url: str, auth: dict[str, str]) -> None:
    """Resolve the test's incident (the notifier's replica may not hold it for a second)."""
    for _ in range(20):
        resolved = ops.context.request.post(url, headers=auth, data={"message": {"en": "Fixed."}})
        if resolved.status != 404:
            break
        time.sleep(0.5)
    assert resolved.status in (202, 409), resolved.text()
