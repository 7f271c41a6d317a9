"""Oversized and malformed input at every entry point: 10 MB bodies and bytes that are
not UTF-8, through the chat API, the chat WebSocket, Twilio's webhook and the mailbox.
Each ends in a precise refusal (status and reason), a dead letter, or a contact whose
text is bounded and decoded; never a 500 or a worker that stops; and a normal contact
afterwards still becomes a ticket.

Already covered elsewhere, and not repeated here: small malformed chat bodies and the
64 KiB limit (tests/integration/test_chat_pipeline.py::test_bad_chat_requests_get_a_reason_and_store_nothing),
any bytes with a valid Twilio signature never get a 5xx and any bytes in a mail end in
a contact, noise or a refusal (tests/fuzz/test_twilio_fuzz.py, tests/fuzz/test_mail_fuzz.py,
in-process), an unparseable mail is quarantined with its reason
(tests/integration/test_email_channel.py::test_an_unparseable_mail_is_quarantined_with_its_reason).
"""
from __future__ import annotations

import asyncio
import base64
import random
import time
import uuid
from email import policy
from email.message import EmailMessage
from urllib.parse import quote

import aiohttp
import pytest

from deskstream.topics import DEADLETTER, INTAKE_RAW, TICKETS_EVENTS
from services.feedback.links import SurveyLinks
from tests.conftest import OPS_TOKEN
from tests.harness import read_topic, wait_for_events
from tests.integration.chat_client import ChatCustomer
from tests.twilio_api import inbound_sms, sign

pytestmark = pytest.mark.integration

TEN_MB = 10 * 1024 * 1024
SURVEY_SECRET = "integration-survey-secret-0123456789abcdef"  # FEEDBACK_SURVEY_SECRET in tests/conftest.py
SUPPORT = "soporte@deskstream.test"


async def still_serves(service, kafka) -> None:
    """The service answers its health check, and a normal chat contact becomes a ticket."""
    async with aiohttp.ClientSession() as http:
        async with http.get(service.url + "/healthz") as health:
            assert health.status == 200
        customer = ChatCustomer(http, service.url, name="Normal")
        await customer.say("Después del ataque: mi router no enciende")
        [ack] = await customer.messages(1)
    assert ack["kind"] == "acknowledgement" and ack["ticket_id"].startswith("T-")
    assert service.process.poll() is None


async def test_a_10_mb_chat_post_is_refused_with_413_at_once(pipeline_services, kafka):
    intake = pipeline_services["intake"]
    url = f"{intake.url}/api/chat/messages"
    body = b'{"client_message_id":"big","text":"' + b"a" * TEN_MB + b'"}'

    async def chunks():
        for start in range(0, len(body), 256 * 1024):
            yield body[start:start + 256 * 1024]

    async with aiohttp.ClientSession() as http:
        for what, data in (("with Content-Length", body), ("chunked, no Content-Length", chunks())):
            started = time.monotonic()
            try:
                async with http.post(url, data=data, headers={"Content-Type": "application/json"}) as answer:
                    status, reason = answer.status, (await answer.json())["error"]
            except aiohttp.ClientError as error:  # the server may close before the client has sent it all
                raise AssertionError(f"{what}: no answer, {error!r}") from error
            assert (status, reason) == (413, "the body is larger than 65536 bytes"), what
            assert time.monotonic() - started < 5, f"{what}: {time.monotonic() - started:.1f} s"
        # The WebSocket takes frames of at most 4 KiB (the page sends none): a bigger one
        # closes that socket with 1009 "message too big"; a 10 MB one is cut off mid-send.
        customer = ChatCustomer(http, intake.url)
        await customer.open()
        socket_url = f"{intake.url}/api/chat/sessions/{customer.session_id}/ws?token={customer.token}"
        async with http.ws_connect(socket_url) as socket:
            await socket.send_str("x" * 256 * 1024)
            frame = await asyncio.wait_for(socket.receive(), 10)
            assert frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING), frame
            assert socket.close_code == 1009, socket.close_code
        async with http.ws_connect(socket_url) as socket:
            with pytest.raises((ConnectionError, asyncio.TimeoutError)):
                await asyncio.wait_for(socket.send_str("x" * TEN_MB), 10)
    await still_serves(intake, kafka)


async def test_invalid_utf8_in_a_chat_body_is_a_400_with_its_reason(pipeline_services, kafka):
    intake = pipeline_services["intake"]
    url = f"{intake.url}/api/chat/messages"
    bodies = {
        "Latin-1 bytes": b'{"client_message_id":"u1","text":"ma\xf1ana no funciona"}',
        "a lone surrogate escaped": b'{"client_message_id":"u2","text":"hola \\ud800"}',
        "an overlong encoding of /": b'{"client_message_id":"u3","text":"\xc0\xaf"}',
        "a byte order mark": b'\xef\xbb\xbf{"client_message_id":"u4","text":"hola"}',
        "a NUL in the name": b'{"client_message_id":"u5","text":"hola","customer":{"name":"\xff\x00"}}',
    }
    async with aiohttp.ClientSession() as http:
        for what, body in bodies.items():
            async with http.post(url, data=body, headers={"Content-Type": "application/json"}) as answer:
                reason = (await answer.json())["error"]
                assert (answer.status, reason.startswith("malformed JSON: ")) == (400, True), (what, answer.status, reason)
    await still_serves(intake, kafka)


