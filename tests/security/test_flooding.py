"""Flooding intake over loopback: the chat API, the chat WebSocket and Twilio's webhook
answer 429 with Retry-After past their limits, one SMS sender or one e-mail sender who
floods opens one ticket and has the rest dead-lettered with the reason (every message
accounted for, record by record), and afterwards the pipeline is healthy.

The intake here has low limits (LIMITS) and a broker of its own: a hop's limit is the
one its worker was started with, and on the session's shared cluster the shared intake
would take part of the tickets hop's partitions (the same consumer group). It trusts
127.0.0.1 as a proxy, so each test speaks from addresses of its own in X-Forwarded-For
(198.51.100.0/24, TEST-NET-2), and one test calls from 127.0.0.2, which is not trusted,
to show that the header then counts for nothing. Every flood is bounded: at most 60
requests, each answered at once.
"""
from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Iterator

import aiohttp
import orjson
import pytest

from deskstream.events import Event
from deskstream.topics import DEADLETTER, INTAKE_RAW, TICKETS_EVENTS
from tests.harness import ServiceProcess, own_kafka, read_topic, running, service_env, wait_for_events
from tests.twilio_api import AUTH_TOKEN, inbound_sms, sign

pytestmark = pytest.mark.integration

SUPPORT = "soporte@deskstream.test"
LIMITS = {
    "INTAKE_CHAT_SESSIONS_PER_ADDRESS": "5/3600",
    "INTAKE_CHAT_MESSAGES_PER_ADDRESS": "20/3600",
    "INTAKE_CHAT_MESSAGES_PER_SESSION": "5/3600",
    "INTAKE_CHAT_SOCKETS_PER_ADDRESS": "10/3600",
    "INTAKE_CHAT_SOCKETS_PER_SESSION": "2",
    "INTAKE_TWILIO_REQUESTS_PER_ADDRESS": "50/3600",
    "INTAKE_SMS_PER_SENDER": "5/3600",
    "INTAKE_MAIL_PER_SENDER": "1/3600",
    "TRUSTED_PROXIES": "127.0.0.1",
}


@dataclass
class Flooded:
    bootstrap: str
    intake: ServiceProcess
    folder: str  # the mailbox folder this intake reads
    quarantine: str
    dovecot: Any

    @property
    def url(self) -> str:
        return self.intake.url


@pytest.fixture(scope="module")
def flooded(dovecot, tmp_path_factory) -> Iterator[Flooded]:
    work = tmp_path_factory.mktemp("flooding")
    folder = f"Flood-{uuid.uuid4().hex[:8]}"  # the session's intake reads INBOX: this one a folder of its own
    dovecot.create_folder(folder)
    with own_kafka("flooding") as broker:
        env = service_env(
            broker.bootstrap, work, LOG_LEVEL="warning", TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            IMAP_HOST=dovecot.host, IMAP_PORT=str(dovecot.port), IMAP_SSL="false", IMAP_USER=dovecot.user,
            IMAP_PASSWORD=dovecot.password, IMAP_FOLDER=folder, IMAP_QUARANTINE_FOLDER=f"{folder}-Quarantine",
            IMAP_POLL_SECONDS="2", MAIL_OWN_ADDRESSES=SUPPORT, **LIMITS,
        )
        env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{env['INTAKE_HTTP_PORT']}"
        with running(ServiceProcess("intake", env, work)) as (intake,):
            yield Flooded(broker.bootstrap, intake, folder, f"{folder}-Quarantine", dovecot)


def via(address: str, **headers: str) -> dict[str, str]:
    return {"X-Forwarded-For": address, **headers}


async def post_json(http: aiohttp.ClientSession, url: str, body: dict, headers: dict[str, str]) -> tuple[int, Any, dict]:
    async with http.post(url, data=orjson.dumps(body), headers={"Content-Type": "application/json", **headers}) as response:
        return response.status, response.headers, await response.json(content_type=None)


