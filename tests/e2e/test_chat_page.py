"""The customer chat page in a real (headless Debian) Chromium, against all four
services on the local Kafka: what a customer sees, not what the API returns."""
from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

TICKET = re.compile(r"T-[A-Z2-7]{8}")
ACK = "#messages .message.support[data-kind='acknowledgement']"
MAX_TEXT_BYTES = 16 * 1024
SCREENSHOT = "/tmp/chat-e2e.png"


def expect_ack(page: Page, intake, timeout: float = 30_000) -> None:
    """Wait for exactly one acknowledgement on the page; if none comes, say what intake logged."""
    try:
        expect(page.locator(ACK)).to_have_count(1, timeout=timeout)
    except AssertionError as error:
        lines = intake.log_path.read_text(errors="replace").splitlines() if intake.log_path.exists() else []
        trouble = [line[:600] for line in lines if any(word in line for word in ("dead-letter", "Mismatch", '"level":"error"'))]
        raise AssertionError("no acknowledgement on the page; intake logged:\n" + "\n".join(trouble[-10:])) from error


def ack_delay_ms(page: Page) -> float:
    probe = page.evaluate("window.__probe")
    assert probe["sent"] is not None and probe["ack"] is not None, probe
    return probe["ack"] - probe["sent"]


def test_a_customer_sees_the_acknowledgement_with_ticket_and_wait_in_spanish(customer_factory, intake_service):
    marta = customer_factory("es-ES")
    page = marta.open()
    # The language follows the browser's (es-ES), and so does the page's own text.
    expect(page.locator("#language")).to_have_value("es")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.locator("#send")).to_have_text("Enviar")
    expect(page.get_by_label("Nombre")).to_be_visible()
    page.get_by_label("Nombre").fill("Marta")
    page.get_by_label("Correo electrónico (opcional)").fill("marta@example.com")

    marta.say("Hola, mi internet no funciona desde ayer y necesito ayuda")

    mine = page.locator("#messages .message.mine")
    expect(mine).to_have_count(1)
    expect(mine.locator(".body")).to_have_text("Hola, mi internet no funciona desde ayer y necesito ayuda")
    ack = page.locator(ACK)
    expect_ack(page, intake_service)
    text = ack.locator(".body").text_content() or ""
    assert TICKET.search(text), text
    assert "Hola Marta" in text and "número de ticket" in text, text
    assert re.search(r"Un agente te responderá en aproximadamente \d+ minutos?\.", text), f"no estimated wait in {text!r}"
    ticket_id = TICKET.search(text).group(0)
    expect(ack.locator(".ticket")).to_have_text(f"Ticket {ticket_id}")
    expect(ack.locator(".author")).to_have_text("Soporte")
    expect(mine.locator(".meta")).to_contain_text("Enviado")
    expect(page.locator("#connection")).to_have_text("Conectado")

    delay = ack_delay_ms(page)
    print(f"\nacknowledgement shown {delay:.0f} ms after Enter (measured in the page)")
    assert delay < 10_000, f"acknowledgement took {delay:.0f} ms to appear after Enter (target 2000 ms)"

    page.screenshot(path=SCREENSHOT, full_page=True)
    marta.check_clean()


def test_markup_in_messages_is_shown_as_text_never_as_elements(customer_factory, intake_service):
    eve = customer_factory("en-GB")
    page = eve.open()
    expect(page.locator("#send")).to_have_text("Send")
    hostile = "<img src=x onerror=alert(1)><b>bold</b>"
    # The name comes back inside support's acknowledgement: server-sent text is checked too.
    page.get_by_label("Name").fill("<b>Eve</b>")

    eve.say(f"My invoice is wrong {hostile}")

    mine = page.locator("#messages .message.mine .body")
    expect(mine).to_have_text(f"My invoice is wrong {hostile}")
    ack = page.locator(ACK)
    expect_ack(page, intake_service)
    expect(ack.locator(".body")).to_contain_text("Hi <b>Eve</b>, we have your message.")
    assert page.locator("#messages img").count() == 0
    assert page.locator("#messages b").count() == 0
    assert page.evaluate("document.querySelectorAll('img, b').length") == 0
    eve.check_clean()  # also: no alert() dialog


