"""Sensitive data that customers write (issue 12): a card number, a password and a DNI
written in a chat message, an SMS and an e-mail never reach `tickets.events` in clear,
nor `intake.raw` with the default INTAKE_KEEP_ORIGINAL_TEXT; the agent's console shows
the masked form; a record already on `intake.raw` in clear (written before masking, or
with the original kept) is masked on its way to `tickets.events`; and the workers' log
files carry no customer address or phone number in clear.

Every record is searched as raw bytes, read uncommitted too, so that not even an
aborted transaction's copy may hold the clear text. Each test's values are its own
(random, checked as the real ones are), so what other tests wrote cannot hide a leak.
"""
from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from dataclasses import dataclass

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from deskstream.events import Event, utcnow
from deskstream.sensitive import DNI_LETTERS, luhn_valid
from deskstream.topics import INTAKE_RAW, TICKETS_EVENTS
from tests.agent_api import AgentApi
from tests.channels import Customers
from tests.harness import wait_for_events

pytestmark = pytest.mark.integration

SUPERVISOR_TOKEN = "integration-token-sam-0123456789abcdef"  # tests/integration/roster.json: sam sees every ticket


@dataclass(frozen=True)
class Secrets:
    """One test's card number, password and DNI: random, and valid as real ones are."""

    card: str  # 16 digits, Luhn-valid, starting 4 (Visa)
    password: str
    dni: str

    @classmethod
    def new(cls) -> "Secrets":
        body = "4" + "".join(secrets.choice("0123456789") for _ in range(14))
        card = next(body + str(d) for d in range(10) if luhn_valid(body + str(d)))
        number = secrets.randbelow(90_000_000) + 10_000_000
        return cls(card, f"Pw{secrets.token_hex(5)}", f"{number}{DNI_LETTERS[number % 23]}")

    @property
    def card_grouped(self) -> str:
        return " ".join(self.card[i:i + 4] for i in range(0, 16, 4))

    def message(self, card_form: str) -> str:
        return (f"Hola, me cobraron dos veces con la tarjeta {card_form}. Mi contraseña es {self.password} "
                f"y mi DNI {self.dni}, por si hace falta.")

    def in_clear(self) -> list[bytes]:
        """What must not be found: the number as written and compact, its hidden middle
        digits, the password and the DNI's number."""
        return [s.encode() for s in (self.card, self.card_grouped, self.card[4:12], self.password, self.dni[:8])]