def assert_throttled(status: int, headers: Any, body: dict, limit: str, longest: int) -> None:
    """A 429 naming `limit`, whose Retry-After is whole seconds, at least 1, and no more
    than the time one token takes to come back (`longest`)."""
    assert status == 429, body
    assert re.fullmatch(r"[0-9]+", headers["Retry-After"]), headers["Retry-After"]
    assert 1 <= int(headers["Retry-After"]) <= longest
    assert body["limit"] == limit and limit in body["error"]


def assert_refusals(answers: list[tuple[int, Any, dict]], passed: int, status: int, limit: str, longest: int) -> None:
    assert [a[0] for a in answers] == [status] * passed + [429] * (len(answers) - passed)
    for answer in answers[passed:]:
        assert_throttled(*answer, limit, longest)


async def test_a_flood_of_chat_sessions_from_one_address_gets_429_with_retry_after(flooded):
    url = f"{flooded.url}/api/chat/sessions"
    async with aiohttp.ClientSession() as http:
        answers = [await post_json(http, url, {}, via("198.51.100.1")) for _ in range(15)]
        assert_refusals(answers, 5, 201, "chat sessions per address", 720)
        assert (await post_json(http, url, {}, via("198.51.100.2")))[0] == 201  # another address: its own allowance


async def test_a_client_that_is_no_trusted_proxy_cannot_dodge_the_limit_with_x_forwarded_for(flooded):
    url = f"{flooded.url}/api/chat/sessions"
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))  # loopback, but not in TRUSTED_PROXIES
    async with aiohttp.ClientSession(connector=connector) as http:
        answers = [await post_json(http, url, {}, via(f"203.0.113.{n}")) for n in range(8)]
    assert_refusals(answers, 5, 201, "chat sessions per address", 720)


async def test_a_flood_of_messages_on_one_chat_session_gets_429_and_stores_only_what_was_accepted(flooded):
    url = f"{flooded.url}/api/chat/messages"
    address = "198.51.100.3"
    async with aiohttp.ClientSession() as http:
        status, _, opened = await post_json(http, f"{flooded.url}/api/chat/sessions", {}, via(address))
        assert status == 201
        session, auth = opened["session_id"], via(address, Authorization=f"Bearer {opened['session_token']}")
        answers = [await post_json(http, url, {"session_id": session, "client_message_id": f"m{n}", "text": f"Hola {n}"}, auth)
                   for n in range(12)]
        assert_refusals(answers, 5, 202, "chat messages per session", 720)
        # Knowing the session id without its token uses up nothing of the customer's allowance:
        status, _, _ = await post_json(http, url, {"session_id": session, "client_message_id": "x", "text": "x"}, via(address))
        assert status == 401
    stored = await wait_for_events(flooded.bootstrap, INTAKE_RAW, lambda e: e.data.get("thread_key") == f"chat:{session}", 5)
    assert sorted(e.data["body_text"] for e in stored) == [f"Hola {n}" for n in range(5)]


async def test_a_flood_of_chat_messages_from_one_address_over_many_sessions_gets_429(flooded):
    url = f"{flooded.url}/api/chat/messages"
    address = "198.51.100.4"
    answers = []
    async with aiohttp.ClientSession() as http:
        for session in range(4):  # four sessions of five messages: the address's twenty
            status, _, first = await post_json(http, url, {"client_message_id": f"s{session}-0", "text": "Hola"}, via(address))
            assert status == 202
            auth = via(address, Authorization=f"Bearer {first['session_token']}")
            for n in range(1, 5):
                body = {"session_id": first["session_id"], "client_message_id": f"s{session}-{n}", "text": "Hola"}
                assert (await post_json(http, url, body, auth))[0] == 202
        for n in range(5):
            answers.append(await post_json(http, url, {"client_message_id": f"over-{n}", "text": "Hola"}, via(address)))
    assert_refusals(answers, 0, 202, "chat messages per address", 180)


