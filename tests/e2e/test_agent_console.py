"""The agent console in a real (headless Debian) Chromium, against all four services on
the local Kafka: an agent signs in, a customer's chat message appears in the queue
without a reload, the agent answers with a canned answer, the customer reads it on the
chat page, and the agent resolves the ticket. Customer markup stays text throughout."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

pytestmark = pytest.mark.e2e

SCREENSHOT = "/tmp/console-e2e.png"
PASSWORD = "integration-password-ana"

# Records what the page itself saw: any Content-Security-Policy violation, and whether
# injected code ran (the customer's markup would set window.__pwned).
PROBE = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""
HOSTILE = "<img src=x onerror=window.__pwned=1><script>window.__pwned=2</script>"


class Agent:
    """One agent's browser context on the console."""

    def __init__(self, browser: Browser, router_url: str) -> None:
        self.context: BrowserContext = browser.new_context(locale="en-GB", viewport={"width": 1400, "height": 900})
        self.context.add_init_script(PROBE)
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.url = router_url
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("dialog", lambda dialog: (self.errors.append(f"dialog: {dialog.message}"), dialog.dismiss()))

    def sign_in(self, agent_id: str, password: str) -> None:
        self.page.get_by_label("Agent id").fill(agent_id)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()

    def check_clean(self) -> None:
        assert self.page.evaluate("window.__pwned") is None, "customer markup ran as code"
        assert self.page.evaluate("window.__csp") == [], "Content-Security-Policy violations"
        assert not self.errors, f"page errors: {self.errors}"


@pytest.fixture
def agent(browser: Browser, pipeline_services) -> Iterator[Agent]:
    agent = Agent(browser, pipeline_services["router"].url)
    yield agent
    agent.context.close()


def test_wrong_passwords_and_requests_without_the_csrf_token_are_refused(agent: Agent):
    response = agent.page.goto(agent.url + "/console")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    agent.sign_in("ana", "not-her-password")
    expect(agent.page.locator("#signin-error")).to_have_text("wrong agent id or password")
    agent.sign_in("nobody", PASSWORD)
    expect(agent.page.locator("#signin-error")).to_have_text("wrong agent id or password")
    expect(agent.page.locator("#workspace")).to_be_hidden()

    forged = agent.context.request.post(agent.url + "/console/sign-in", data={"agent_id": "ana", "password": PASSWORD})
    assert forged.status == 403  # the right password, but no CSRF token: not even checked
    agent.sign_in("ana", PASSWORD)
    expect(agent.page.locator("#me-name")).to_have_text("Ana García")
    without = agent.context.request.post(agent.url + "/api/agents/me/presence", data={"presence": "away"})
    assert without.status == 403 and "X-CSRF-Token" in without.json()["error"]
    wrong = agent.context.request.post(agent.url + "/api/agents/me/presence", data={"presence": "away"},
                                       headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status == 403
    assert agent.context.request.get(agent.url + "/api/queue").status == 200  # the session cookie reads
    cookie = next(c for c in agent.context.cookies() if c["name"] == "deskstream_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    agent.check_clean()


def test_an_agent_answers_a_chat_customer_with_a_canned_answer_and_resolves_the_ticket(agent: Agent, customer_factory):
    agent.page.goto(agent.url + "/console")
    agent.sign_in("ana", PASSWORD)
    expect(agent.page.locator("#live")).to_have_text("live")

    eve = customer_factory("en-GB")
    chat = eve.open()
    chat.get_by_label("Name").fill(f"Eve {HOSTILE}")
    said = f"I was charged twice for my subscription this month, please refund one of the payments {HOSTILE}"
    eve.say(said)

    # The ticket reaches Ana's queue (English billing is hers) while the page stays as it is.
    row = agent.page.locator("#assigned button", has_text="I was charged twice")
    expect(row).to_have_count(1, timeout=60_000)
    ticket_id = row.get_attribute("data-ticket")
    expect(row).to_contain_text("P")
    expect(row.locator(".due")).to_contain_text("answer in")
    row.click()

    page = agent.page
    expect(page.locator("#timeline .entry.customer .text").first).to_have_text(said)
    expect(page.locator("#ticket-customer")).to_contain_text(f"Eve {HOSTILE}")
    assert page.evaluate("document.querySelectorAll('#workspace img, #workspace script').length") == 0
    expect(page.locator("#articles li").first).to_contain_text("Double charges, refunds and invoices")
    page.get_by_placeholder("Search canned answers").fill("refund double")
    macro = page.locator("#macros button[data-macro='refund-double-charge-en']")
    expect(macro).to_have_count(1)
    macro.click()
    reply = page.locator("#reply")
    text = reply.input_value()
    assert text.startswith("Hi Eve,") and f"(ticket {ticket_id})" in text and "{" not in text
    page.get_by_role("button", name="Send reply", exact=True).click()
    expect(page.locator("#action-status")).to_have_text("reply sent")
    expect(page.locator("#timeline .entry.reply .text")).to_have_text(text)  # the live feed refreshed the timeline
    page.screenshot(path=SCREENSHOT, full_page=True)

    answered = chat.locator("#messages .message.support[data-kind='reply'] .body")
    expect(answered).to_contain_text("you were charged twice", timeout=60_000)

    page.get_by_role("button", name="Resolve", exact=True).click()
    expect(page.locator("#assigned button", has_text="I was charged twice")).to_have_count(0, timeout=30_000)
    expect(page.locator("#timeline .entry.event").last).to_contain_text("Resolved by ana")
    agent.check_clean()
    assert chat.evaluate("window.__pwned") is None
