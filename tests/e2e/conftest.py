"""What every browser test needs: Debian's Chromium driven by Playwright, and a
customer's tab on the chat page (tests/e2e/test_chat_page.py, test_agent_console.py)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Request, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]

# Watches the page from inside: when Enter is pressed in the message box and when the
# acknowledgement appears in the list (performance.now(), so the page's own clock),
# plus any Content-Security-Policy violation (inline code or style would be one).
PAGE_PROBE = """
window.__probe = {sent: null, ack: null, csp: []};
document.addEventListener('securitypolicyviolation', (e) => window.__probe.csp.push(e.violatedDirective + ' ' + e.blockedURI));
document.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && e.target && e.target.id === 'text' && window.__probe.sent === null) {
    window.__probe.sent = performance.now();
  }
}, true);
document.addEventListener('DOMContentLoaded', () => {
  const list = document.getElementById('messages');
  const seen = () => list.querySelector(".message.support[data-kind='acknowledgement']");
  new MutationObserver(() => {
    if (window.__probe.ack === null && seen()) window.__probe.ack = performance.now();
  }).observe(list, {childList: true, subtree: true});
});
"""


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def intake_url(pipeline_services) -> str:
    return pipeline_services["intake"].url


class Customer:
    """One browser context (one customer's tab), with the page's errors collected."""

    def __init__(self, browser: Browser, base_url: str, locale: str) -> None:
        self.context: BrowserContext = browser.new_context(locale=locale, viewport={"width": 900, "height": 720})
        self.context.add_init_script(PAGE_PROBE)
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(20_000)
        self.base_url = base_url
        self.errors: list[str] = []
        self.posts: list[Request] = []
        self.sockets: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("dialog", lambda dialog: (self.errors.append(f"dialog: {dialog.message}"), dialog.dismiss()))
        self.page.on("request", self._request)
        self.page.on("websocket", lambda socket: self.sockets.append(socket.url))

    def _request(self, request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/api/chat/messages"):
            self.posts.append(request)

    def open(self) -> Page:
        self.page.goto(self.base_url + "/")
        expect(self.page.locator("#text")).to_be_editable()
        return self.page

    def say(self, text: str) -> None:
        self.page.locator("#text").fill(text)
        self.page.locator("#text").press("Enter")

    def check_clean(self) -> None:
        csp = self.page.evaluate("window.__probe ? window.__probe.csp : []")
        assert not csp, f"Content-Security-Policy violations: {csp}"
        assert not self.errors, f"page errors: {self.errors}"

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def customer_factory(browser: Browser, intake_url: str):
    made: list[Customer] = []

    def make(locale: str = "es-ES") -> Customer:
        customer = Customer(browser, intake_url, locale)
        made.append(customer)
        return customer

    yield make
    for customer in made:
        customer.close()


@pytest.fixture
def intake_service(pipeline_services):
    return pipeline_services["intake"]