async def test_chat_sockets_are_limited_per_session_at_once_and_per_address_in_connects(flooded):
    async with aiohttp.ClientSession() as http:
        status, _, opened = await post_json(http, f"{flooded.url}/api/chat/sessions", {}, via("198.51.100.5"))
        assert status == 201
        ws_url = f"{flooded.url}/api/chat/sessions/{opened['session_id']}/ws?token={opened['session_token']}"
        first = await http.ws_connect(ws_url, headers=via("198.51.100.5"))
        second = await http.ws_connect(ws_url, headers=via("198.51.100.5"))
        with pytest.raises(aiohttp.WSServerHandshakeError) as third:
            await http.ws_connect(ws_url, headers=via("198.51.100.5"))
        assert third.value.status == 429 and int(third.value.headers["Retry-After"]) >= 1
        await first.close()
        await second.close()

        # Connects per address are counted before the token is checked: guessing tokens is slowed too.
        statuses = []
        for _ in range(14):
            try:
                socket = await http.ws_connect(ws_url.replace("token=", "token=wrong"), headers=via("198.51.100.6"))
                await socket.close()
                statuses.append(101)
            except aiohttp.WSServerHandshakeError as refused:
                statuses.append(refused.status)
                if refused.status == 429:
                    assert 1 <= int(refused.headers["Retry-After"]) <= 360
        assert statuses == [403] * 10 + [429] * 4


async def test_a_flood_of_twilio_webhooks_from_one_address_gets_429_with_retry_after(flooded):
    url = f"{flooded.url}/webhooks/twilio/sms"
    signed_url = url  # PUBLIC_BASE_URL is the intake's own address
    answers = []
    async with aiohttp.ClientSession() as http:
        for n in range(60):
            form = inbound_sms(sender=f"+3460070{n:04d}", body="Hola")
            async with http.post(url, data=form, headers=via("198.51.100.7", **{"X-Twilio-Signature": sign(signed_url, form)})) as response:
                answers.append((response.status, response.headers, await response.json(content_type=None)
                                if response.status == 429 else {}))
    assert_refusals(answers, 50, 200, "twilio webhooks per address", 72)


async def test_one_sms_sender_flooding_opens_one_ticket_and_every_message_past_the_limit_is_dead_lettered(flooded):
    url = f"{flooded.url}/webhooks/twilio/sms"
    sender, thread_key = "+34600999888", "sms:+34600999888"
    forms = [inbound_sms(sender=sender, body=f"¿Me atendéis? ({n})") for n in range(40)]
    async with aiohttp.ClientSession() as http:
        for form in forms:  # Twilio is answered 200 for each: every message is stored
            async with http.post(url, data=form, headers=via("198.51.100.9", **{"X-Twilio-Signature": sign(url, form)})) as response:
                assert response.status == 200 and "<Response" in await response.text()
    sids = [form["MessageSid"] for form in forms]

    letters = await wait_for_events(flooded.bootstrap, DEADLETTER, lambda e: e.data["key"] == thread_key, 35, timeout=60)
    tickets = [e for e in await wait_for_events(flooded.bootstrap, TICKETS_EVENTS,
                                                lambda e: e.data.get("thread_key", thread_key) == thread_key
                                                and (e.data.get("sms") or {}).get("message_sid") in sids, 5, timeout=60)]
    assert [e.type for e in tickets] == ["ticket.created"] + ["ticket.message_received"] * 4
    assert len({e.data["ticket_id"] for e in tickets}) == 1
    on_ticket = [e.data["sms"]["message_sid"] for e in tickets]
    assert on_ticket == sids[:5]  # the first five, in the order sent

    held = []
    for letter in letters:
        assert letter.data["origin"] == INTAKE_RAW
        assert letter.data["reason"] == "sender over limit: this sms sender wrote more than 5 per 3600 s; kept here, not on the ticket"
        original = Event.decode(base64.b64decode(letter.data["original_base64"]))
        assert original.type == "contact.received" and original.data["thread_key"] == thread_key
        held.append(original.data["sms"]["message_sid"])
    assert len(letters) == 35 and sorted(held) == sorted(sids[5:])  # each once: nothing lost, nothing twice

    async with aiohttp.ClientSession() as http:
        async with http.get(f"{flooded.url}/metrics") as response:
            metrics = await response.text()
    assert re.search(r'deskstream_errors_total\{reason="sender over limit",service="intake"\} 35\.0', metrics), metrics


