"""The channel senders against real servers on loopback, no Kafka: `TwilioSender` against
the Twilio stand-in (tests/twilio_api.py) and `SmtpPool` against an aiosmtpd server that
counts its connections and answers as scripted.

Each `deliver` is one attempt with a classified outcome: `sent`, `retry` (certainly not
sent), `failed` (never will be) or `in_doubt` (may have gone out); a send left in doubt
is settled by asking Twilio with `TwilioSender.find_sent`.
"""
from __future__ import annotations

import asyncio
import base64
import random
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from typing import Any, AsyncIterator, Iterator

import aiohttp
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as ServerSession
from twilio.rest import Client

from deskstream.localkafka import free_port
from services.notifier.settings import SmtpSettings, TwilioSettings
from services.notifier.smtp import SmtpPool, SmtpPoolClosed
from services.notifier.twilio_sms import UNSUBSCRIBED, TwilioLookupFailed, TwilioSender, _ApiHttpClient
from tests.twilio_api import SUPPORT_NUMBER, TwilioApi

NOWHERE = "http://127.0.0.1:9/webhooks/twilio/status"  # the status callbacks are not what these tests are about
SUPPORT = "soporte@deskstream.test"
TEXT = "Hola Ana, hemos recibido tu mensaje (T-ABCDEFGH). Te respondemos en unos 5 minutos."


def new_number() -> str:
    """A Spanish mobile number no other test uses."""
    return "+346" + "".join(random.choice("0123456789") for _ in range(8))


def twilio_settings(api: TwilioApi, *, url: str | None = None, timeout: float = 1.0) -> TwilioSettings:
    settings = TwilioSettings.from_env({
        "TWILIO_ACCOUNT_SID": api.account_sid, "TWILIO_AUTH_TOKEN": api.auth_token, "TWILIO_SMS_FROM": SUPPORT_NUMBER,
        "NOTIFIER_PUBLIC_BASE_URL": "http://127.0.0.1:9", "TWILIO_API_URL": url or api.url,
        "TWILIO_TIMEOUT_SECONDS": str(timeout),
    })
    assert settings is not None
    return settings


@pytest.fixture
async def twilio(twilio_api: TwilioApi) -> AsyncIterator[TwilioSender]:
    async with TwilioSender(twilio_settings(twilio_api)) as sender:
        yield sender


def requests_to(api: TwilioApi, number: str) -> int:
    return len([form for form in api.requests if form.get("To") == number])


# --- Twilio: deliver ---------------------------------------------------------------------


async def test_a_message_twilio_takes_is_sent_with_its_sid(twilio, twilio_api):
    number = new_number()
    outcome = await twilio.deliver("sms", number, TEXT, NOWHERE)

    [message] = twilio_api.sent_to(number)
    assert outcome.status == "sent" and outcome.provider_message_id == message.sid
    assert outcome.detail == f"Twilio accepted {message.sid} (queued, 1 segment(s))"
    assert (message.body, message.sender, message.status_callback) == (TEXT, SUPPORT_NUMBER, NOWHERE)


async def test_a_whatsapp_message_goes_to_the_whatsapp_address(twilio, twilio_api):
    number = new_number()
    outcome = await twilio.deliver("whatsapp", number, TEXT, NOWHERE)
    [message] = twilio_api.sent_to(f"whatsapp:{number}")
    assert outcome.provider_message_id == message.sid and message.sender == f"whatsapp:{SUPPORT_NUMBER}"


@pytest.mark.parametrize("status, code", [(429, 20429), (503, None)])
async def test_a_rate_limit_or_server_error_is_one_attempt_and_a_retry(twilio, twilio_api, status, code):
    number = new_number()
    twilio_api.fail_next(number, (status, code))
    outcome = await twilio.deliver("sms", number, TEXT, NOWHERE)
    assert (outcome.status, outcome.error_code) == ("retry", code)
    assert outcome.detail.startswith(f"Twilio {status}")
    assert requests_to(twilio_api, number) == 1 and twilio_api.sent_to(number) == []


