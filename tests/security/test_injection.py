"""Stored script injection: what a customer writes, in any field of any channel, reaches
agents' pages only as text (header injection is tests/security/test_header_injection.py).

Markup from all three channels (a chat customer's name and text, an e-mail's subject,
From display name and HTML body, a WhatsApp profile name and body) is opened in the
agent console in a real Chromium: the payloads would set `window.__pwned` or raise an
alert; neither may happen, no Content-Security-Policy violation is reported (inline
code would be one), and the text shows literally. The survey and dashboard pages echo
nothing a customer controls; their headers are checked, and the markup an attacker can
put in their URLs.

Already covered elsewhere, and not repeated here: markup typed on the chat page shows as
text to the customer (tests/e2e/test_chat_page.py::test_markup_in_messages_is_shown_as_text_never_as_elements),
in the console through the chat page (tests/e2e/test_agent_console.py::
test_an_agent_answers_a_chat_customer_with_a_canned_answer_and_resolves_the_ticket), an
ops incident message's markup on the dashboard (tests/e2e/test_ops_dashboard.py::
test_queues_and_incidents_update_live_and_markup_stays_text), a comment's markup on the
survey page (tests/integration/test_surveys.py::test_an_e_mail_customer_answers_by_a_signed_link_once).
"""
from __future__ import annotations

import asyncio
import email
import email.headerregistry
import email.message
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email import policy
from urllib.parse import quote

import aiohttp
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from deskstream.topics import TICKETS_EVENTS
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.harness import wait_for_events
from tests.integration.chat_client import ChatCustomer
from tests.integration.test_agent_replies import ticket_and_agent
from tests.twilio_api import SUPPORT_NUMBER, inbound_sms, post_signed

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SUPPORT = "soporte@deskstream.test"
PROBE = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""
CHAT_NAME = "Eve <img src=x onerror=window.__pwned=1>"
CHAT_TEXT = ("My invoice was charged twice <script>window.__pwned=2</script> see javascript:window.__pwned=3 "
             "&lt;b&gt;not bold&lt;/b&gt; &amp; <a href=\"javascript:alert(1)\">refund</a>")
MAIL_NAME = "Mallory <svg onload=window.__pwned=4>"
MAIL_SUBJECT = "Invoice <script>window.__pwned=5</script> &amp; refund"
MAIL_HTML = ('<p>Please refund the double charge <a href="javascript:window.__pwned=6">here</a> '
             '&lt;img src=x onerror=window.__pwned=7&gt;</p><script>window.__pwned=8</script>')
MAIL_TEXT = "Please refund the double charge here <img src=x onerror=window.__pwned=7>"  # the HTML as text: entities decoded
WA_NAME = "<iframe src=javascript:window.__pwned=9>"
WA_TEXT = "My invoice is wrong <body onload=alert(10)> &#60;script&#62;window.__pwned=11&#60;/script&#62;"