def new_number() -> str:
    return "+346" + "".join(random.choice("0123456789") for _ in range(8))


async def test_a_10_mb_and_a_non_utf8_twilio_form_are_refused_or_decoded(pipeline_services, kafka):
    intake = pipeline_services["intake"]
    url = f"{intake.url}/webhooks/twilio/sms"
    number = new_number()
    async with aiohttp.ClientSession() as http:
        # 10 MB, signed as Twilio would (it never sends more than 1,600 characters): 413.
        huge = inbound_sms(sender=number, body="a" * TEN_MB)
        started = time.monotonic()
        async with http.post(url, data=huge, headers={"X-Twilio-Signature": sign(url, huge)}) as answer:
            assert answer.status == 413 and "exceeded" in await answer.text()
        assert time.monotonic() - started < 10
        # 10 MB unsigned: refused before the body is read.
        async with http.post(url, data=huge) as answer:
            assert (answer.status, await answer.text()) == (403, "invalid Twilio signature")
        # Raw bytes that are not UTF-8: not a form Twilio sent, refused like a forgery (no 500).
        raw = f"MessageSid={huge['MessageSid'][:-1]}1&From={quote(number)}&Body=ma%F1ana&To=%2B34910000000".encode() + b"&X=\xff\xfe"
        async with http.post(url, data=raw, headers={"Content-Type": "application/x-www-form-urlencoded",
                                                      "X-Twilio-Signature": "c2lnbmVk"}) as answer:
            assert (answer.status, await answer.text()) == (403, "invalid Twilio signature")
    # Percent-encoded bytes that are not UTF-8 (%F1 is Latin-1's ñ), signed over what they
    # decode to: taken, with the replacement character where the byte was.
    form = inbound_sms(sender=number, body="ma\ufffdana no tengo l\ufffdnea")
    encoded = "&".join(f"{quote(k)}={quote(v)}" for k, v in form.items()).replace("%EF%BF%BD", "%F1", 1).replace("%EF%BF%BD", "%ED", 1)
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=encoded.encode(), headers={"Content-Type": "application/x-www-form-urlencoded",
                                                                   "X-Twilio-Signature": sign(url, form)}) as answer:
            assert answer.status == 200, await answer.text()
    [contact] = await wait_for_events(kafka.bootstrap, INTAKE_RAW, lambda e: e.data.get("contact_id") == f"twilio-{form['MessageSid']}", 1, 30)
    assert contact.data["body_text"] == "ma\ufffdana no tengo l\ufffdnea"
    assert not [e for e in await read_topic(kafka.bootstrap, INTAKE_RAW) if e.data.get("contact_id") == f"twilio-{huge['MessageSid']}"]
    await still_serves(intake, kafka)


def mail(sender: str, subject: str, message_id: str, body: str, attachment: bytes | None = None) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"], message["Message-ID"] = sender, SUPPORT, subject, f"<{message_id}>"
    message.set_content(body)
    if attachment is not None:
        message.add_attachment(attachment, maintype="application", subtype="octet-stream", filename="volcado.bin")
    return message.as_bytes(policy=policy.SMTP)


def of_message(message_id: str):
    return lambda e: e.type == "contact.received" and (e.data.get("email") or {}).get("message_id") == message_id