async def test_an_unsubscribed_recipient_is_a_failure_with_twilios_code(twilio, twilio_api):
    number = new_number()
    twilio_api.fail_next(number, (400, UNSUBSCRIBED))
    outcome = await twilio.deliver("sms", number, TEXT, NOWHERE)
    assert (outcome.status, outcome.error_code) == ("failed", 21610)
    assert outcome.detail == "Twilio 400 error 21610: Attempt to send to unsubscribed recipient"
    assert requests_to(twilio_api, number) == 1


async def test_an_invalid_number_is_a_failure_and_the_detail_does_not_spell_it_out(twilio, twilio_api):
    outcome = await twilio.deliver("sms", "+34 600", TEXT, NOWHERE)
    assert (outcome.status, outcome.error_code) == ("failed", 21211)


async def test_twilio_unreachable_is_a_retry_nothing_was_sent(twilio_api):
    async with TwilioSender(twilio_settings(twilio_api, url=f"http://127.0.0.1:{free_port()}")) as sender:
        outcome = await sender.deliver("sms", new_number(), TEXT, NOWHERE)
    assert outcome.status == "retry" and outcome.detail == "Twilio unreachable: ClientConnectorError"


async def test_a_connection_dropped_after_twilio_created_the_message_leaves_it_in_doubt_and_find_sent_settles_it(twilio, twilio_api):
    number = new_number()
    claimed_at = datetime.now(timezone.utc)
    twilio_api.drop_after_create(number)

    outcome = await twilio.deliver("sms", number, TEXT, NOWHERE)

    [message] = twilio_api.sent_to(number)  # it did go out
    assert outcome.status == "in_doubt" and outcome.provider_message_id is None
    assert "ServerDisconnectedError" in outcome.detail
    assert await twilio.find_sent("sms", number, TEXT, claimed_at) == message.sid


async def test_an_answer_slower_than_the_timeout_leaves_the_send_in_doubt(twilio, twilio_api):
    number = new_number()
    claimed_at = datetime.now(timezone.utc)
    twilio_api.hang_after_create(number, 3.0)  # the sender waits 1 s

    outcome = await twilio.deliver("sms", number, TEXT, NOWHERE)

    assert outcome.status == "in_doubt" and "TimeoutError" in outcome.detail
    [message] = twilio_api.sent_to(number)
    assert await twilio.find_sent("sms", number, TEXT, claimed_at) == message.sid


# --- Twilio: find_sent -------------------------------------------------------------------


async def test_find_sent_finds_nothing_when_nothing_was_created(twilio, twilio_api):
    number = new_number()
    twilio_api.fail_next(number, (503, None))
    claimed_at = datetime.now(timezone.utc)
    assert (await twilio.deliver("sms", number, TEXT, NOWHERE)).status == "retry"
    assert await twilio.find_sent("sms", number, TEXT, claimed_at) is None


async def test_find_sent_wants_exactly_the_same_body(twilio, twilio_api):
    number = new_number()
    claimed_at = datetime.now(timezone.utc)
    assert (await twilio.deliver("sms", number, TEXT, NOWHERE)).status == "sent"
    assert await twilio.find_sent("sms", number, TEXT + " ", claimed_at) is None
    assert await twilio.find_sent("sms", number, "Otro texto", claimed_at) is None
    assert await twilio.find_sent("sms", new_number(), TEXT, claimed_at) is None  # nor another number


async def test_find_sent_ignores_the_same_text_sent_before_the_claim(twilio, twilio_api):
    number = new_number()
    now = datetime.now(timezone.utc)
    twilio_api.add_past_message(number, TEXT, created_at=now - timedelta(hours=1))
    assert await twilio.find_sent("sms", number, TEXT, now) is None


async def test_find_sent_allows_a_minute_for_twilios_clock(twilio, twilio_api):
    number = new_number()
    now = datetime.now(timezone.utc)
    message = twilio_api.add_past_message(number, TEXT, created_at=now - timedelta(seconds=30))
    assert await twilio.find_sent("sms", number, TEXT, now) == message.sid


async def test_find_sent_finds_a_message_that_is_still_queued(twilio, twilio_api):
    """Queued messages have no date_sent yet, so a DateSent filter would miss them."""
    number = new_number()
    now = datetime.now(timezone.utc)
    message = twilio_api.add_past_message(number, TEXT, created_at=now, status="queued")
    assert await twilio.find_sent("sms", number, TEXT, now) == message.sid