def test_a_reload_continues_the_conversation(customer_factory, intake_service):
    sam = customer_factory("en-US")
    page = sam.open()
    page.get_by_label("Name").fill("Sam")
    sam.say("The router keeps dropping the connection every few minutes")
    expect_ack(page, intake_service)
    ticket_id = TICKET.search(page.locator(ACK).text_content() or "").group(0)
    seq = int(page.locator(ACK).get_attribute("data-seq") or 0)
    stored = json.loads(page.evaluate("sessionStorage.getItem('deskstream.chat.v1')"))
    assert stored["sessionId"] and stored["sessionToken"] and stored["lastSeq"] == seq >= 1, stored
    assert parse_qs(urlparse(sam.sockets[-1]).query)["after"] == ["0"]

    sam.sockets.clear()
    page.reload()

    # The conversation is back, once: own message and the acknowledgement with its ticket.
    expect(page.locator("#messages .message.mine .body")).to_have_text("The router keeps dropping the connection every few minutes")
    expect(page.locator(ACK)).to_have_count(1)
    expect(page.locator(ACK).locator(".body")).to_contain_text(ticket_id)
    expect(page.locator("#connection")).to_have_text("Connected")
    # ...and the socket resumed after the last message seen, not from the start.
    assert [parse_qs(urlparse(url).query)["after"] for url in sam.sockets] == [[str(seq)]]
    page.wait_for_timeout(1000)
    expect(page.locator("#messages .message.support")).to_have_count(1)

    # A message after the reload goes to the same session, with its token.
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/api/chat/messages")) as sent:
        sam.say("It happened again just now")
    body = json.loads(sent.value.post_data or "{}")
    assert body["session_id"] == stored["sessionId"]
    assert sent.value.headers.get("authorization") == f"Bearer {stored['sessionToken']}"
    expect(page.locator("#messages .message.mine").nth(1).locator(".meta")).to_contain_text("Sent")
    sam.check_clean()


def test_a_dropped_socket_reconnects_after_the_last_message_seen(customer_factory, intake_service):
    ida = customer_factory("es-ES")
    page = ida.open()
    sockets = []

    def through(route):
        sockets.append(route)
        route.connect_to_server()

    page.route_web_socket(re.compile(r"/api/chat/sessions/[^/]+/ws"), through)
    page.get_by_label("Nombre").fill("Ida")
    ida.say("No puedo entrar en mi cuenta")
    expect_ack(page, intake_service)
    seq = int(page.locator(ACK).get_attribute("data-seq") or 0)
    assert len(sockets) == 1 and parse_qs(urlparse(sockets[0].url).query)["after"] == ["0"]

    sockets[0].close(code=1012, reason="service restart")  # as if intake went away
    expect(page.locator("#connection")).to_have_text("Reconectando…")
    expect(page.locator("#connection")).to_have_text("Conectado", timeout=15_000)
    assert [parse_qs(urlparse(route.url).query)["after"] for route in sockets[1:]] == [[str(seq)]]
    page.wait_for_timeout(500)
    expect(page.locator("#messages .message.support")).to_have_count(1)
    ida.check_clean()