def run_async(coroutine):
    """Run a coroutine to its end beside the browser (sync Playwright holds this thread's loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=180)


def hostile_mail(sender: str, message_id: str) -> bytes:
    message = email.message.EmailMessage()
    message["From"] = email.headerregistry.Address(MAIL_NAME, addr_spec=sender)
    message["To"] = SUPPORT
    message["Subject"] = MAIL_SUBJECT
    message["Message-ID"] = f"<{message_id}>"
    message.set_content(MAIL_HTML, subtype="html")
    return message.as_bytes(policy=policy.SMTP)


async def open_hostile_tickets(services, kafka, dovecot) -> dict[str, tuple[str, str]]:
    """One ticket per channel, opened with markup in every field: {channel: (ticket, agent)}."""
    tag = uuid.uuid4().hex[:8]
    async with aiohttp.ClientSession() as http:
        chat = ChatCustomer(http, services["intake"].url, name=CHAT_NAME, language="en")
        await chat.say(CHAT_TEXT)
    sender = f"mallory-{tag}@cliente.example"
    dovecot.append(hostile_mail(sender, f"hostile-{tag}@cliente.example"))
    number = "+3466" + str(time.time_ns())[-7:]
    form = inbound_sms(to=f"whatsapp:{SUPPORT_NUMBER}", sender=f"whatsapp:{number}", body=WA_TEXT, profile_name=WA_NAME)
    assert (await post_signed(f"{services['intake'].url}/webhooks/twilio/sms", form))[0] == 200
    return dict(zip(("chat", "email", "whatsapp"), await asyncio.gather(
        ticket_and_agent(kafka.bootstrap, lambda e: e.data["thread_key"] == f"chat:{chat.session_id}"),
        ticket_and_agent(kafka.bootstrap, lambda e: e.data["reply_to"]["address"] == sender),
        ticket_and_agent(kafka.bootstrap, lambda e: (e.data.get("sms") or {}).get("message_sid") == form["MessageSid"]),
    )))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def signed_in_console(browser: Browser, router_url: str, agent_id: str) -> tuple[Page, list[str]]:
    context = browser.new_context(locale="en-GB", viewport={"width": 1400, "height": 900})
    context.add_init_script(PROBE)
    page = context.new_page()
    page.set_default_timeout(30_000)
    trouble: list[str] = []
    page.on("pageerror", lambda error: trouble.append(str(error)))
    page.on("dialog", lambda dialog: (trouble.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    page.goto(router_url + "/console")
    page.get_by_label("Agent id").fill(agent_id)
    page.get_by_label("Password").fill(f"integration-password-{agent_id}")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#live")).to_have_text("live")
    return page, trouble


def check_inert(page: Page, trouble: list[str]) -> None:
    assert page.evaluate("window.__pwned") is None, "customer markup ran as code"
    assert page.evaluate("window.__csp") == [], "Content-Security-Policy violations"
    assert not trouble, f"page errors or dialogs: {trouble}"
    made = page.evaluate("Array.from(document.querySelectorAll('#workspace :is(img, script, svg, iframe, b, body, [onerror], [onload])'))"
                         ".map(n => n.outerHTML)")
    assert made == [], made
    links = page.evaluate("Array.from(document.querySelectorAll('#workspace a[href]')).map(a => a.getAttribute('href'))")
    assert not [href for href in links if not href.startswith("https://")], links  # the console links https media only


def test_markup_from_every_channel_reaches_the_agent_console_only_as_text(browser, pipeline_services, kafka, dovecot):
    tickets = run_async(open_hostile_tickets(pipeline_services, kafka, dovecot))
    shown = {
        "chat": (CHAT_TEXT, CHAT_NAME, None),
        "email": (MAIL_TEXT, MAIL_NAME, MAIL_SUBJECT),
        "whatsapp": (WA_TEXT, WA_NAME, None),
    }
    by_agent: dict[str, list[str]] = {}
    for channel, (_, agent_id) in tickets.items():
        by_agent.setdefault(agent_id, []).append(channel)
    for agent_id, channels in by_agent.items():
        page, trouble = signed_in_console(browser, pipeline_services["router"].url, agent_id)
        try:
            for channel in channels:
                ticket_id = tickets[channel][0]
                row = page.locator(f"#assigned button[data-ticket='{ticket_id}']")
                expect(row).to_have_count(1, timeout=60_000)
                text, name, subject = shown[channel]
                if subject:
                    expect(row).to_contain_text(subject)
                row.click()
                expect(page.locator("#timeline .entry.customer .text").first).to_have_text(text)
                expect(page.locator("#ticket-customer")).to_contain_text(name)
                if subject:
                    expect(page.locator("#ticket-subject")).to_have_text(subject)
                check_inert(page, trouble)
        finally:
            page.context.close()


def test_the_pages_forbid_inline_script_and_framing(pipeline_services):
    """Every page an agent, an ops person or a customer opens says, in its
    Content-Security-Policy, that only its own files may run (no inline script, no
    eval) and that no other site may frame it; and sends nosniff."""
    async def headers() -> dict[str, dict[str, str]]:
        pages = {
            "chat page": pipeline_services["intake"].url + "/",
            "agent console": pipeline_services["router"].url + "/console",
            "ops dashboard": pipeline_services["feedback"].url + "/dashboard",
            "survey page (refused link)": pipeline_services["feedback"].url + "/survey/a.b.c",
        }
        found = {}
        async with aiohttp.ClientSession() as http:
            for name, url in pages.items():
                async with http.get(url) as response:
                    found[name] = {key.lower(): value for key, value in response.headers.items()}
        return found

    for name, found in run_async(headers()).items():
        policy_ = found.get("content-security-policy", "")
        directives = {part.split()[0]: part.split()[1:] for part in policy_.split(";") if part.strip()}
        scripts = directives.get("script-src", directives.get("default-src"))
        assert scripts is not None and set(scripts) <= {"'self'", "'none'"}, (name, policy_)
        assert "'unsafe-inline'" not in policy_ and "'unsafe-eval'" not in policy_, (name, policy_)
        assert directives.get("frame-ancestors") == ["'none'"], (name, policy_)
        assert directives.get("object-src", directives.get("default-src")) in (["'none'"], ["'self'"]), (name, policy_)
        assert found.get("x-content-type-options") == "nosniff", name


def test_markup_in_survey_and_dashboard_urls_is_never_echoed_as_code(browser, pipeline_services):
    feedback = pipeline_services["feedback"].url
    context = browser.new_context()
    context.add_init_script(PROBE)
    page = context.new_page()
    trouble: list[str] = []
    page.on("dialog", lambda dialog: (trouble.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    page.on("pageerror", lambda error: trouble.append(str(error)))
    try:
        for url in (f"{feedback}/survey/{quote('<img src=x onerror=window.__pwned=1>')}",
                    f"{feedback}/survey/{quote('x.y.z<script>alert(2)</script>', safe='')}",
                    f"{feedback}/dashboard?lang={quote('en><script>window.__pwned=3</script>')}",
                    f"{feedback}/dashboard/static/{quote('<svg onload=alert(4)>')}"):
            page.goto(url)
            page.wait_for_load_state("load")
            assert page.evaluate("window.__pwned") is None, url
            assert page.evaluate("document.querySelectorAll('img, svg script, script:not([src])').length") == 0, url
            assert "<script>" not in page.content().replace("&lt;script&gt;", ""), url
        assert not trouble, trouble
    finally:
        context.close()


def test_invisible_characters_that_would_make_text_show_otherwise_never_reach_agents(pipeline_services, kafka, dovecot):
    """Bidirectional overrides and control characters in what a customer writes (a name
    ending in U+202E shows the channel and time beside it in the console backwards; NUL
    and ESC are not text), on every channel: the ticket carries what they visibly wrote."""
    tag = uuid.uuid4().hex[:8]
    sender = f"bidi-{tag}@cliente.example"
    number = "+3467" + str(time.time_ns())[-7:]

    async def write() -> dict[str, dict]:
        async with aiohttp.ClientSession() as http:
            customer = ChatCustomer(http, pipeline_services["intake"].url, name="Ana García\u202e (supervisor)\x00", language="en")
            await customer.say("Please refund \u202egnp.exe\x1b[2J now\r\nthanks")
        message = email.message.EmailMessage()
        message["From"] = email.headerregistry.Address("Ana García\u202e (supervisor)", addr_spec=sender)
        message["To"], message["Subject"], message["Message-ID"] = SUPPORT, "Refund \u202e(urgent)", f"<bidi-{tag}@cliente.example>"
        message.set_content("Please refund \u202egnp.exe\x1b[2J now\nthanks")
        dovecot.append(message.as_bytes(policy=policy.SMTP))
        form = inbound_sms(to=f"whatsapp:{SUPPORT_NUMBER}", sender=f"whatsapp:{number}",
                           body="Please refund \u202egnp.exe\x1b[2J now\nthanks", profile_name="Ana García\u202e (supervisor)")
        assert (await post_signed(f"{pipeline_services['intake'].url}/webhooks/twilio/sms", form))[0] == 200
        found = {}
        for channel, matches in (
            ("chat", lambda e: e.data["thread_key"] == f"chat:{customer.session_id}"),
            ("email", lambda e: e.data["reply_to"]["address"] == sender),
            ("whatsapp", lambda e: (e.data.get("sms") or {}).get("message_sid") == form["MessageSid"]),
        ):
            [created] = await wait_for_events(kafka.bootstrap, TICKETS_EVENTS, lambda e: e.type == "ticket.created" and matches(e), 1, 60)
            found[channel] = created.data
        return found

    for channel, created in run_async(write()).items():
        assert created["customer"]["name"] == "Ana García (supervisor)", channel
        assert created["body_text"] == "Please refund gnp.exe[2J now\nthanks", channel
        if channel == "email":
            assert created["subject"] == "Refund (urgent)"