async def test_find_sent_reads_past_the_first_page(twilio, twilio_api):
    number = new_number()
    now = datetime.now(timezone.utc)
    wanted = twilio_api.add_past_message(number, TEXT, created_at=now)
    for second in range(1, 26):  # 25 newer messages to the same number
        twilio_api.add_past_message(number, f"Aviso {second}", created_at=now + timedelta(seconds=second))
    assert await twilio.find_sent("sms", number, TEXT, now, page_size=10) == wanted.sid
    assert await twilio.find_sent("sms", number, TEXT, now, limit=20, page_size=10) is None  # beyond the limit


async def test_find_sent_raises_when_twilio_cannot_be_asked(twilio_api):
    async with TwilioSender(twilio_settings(twilio_api, url=f"http://127.0.0.1:{free_port()}")) as sender:
        with pytest.raises(TwilioLookupFailed, match="ClientConnectorError"):
            await sender.find_sent("sms", new_number(), TEXT, datetime.now(timezone.utc))


async def test_find_sent_raises_when_twilio_refuses_the_credentials(twilio_api):
    wrong = TwilioApi(twilio_api.account_sid, "not-the-token")
    wrong.port = twilio_api.port
    async with TwilioSender(twilio_settings(wrong)) as sender:
        with pytest.raises(TwilioLookupFailed):
            await sender.find_sent("sms", new_number(), TEXT, datetime.now(timezone.utc))


async def test_find_sent_needs_an_aware_time(twilio):
    with pytest.raises(ValueError):
        await twilio.find_sent("sms", new_number(), TEXT, datetime.now())


# --- the stand-in's list, as Twilio documents it ----------------------------------------


def basic_auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_the_list_pages_newest_first_in_twilios_envelope(twilio_api):
    number = new_number()
    now = datetime.now(timezone.utc)
    sids = [twilio_api.add_past_message(number, f"Aviso {i}", created_at=now + timedelta(seconds=i)).sid for i in range(5)]
    base = f"{twilio_api.url}/2010-04-01/Accounts/{twilio_api.account_sid}/Messages.json"
    auth, wrong = (basic_auth(twilio_api.account_sid, token) for token in (twilio_api.auth_token, "wrong"))
    async with aiohttp.ClientSession() as session:
        async with session.get(base, params={"To": number, "PageSize": "2"}, headers=auth) as response:
            first = await response.json()
        async with session.get(twilio_api.url + first["next_page_uri"], headers=auth) as response:
            second = await response.json()
        async with session.get(base, params={"To": number}, headers=wrong) as response:
            assert response.status == 401 and (await response.json())["code"] == 20003

    assert [m["sid"] for m in first["messages"]] == sids[:-3:-1]
    assert [m["sid"] for m in second["messages"]] == sids[-3:-5:-1]
    assert {k: first[k] for k in ("page", "page_size", "start", "end", "previous_page_uri")} == {
        "page": 0, "page_size": 2, "start": 0, "end": 1, "previous_page_uri": None}
    assert (second["page"], second["start"], second["end"]) == (1, 2, 3) and second["previous_page_uri"]
    assert first["uri"].startswith(f"/2010-04-01/Accounts/{twilio_api.account_sid}/Messages.json?To=")
    assert first["first_page_uri"].endswith("PageSize=2&Page=0")
    shown = first["messages"][0]
    assert shown["to"] == number and shown["from"] == SUPPORT_NUMBER and shown["body"] == "Aviso 4"
    assert shown["status"] == "delivered" and shown["num_segments"] == "1"
    assert shown["date_created"].endswith(" GMT")  # RFC 2822, as Twilio writes dates


async def test_the_lists_date_sent_filter_leaves_out_messages_not_yet_sent(twilio_api):
    """What the official client sends for date_sent_after (DateSent>=...), and why
    find_sent does not filter by it."""
    number = new_number()
    now = datetime.now(timezone.utc)
    delivered = twilio_api.add_past_message(number, TEXT, created_at=now)
    twilio_api.add_past_message(number, TEXT, created_at=now, status="queued")
    twilio_api.add_past_message(number, TEXT, created_at=now - timedelta(days=2))
    http = _ApiHttpClient(twilio_api.url, 5.0)
    try:
        client = Client(twilio_api.account_sid, twilio_api.auth_token, http_client=http)
        found = await client.messages.list_async(to=number, date_sent_after=now - timedelta(minutes=1))
        everything = await client.messages.list_async(to=number, limit=10)
    finally:
        await http.close()
    assert [m.sid for m in found] == [delivered.sid]
    assert len(everything) == 3