def test_an_over_long_message_is_refused_with_a_clear_message(customer_factory):
    ana = customer_factory("es-MX")
    page = ana.open()
    page.get_by_label("Nombre").fill("Ana")
    text = "ñ" * (MAX_TEXT_BYTES // 2 + 1)  # 8193 characters, 16386 bytes in UTF-8: over the limit

    page.locator("#text").fill(text)
    expect(page.locator("#counter")).to_have_class(re.compile(r"\bover\b"))
    expect(page.locator("#text")).to_have_attribute("aria-invalid", "true")
    page.locator("#text").press("Enter")

    notice = page.locator("#notice")
    expect(notice).to_be_visible()
    expect(notice).to_have_attribute("role", "alert")
    expect(notice).to_contain_text("demasiado largo")
    expect(notice).to_contain_text(re.compile(r"16.?386 bytes"))
    assert page.locator("#messages .message").count() == 0
    assert ana.posts == [], "the page must not send a message over the limit"
    assert page.locator("#text").input_value() == text, "the customer's text is kept so they can shorten it"

    # Shortened to the limit exactly, it goes through.
    page.locator("#text").fill("ñ" * (MAX_TEXT_BYTES // 2))
    expect(page.locator("#counter")).not_to_have_class(re.compile(r"\bover\b"))
    page.locator("#text").press("Enter")
    expect(notice).to_be_hidden()
    expect(page.locator("#messages .message.mine .meta")).to_contain_text("Enviado")
    ana.check_clean()


def test_a_503_is_retried_with_the_same_client_message_id_in_the_same_session(customer_factory, intake_service):
    leo = customer_factory("en-US")
    page = leo.open()
    page.get_by_label("Name").fill("Leo")
    refused = []

    def flaky(route):
        if len(refused) < 2:
            refused.append(route.request.post_data)
            route.fulfill(status=503, content_type="application/json",
                          body=json.dumps({"error": "the message could not be stored; retry with the same client_message_id"}))
        else:
            route.continue_()

    page.route("**/api/chat/messages", flaky)
    leo.say("Password reset mail never arrives")
    expect_ack(page, intake_service)
    # The same message in the same session each time: even a first message whose answer
    # was lost is repeated, never a second conversation (the page opened the session first).
    sent = {(body["client_message_id"], body.get("session_id")) for body in (json.loads(post.post_data or "{}") for post in leo.posts)}
    assert len(leo.posts) == 3 and len(sent) == 1 and None not in next(iter(sent)), [post.post_data for post in leo.posts]
    expect(page.locator("#messages .message.mine")).to_have_count(1)
    leo.check_clean()


def test_a_rejection_reason_is_shown_plainly(customer_factory):
    kim = customer_factory("en-US")
    page = kim.open()
    page.get_by_label("Name").fill("Kim")
    page.route("**/api/chat/messages", lambda route: route.fulfill(
        status=400, content_type="application/json", body=json.dumps({"error": "customer.phone is not a phone number"})))
    kim.say("Hello")
    expect(page.locator("#notice")).to_have_text("Not sent: the server did not accept it (customer.phone is not a phone number)")
    expect(page.locator("#messages .message.mine.failed .meta")).to_contain_text("customer.phone is not a phone number")
    assert len(kim.posts) == 1, "a 4xx is not retried"
    kim.check_clean()


def in_a_thread(coroutine):
    """Run an async helper beside Playwright's sync API (which owns this thread's loop)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_a_survey_on_the_chat_page_is_answered_with_a_button(customer_factory, intake_service, pipeline_services, kafka):
    from deskstream.topics import TICKETS_EVENTS
    from tests.harness import wait_for_events
    from tests.integration.test_surveys import answers_of, resolve

    rosa = customer_factory("es-ES")
    page = rosa.open()
    page.get_by_label("Nombre").fill("Rosa")
    rosa.say("No me llega la factura de este mes")
    expect_ack(page, intake_service)
    ticket_id = TICKET.search(page.locator(ACK).locator(".body").text_content() or "").group(0)
    [assigned] = in_a_thread(wait_for_events(kafka.bootstrap, TICKETS_EVENTS, lambda e: e.type == "ticket.assigned"
                                             and e.data["ticket_id"] == ticket_id, 1, 60))
    in_a_thread(resolve(pipeline_services["router"].url, ticket_id, assigned.data["agent_id"]))

    survey = page.locator("#messages .message.support[data-kind='survey']")
    expect(survey).to_have_count(1, timeout=60_000)
    expect(survey.locator(".body")).to_contain_text("del 1 (muy mal) al 5 (muy bien)")
    expect(survey.locator("button.choice")).to_have_count(5)
    survey.get_by_role("button", name="4 · Bien").click()
    expect(survey.get_by_role("button", name="4 · Bien")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#messages .message.mine .body").last).to_have_text("4")
    [answer] = in_a_thread(answers_of(kafka.bootstrap, ticket_id, 1))
    assert (answer.data["score"], answer.data["via"]) == (4, "chat")
    rosa.check_clean()