async def test_a_number_flooding_help_gets_the_help_text_only_up_to_its_limit(flooded):
    url = f"{flooded.url}/webhooks/twilio/sms"
    answers = []
    async with aiohttp.ClientSession() as http:
        for _ in range(8):  # each help text is an SMS the support desk pays for
            form = inbound_sms(sender="+34600555444", body="HELP")
            async with http.post(url, data=form, headers=via("198.51.100.12", **{"X-Twilio-Signature": sign(url, form)})) as response:
                assert response.status == 200
                answers.append(await response.text())
    assert ["<Message>Support:" in answer for answer in answers] == [True] * 5 + [False] * 3
    assert all("<Message>" not in answer for answer in answers[5:])


def mail(sender: str, subject: str, message_id: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"Cliente <{sender}>"
    message["To"] = SUPPORT
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message.set_content("No me funciona nada, ¿podéis llamarme?")
    return message.as_bytes()


async def test_one_email_sender_flooding_with_new_subjects_opens_one_ticket_and_the_rest_is_quarantined(flooded):
    run = uuid.uuid4().hex[:8]
    sender = f"flood-{run}@example.com"
    ids = [f"<flood-{run}-{n}@example.com>" for n in range(8)]
    for n, message_id in enumerate(ids):  # eight conversations, as eight subjects make
        flooded.dovecot.append(mail(sender, f"Asunto {n} {run}", message_id), folder=flooded.folder)

    letters = await wait_for_events(flooded.bootstrap, DEADLETTER,
                                    lambda e: e.data["origin"] == f"imap:{flooded.folder}"
                                    and e.data["reason"].startswith("sender over limit"), 7, timeout=60)
    created = await wait_for_events(flooded.bootstrap, TICKETS_EVENTS,
                                    lambda e: e.type == "ticket.created" and e.data["customer"].get("email") == sender, 1)
    assert len(created) == 1 and created[0].data["email"]["message_id"].strip("<>") == ids[0].strip("<>")
    held = [base64.b64decode(letter.data["original_base64"]) for letter in letters]
    assert len(held) == 7 and all(any(i.encode() in raw for raw in held) for i in ids[1:])
    assert all(letter.data["reason"] == "sender over limit: this address sent more than 1 per 3600 s; "
               "the mail is in the quarantine folder" for letter in letters)
    assert len(flooded.dovecot.uids(flooded.quarantine)) == 7  # kept whole for an operator
    raw_contacts = [e for e in await read_topic(flooded.bootstrap, INTAKE_RAW) if e.data.get("customer", {}).get("email") == sender]
    assert len(raw_contacts) == 1


async def test_after_the_floods_the_pipeline_is_healthy_and_a_normal_customer_gets_a_ticket(flooded):
    sms_url = f"{flooded.url}/webhooks/twilio/sms"
    form = inbound_sms(sender="+34611222333", body="Hola, no tengo línea desde ayer")
    run = uuid.uuid4().hex[:8]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{flooded.url}/readyz") as ready:
            assert ready.status == 200
        async with http.post(sms_url, data=form, headers=via("198.51.100.10", **{"X-Twilio-Signature": sign(sms_url, form)})) as response:
            assert response.status == 200
        status, _, chat = await post_json(http, f"{flooded.url}/api/chat/messages",
                                          {"client_message_id": "normal", "text": "Mi factura está mal"}, via("198.51.100.11"))
        assert status == 202
    flooded.dovecot.append(mail(f"normal-{run}@example.com", f"Consulta {run}", f"<normal-{run}@example.com>"), folder=flooded.folder)

    def normal(event: Event) -> bool:
        return event.type == "ticket.created" and (
            (event.data.get("sms") or {}).get("message_sid") == form["MessageSid"]
            or event.data["thread_key"] == f"chat:{chat['session_id']}"
            or event.data["customer"].get("email") == f"normal-{run}@example.com")

    assert len(await wait_for_events(flooded.bootstrap, TICKETS_EVENTS, normal, 3, timeout=60)) == 3
    assert flooded.intake.process is not None and flooded.intake.process.poll() is None