# --- SMTP: a pool against a scripted server ----------------------------------------------


class ScriptedSmtpServer:
    """aiosmtpd on loopback that keeps what it accepts, counts the connections that
    greeted it (EHLO), and answers RCPT or DATA for scripted recipients: a reply line,
    "drop" (close the connection after taking the message), or a number of seconds to
    keep the client waiting before taking it."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.messages: list[tuple[list[str], bytes]] = []
        self.rcpt_answers: dict[str, str] = {}
        self.data_answers: dict[str, str | float] = {}
        self.connections = 0
        self.peak = 0
        self._sessions: list[ServerSession] = []
        owner = self

        class Session(ServerSession):
            def connection_made(self, transport: Any) -> None:
                super().connection_made(transport)
                owner._sessions.append(self)

        class ScriptedController(Controller):
            def factory(self) -> ServerSession:
                return Session(self.handler, **self.SMTP_kwargs)

        self._controller = ScriptedController(self, hostname=self.host, port=self.port)

    def open_sessions(self) -> list[ServerSession]:
        return [s for s in self._sessions if s.transport is not None and getattr(s, "greeted", False)]

    def drop_connections(self) -> None:
        """Close every connection from the server's side, as an idle timeout does."""
        done = asyncio.run_coroutine_threadsafe(self._drop(), self._controller.loop)
        done.result(5)

    async def _drop(self) -> None:
        for session in self.open_sessions():
            session.transport.close()

    # aiosmtpd handler hooks

    async def handle_EHLO(self, server: ServerSession, session: Any, envelope: Any, hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname  # a handler's EHLO hook takes this over from aiosmtpd
        server.greeted = True  # type: ignore[attr-defined]
        self.connections += 1
        self.peak = max(self.peak, len(self.open_sessions()))
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        answer = self.rcpt_answers.get(address)
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: ServerSession, session: Any, envelope: Any) -> str:
        script = self.data_answers.get(envelope.rcpt_tos[0])
        if isinstance(script, str) and script != "drop":
            return script
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.original_content or envelope.content)))
        if script == "drop":
            server.transport.close()
        elif isinstance(script, float):
            await asyncio.sleep(script)
        return "250 2.0.0 Ok: queued as " + uuid.uuid4().hex[:10].upper()

    def message_ids(self) -> list[str]:
        found = []
        for _, raw in self.messages:
            for line in raw.split(b"\r\n"):
                if line.lower().startswith(b"message-id:"):
                    found.append(line.split(b":", 1)[1].strip().decode())
        return found

    def __enter__(self) -> "ScriptedSmtpServer":
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


@pytest.fixture
def mail_server() -> Iterator[ScriptedSmtpServer]:
    with ScriptedSmtpServer() as server:
        yield server


def smtp_settings(host: str, port: int, timeout: float = 1.0) -> SmtpSettings:
    settings = SmtpSettings.from_env({"SMTP_HOST": host, "SMTP_PORT": str(port), "SMTP_STARTTLS": "false",
                                      "MAIL_FROM": SUPPORT, "SMTP_TIMEOUT_SECONDS": str(timeout)})
    assert settings is not None
    return settings


@pytest.fixture
async def pool(mail_server: ScriptedSmtpServer) -> AsyncIterator[SmtpPool]:
    async with SmtpPool(smtp_settings(mail_server.host, mail_server.port), size=4) as pool:
        yield pool


def mail(to: str = "ana@cliente.example") -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Soporte <{SUPPORT}>"
    message["To"] = to
    message["Subject"] = "[T-ABCDEFGH] Hemos recibido tu mensaje"
    message["Message-ID"] = f"<T-ABCDEFGH.{uuid.uuid4().hex}@deskstream.test>"
    message.set_content("Hola Ana, te respondemos en unos minutos.")
    return message