async def test_10_mb_mails_and_mails_in_a_wrong_charset_become_bounded_decoded_contacts(pipeline_services, kafka, dovecot):
    """A 10 MB text and a 10 MB attachment are taken: the text clipped to the contract's
    16,000 characters (the whole message stays in the mailbox), the attachment kept aside
    and named in the event by size and hash; a 10 MB mail with no sender is quarantined
    and dead-lettered with its start and a reason that says so. 8-bit headers and a body whose bytes are not
    its declared charset are decoded (UTF-8, else cp1252), never refused."""
    tag = uuid.uuid4().hex[:8]
    line = "Os copio el registro completo del router para que lo veáis.\n"
    big_text = f"big-text-{tag}@cliente.example"
    big_file = f"big-file-{tag}@cliente.example"
    dovecot.append(mail(f"Registro <log-{tag}@cliente.example>", "Registro enorme", big_text, line * (TEN_MB // len(line))))
    dovecot.append(mail(f"Volcado <dump-{tag}@cliente.example>", "Adjunto enorme", big_file, "Os mando el volcado.",
                        attachment=random.randbytes(TEN_MB)))
    latin1 = f"latin1-{tag}@cliente.example"
    dovecot.append(
        f"From: Mar\xeda L\xf3pez <maria-{tag}@cliente.example>\r\nTo: {SUPPORT}\r\nSubject: Factura peque\xf1a\r\n"
        f"Message-ID: <{latin1}>\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "No funciona desde ma\xf1ana, \xbfpod\xe9is ayudar?\r\n".encode("latin-1"))
    broken = f"broken-{tag}@cliente.example"
    dovecot.append(
        f"From: Jos\xe9 <jose-{tag}@cliente.example>\r\nTo: {SUPPORT}\r\nSubject: Peque\xf1a aver\xeda\r\nMessage-ID: <{broken}>\r\n".encode()
        + b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nHola \xc3\x28 fin\r\n")

    # 10 MB with no sender to answer: quarantined, its dead letter holding the first
    # 256 KiB (a Kafka record is no place for 10 MB) and saying so.
    headless = b"X-Tag: " + tag.encode() + b"\r\nSubject: sin remitente\r\n\r\n" + b"relleno " * (TEN_MB // 8)
    dovecot.append(headless)

    contacts = {}
    for message_id in (big_text, big_file, latin1, broken):
        [contacts[message_id]] = await wait_for_events(kafka.bootstrap, INTAKE_RAW, of_message(message_id), 1, 90)
    text = contacts[big_text].data
    assert len(text["body_text"]) == 16_000 and text["body_text"].endswith("…") and text["body_text"].startswith(line.strip())
    assert len(text["email"]["full_text"]) <= 65_000
    [attached] = contacts[big_file].data["email"]["attachments"]
    assert (attached["filename"], attached["size"]) == ("volcado.bin", TEN_MB)
    assert contacts[big_file].data["body_text"] == "Os mando el volcado."
    latin = contacts[latin1].data
    assert (latin["customer"]["name"], latin["subject"], latin["body_text"]) == (
        "María López", "Factura pequeña", "No funciona desde mañana, ¿podéis ayudar?")
    bad = contacts[broken].data
    assert (bad["customer"]["name"], bad["subject"], bad["body_text"]) == ("José", "Pequeña avería", "Hola Ã( fin")  # not UTF-8: read as cp1252
    for message_id in (big_text, big_file, latin1, broken):
        await wait_for_events(kafka.bootstrap, TICKETS_EVENTS, lambda e, m=message_id: e.type == "ticket.created"
                              and (e.data.get("email") or {}).get("message_id") == m, 1, 60)
    [letter] = await wait_for_events(kafka.bootstrap, DEADLETTER, lambda e: e.data["origin"] == "imap:INBOX"
                                     and base64.b64decode(e.data["original_base64"][:40]).startswith(b"X-Tag: " + tag.encode()), 1, 60)
    assert letter.data["reason"] == ("unparseable e-mail: the message has no usable From address (the first 262144 of its "
                                     f"{len(headless)} bytes are kept here; the whole message is in Deskstream-Quarantine)")
    assert base64.b64decode(letter.data["original_base64"]) == headless[:262144]
    await still_serves(pipeline_services["intake"], kafka)


async def test_every_other_http_entry_point_refuses_10_mb_with_413_and_its_reason(pipeline_services):
    """The agent API, the console's sign-in, the ops incident API, Twilio's status callback
    and the survey page: a caller without credentials is refused before the body is read,
    one with them gets 413 and the limit; every service still answers afterwards."""
    router, notifier, feedback = (pipeline_services[name].url for name in ("router", "notifier", "feedback"))
    survey = SurveyLinks(SURVEY_SECRET, 3600, feedback).token(f"S-{uuid.uuid4().hex[:12]}", "T-AAAAAAAA", 3, "en")
    big = b'{"text":"' + b"a" * TEN_MB + b'"}'
    json_type = {"Content-Type": "application/json"}
    cases = [
        (f"{router}/api/tickets/T-AAAAAAAA/reply", {**json_type, "Authorization": "Bearer integration-token-ana-0123456789abcdef"},
         413, '{"error": "the body is larger than 65536 bytes"}'),
        (f"{router}/api/tickets/T-AAAAAAAA/reply", json_type, 401, "sign in at /console"),
        (f"{router}/console/sign-in", json_type, 403, "X-CSRF-Token"),
        (f"{notifier}/api/incidents", {**json_type, "Authorization": f"Bearer {OPS_TOKEN}"}, 413,
         '{"error": "the body is larger than 65536 bytes"}'),
        (f"{notifier}/api/incidents", json_type, 401, "error"),
        (f"{notifier}/webhooks/twilio/status?request=x", {"X-Twilio-Signature": "c2lnbmVk", "Content-Type": "application/x-www-form-urlencoded"},
         413, "65536 exceeded"),
        (f"{notifier}/webhooks/twilio/status?request=x", {}, 403, "invalid Twilio signature"),
        (f"{feedback}/survey/{survey}", {"Content-Type": "application/x-www-form-urlencoded"}, 413, "at most 1000 characters"),
    ]
    async with aiohttp.ClientSession() as http:
        for url, headers, status, reason in cases:
            started = time.monotonic()
            async with http.post(url, data=big, headers=headers) as answer:
                assert (answer.status, reason in await answer.text()) == (status, True), (url, headers, answer.status)
            assert time.monotonic() - started < 5, url
        for name in ("router", "notifier", "feedback"):
            async with http.get(pipeline_services[name].url + "/healthz") as health:
                assert health.status == 200, name