async def raw_records(bootstrap: str, topic: str) -> list[bytes]:
    """Every record's key and value on the topic, committed or not, as bytes."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, isolation_level="read_uncommitted")
    await consumer.start()
    found: list[bytes] = []
    try:
        while batch := await consumer.getmany(timeout_ms=1500):
            for records in batch.values():
                found += [(record.key or b"") + b"\x00" + (record.value or b"") for record in records]
    finally:
        await consumer.stop()
    return found


def leaks(records: list[bytes], values: list[bytes]) -> list[bytes]:
    return [value for value in values if any(value in record for record in records)]


async def created_for(bootstrap: str, address: str, timeout: float = 60) -> Event:
    [created] = await wait_for_events(
        bootstrap, TICKETS_EVENTS, lambda e: e.type == "ticket.created" and e.data["reply_to"]["address"] == address, 1,
        timeout=timeout)
    return created


async def test_a_card_a_password_and_a_dni_written_on_every_channel_never_reach_the_topics_in_clear(pipeline_services, kafka, dovecot):
    chat, sms, mail = Secrets.new(), Secrets.new(), Secrets.new()
    phone = "+346" + "".join(secrets.choice("0123456789") for _ in range(8))
    address = f"cliente-{secrets.token_hex(4)}@example.com"
    async with Customers(pipeline_services["intake"].url, dovecot) as customers:
        session = await customers.open_chat()
        await customers.chat(session, chat.message(chat.card_grouped), client_message_id="m1")
        await customers.sms(phone, sms.message(sms.card))
        await customers.email(address, mail.message("-".join(mail.card_grouped.split())), f"<{uuid.uuid4()}@example.com>",
                              subject=f"Mi clave: {mail.password}")
    created = {channel: await created_for(kafka.bootstrap, reply_to) for channel, reply_to in
               (("chat", session.session_id), ("sms", phone), ("email", address))}

    for channel, written in (("chat", chat), ("sms", sms), ("email", mail)):
        text = created[channel].data["body_text"]
        assert f"[card ····{written.card[-4:]}]" in text and "[secret ····]" in text and "[DNI ····]" in text, text
    assert created["email"].data["subject"] == "Mi clave: [secret ····]"
    assert "[card ····" in created["email"].data["email"]["full_text"]

    everything = chat.in_clear() + sms.in_clear() + mail.in_clear()
    assert leaks(await raw_records(kafka.bootstrap, TICKETS_EVENTS), everything) == []
    assert leaks(await raw_records(kafka.bootstrap, INTAKE_RAW), everything) == [], "INTAKE_KEEP_ORIGINAL_TEXT is off"

    # What the agent's console is given: the masked text.
    async with aiohttp.ClientSession() as http:
        supervisor = AgentApi(http, pipeline_services["router"].url, SUPERVISOR_TOKEN)
        ticket_id = created["chat"].data["ticket_id"]
        await supervisor.ticket_when(ticket_id, lambda ticket: True, timeout=60)
        status, conversation = await supervisor.get(f"/api/tickets/{ticket_id}/conversation")
    shown = str(conversation)
    assert status == 200 and f"[card ····{chat.card[-4:]}]" in shown, shown
    assert leaks([shown.encode()], chat.in_clear()) == []


async def test_a_contact_already_on_intake_raw_in_clear_is_masked_on_its_way_to_tickets_events(pipeline_services, kafka):
    written = Secrets.new()
    session_id = secrets.token_hex(12)
    data = {"contact_id": f"chat-{session_id}-1", "channel": "chat", "thread_key": f"chat:{session_id}",
            "received_at": utcnow(), "customer": {"id": f"c-{session_id}"}, "subject": None,
            "body_text": written.message(written.card_grouped), "reply_to": {"channel": "chat", "address": session_id}}
    event = Event(type="contact.received", source="deskstream/intake", id=data["contact_id"], data=data,
                  subject=data["thread_key"])
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    try:  # as an intake with INTAKE_KEEP_ORIGINAL_TEXT, or one from before masking, wrote it
        await producer.send_and_wait(INTAKE_RAW, event.encode(), key=data["thread_key"].encode())
    finally:
        await producer.stop()
    created = await created_for(kafka.bootstrap, session_id)
    assert created.data["body_text"] == written.message(f"[card ····{written.card[-4:]}]").replace(
        written.password, "[secret ····]").replace(written.dni, "[DNI ····]")
    assert leaks(await raw_records(kafka.bootstrap, TICKETS_EVENTS), written.in_clear()) == []


async def test_the_workers_logs_carry_no_customer_address_or_phone_number_in_clear(pipeline_services, kafka, dovecot):
    phone = "+346" + "".join(secrets.choice("0123456789") for _ in range(8))
    address = f"cliente-{secrets.token_hex(4)}@example.com"
    async with Customers(pipeline_services["intake"].url, dovecot) as customers:
        session = await customers.open_chat()
        await customers.chat(session, f"Escribidme a {address} o llamad al {phone}", client_message_id="m1")
        await customers.sms(phone, f"Soy yo otra vez, mi correo es {address}")
        await customers.email(address, f"Mi móvil es {phone}", f"<{uuid.uuid4()}@example.com>")
    for reply_to in (session.session_id, phone, address):
        await created_for(kafka.bootstrap, reply_to)
    await asyncio.sleep(3)  # the acknowledgements go out (SMTP, the Twilio stand-in), and their log lines are written
    national = phone.removeprefix("+34")
    clear = [address, address.split("@")[0], phone, national, f"{national[:3]} {national[3:6]} {national[6:]}"]
    for name, service in pipeline_services.items():
        log = service.log_path.read_text(errors="replace")
        assert log.strip(), f"{name} wrote no log at all"
        found = [value for value in clear if value in log]
        assert found == [], f"{name}'s log has {found} in clear"
    assert re.search(r'"level": ?"info"', pipeline_services["intake"].log_path.read_text()), "info lines are logged"