async def test_fifty_messages_go_through_four_connections_each_exactly_once(pool, mail_server):
    messages = [mail(f"cliente{i}@cliente.example") for i in range(50)]

    outcomes = await asyncio.gather(*(pool.deliver(message) for message in messages))

    assert [o.status for o in outcomes] == ["sent"] * 50
    assert [o.provider_message_id for o in outcomes] == [m["Message-ID"] for m in messages]
    assert Counter(mail_server.message_ids()) == Counter({m["Message-ID"]: 1 for m in messages})
    assert 1 <= mail_server.connections <= 4 and mail_server.peak <= 4
    assert pool.connections_opened == mail_server.connections


async def test_a_sent_detail_names_the_message_and_the_servers_answer(pool):
    message = mail()
    outcome = await pool.deliver(message)
    assert outcome.detail.startswith(f"SMTP accepted {message['Message-ID']}: 2.0.0 Ok: queued as ")
    assert "ana@cliente.example" not in outcome.detail


async def test_connections_are_reused_from_one_message_to_the_next(pool, mail_server):
    for _ in range(5):
        assert (await pool.deliver(mail())).status == "sent"
    assert mail_server.connections == 1


async def test_a_451_is_a_retry_and_a_550_a_failure_with_the_servers_code(pool, mail_server):
    mail_server.rcpt_answers["later@cliente.example"] = "451 4.3.0 Try again later"
    mail_server.rcpt_answers["nobody@cliente.example"] = "550 5.1.1 <nobody@cliente.example>: Recipient address rejected: User unknown"
    mail_server.data_answers["spam@cliente.example"] = "554 5.7.1 Message rejected as spam"

    later = await pool.deliver(mail("later@cliente.example"))
    nobody = await pool.deliver(mail("nobody@cliente.example"))
    spam = await pool.deliver(mail("spam@cliente.example"))

    assert (later.status, later.error_code) == ("retry", 451) and "451 4.3.0 Try again later" in later.detail
    assert (nobody.status, nobody.error_code) == ("failed", 550)
    assert "User unknown" in nobody.detail and "nobody@cliente.example" not in nobody.detail
    assert (spam.status, spam.error_code) == ("failed", 554) and "rejected as spam" in spam.detail
    assert mail_server.messages == []
    assert (await pool.deliver(mail())).status == "sent"  # and the pool goes on


async def test_the_pool_reconnects_after_the_server_drops_its_connections(pool, mail_server):
    assert (await pool.deliver(mail())).status == "sent"
    mail_server.drop_connections()
    await asyncio.sleep(0.2)  # the client sees the close while the connection is idle

    outcome = await pool.deliver(mail())

    assert outcome.status == "sent"
    assert mail_server.connections == 2 and len(mail_server.messages) == 2


async def test_a_connection_lost_after_the_content_was_sent_is_in_doubt_and_the_next_message_goes_on_a_new_one(pool, mail_server):
    mail_server.data_answers["ana@cliente.example"] = "drop"

    lost = await pool.deliver(mail("ana@cliente.example"))
    after = await pool.deliver(mail("luis@cliente.example"))

    assert lost.status == "in_doubt" and "SMTPServerDisconnected" in lost.detail
    assert after.status == "sent"
    assert len(mail_server.messages) == 2 and mail_server.connections == 2  # the doubtful one did arrive


async def test_no_answer_to_the_content_within_the_timeout_is_in_doubt(pool, mail_server):
    mail_server.data_answers["ana@cliente.example"] = 3.0  # the pool waits 1 s

    outcome = await pool.deliver(mail("ana@cliente.example"))

    assert outcome.status == "in_doubt" and "SMTPReadTimeoutError" in outcome.detail
    assert (await pool.deliver(mail("luis@cliente.example"))).status == "sent"


async def test_no_server_is_a_retry():
    async with SmtpPool(smtp_settings("127.0.0.1", free_port()), size=2) as pool:
        outcome = await pool.deliver(mail())
    assert outcome.status == "retry" and outcome.detail.startswith("SMTP server unavailable: SMTPConnectError")


async def test_a_closed_pool_says_so(mail_server):
    pool = SmtpPool(smtp_settings(mail_server.host, mail_server.port), size=1)
    assert (await pool.deliver(mail())).status == "sent"
    await pool.close()
    with pytest.raises(SmtpPoolClosed):
        await pool.deliver(mail())
