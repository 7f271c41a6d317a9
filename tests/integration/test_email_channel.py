"""E-mail through the real pipeline: mail appended to a Dovecot mailbox becomes a
ticket with the right text, language and thread; the customer gets a threaded
acknowledgement on the SMTP side; noise opens nothing; a crash at either edge of
publication makes exactly one ticket."""
from __future__ import annotations

import asyncio
import email
import time
import uuid
from email import policy
from email.message import EmailMessage

import pytest

from deskstream.events import Event
from deskstream.topics import DEADLETTER, TICKETS_EVENTS
from tests.harness import read_topic

pytestmark = pytest.mark.integration

SUPPORT = "soporte@deskstream.test"


def mail(sender: str, subject: str, body: str, *, message_id: str | None = None, in_reply_to: str | None = None,
         references: list[str] | None = None, headers: dict[str, str] | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = SUPPORT
    message["Subject"] = subject
    if message_id:
        message["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        message["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        message["References"] = " ".join(f"<{r}>" for r in references)
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return message.as_bytes(policy=policy.SMTP)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@cliente.example.es"


async def ticket_events_of(bootstrap: str, predicate, want: int = 1, timeout: float = 60) -> list[Event]:
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in await read_topic(bootstrap, TICKETS_EVENTS, settle_ms=500) if predicate(e)]
        if len(found) >= want or time.monotonic() > deadline:
            return found
        await asyncio.sleep(1)


def about_message(message_id: str):
    return lambda e: (e.data.get("email") or {}).get("message_id") == message_id


async def smtp_answer_to(smtp_server, address: str, timeout: float = 60) -> email.message.EmailMessage:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for _, recipients, raw in list(smtp_server.messages):
            if address in recipients:
                return email.message_from_bytes(raw, policy=policy.default)
        await asyncio.sleep(0.5)
    raise AssertionError(f"no mail to {address}")


async def test_a_mail_becomes_a_ticket_and_is_answered_on_its_thread(pipeline_services, kafka, dovecot, smtp_server):
    customer = f"marta.{uuid.uuid4().hex[:6]}@cliente.example.es"
    first = unique("m1")
    dovecot.append(mail(f"Marta López <{customer}>", "Sin conexión a internet",
                        "Hola, no tengo conexión desde ayer por la tarde.\nYa reinicié el router dos veces.\n\n-- \nMarta",
                        message_id=first))

    [created] = await ticket_events_of(kafka.bootstrap, lambda e: e.type == "ticket.created" and about_message(first)(e))
    ticket_id = created.data["ticket_id"]
    assert created.data["body_text"] == "Hola, no tengo conexión desde ayer por la tarde.\nYa reinicié el router dos veces."
    assert created.data["customer"]["language"] == "es" and created.data["customer"]["email"] == customer
    assert created.data["reply_to"] == {"channel": "email", "address": customer}
    assert created.data["subject"] == "Sin conexión a internet"

    answer = await smtp_answer_to(smtp_server, customer)
    assert answer["In-Reply-To"] == f"<{first}>"
    assert f"<{first}>" in answer["References"]
    assert answer["Subject"] == f"Re: Sin conexión a internet [#{ticket_id}]"
    assert answer["Auto-Submitted"] == "auto-replied"
    assert answer["Message-ID"].startswith(f"<{ticket_id}.")
    text = answer.get_body(("plain",)).get_content()
    assert ticket_id in text and text.startswith("Hola Marta")
    assert answer.get_body(("html",)) is not None

    # The customer answers our acknowledgement: the same ticket, no new one.
    reply = unique("m2")
    dovecot.append(mail(f"Marta López <{customer}>", answer["Subject"], "Sigue sin funcionar.\n\nEl lun, Soporte escribió:\n> Hola Marta",
                        message_id=reply, in_reply_to=answer["Message-ID"].strip("<>"),
                        references=[first, answer["Message-ID"].strip("<>")]))
    [joined] = await ticket_events_of(kafka.bootstrap, about_message(reply))
    assert (joined.type, joined.data["ticket_id"], joined.data["body_text"]) == ("ticket.message_received", ticket_id, "Sigue sin funcionar.")

    # A reply that lost its References still finds the ticket by the subject tag.
    tagged = unique("m3")
    dovecot.append(mail(customer, f"RE: algo [#{ticket_id}]", "¿Alguna novedad?", message_id=tagged))
    [joined] = await ticket_events_of(kafka.bootstrap, about_message(tagged))
    assert (joined.type, joined.data["ticket_id"]) == ("ticket.message_received", ticket_id)

    # A new subject from the same customer is a new ticket.
    other = unique("m4")
    dovecot.append(mail(customer, "Factura duplicada", "Me han cobrado dos veces.", message_id=other))
    [new] = await ticket_events_of(kafka.bootstrap, about_message(other))
    assert new.type == "ticket.created" and new.data["ticket_id"] != ticket_id
    assert new.data["customer"]["id"] == created.data["customer"]["id"]


async def test_auto_replies_bounces_and_our_own_mail_open_nothing(pipeline_services, kafka, dovecot, smtp_server):
    noise = {
        unique("ooo"): {"Auto-Submitted": "auto-replied"},
        unique("autoreply"): {"X-Autoreply": "yes"},
        unique("bulk"): {"Precedence": "bulk"},
        unique("own"): {"X-Deskstream-Ticket": "T-AAAAAAAA"},
    }
    sender = f"robot.{uuid.uuid4().hex[:6]}@cliente.example.es"
    for message_id, headers in noise.items():
        dovecot.append(mail(sender, "Fuera de la oficina", "Estaré fuera hasta el lunes.", message_id=message_id, headers=headers))
    marker = unique("after-noise")
    dovecot.append(mail(sender, "Una pregunta de verdad", "¿Cómo cambio mi contraseña?", message_id=marker))

    await ticket_events_of(kafka.bootstrap, about_message(marker))  # taken after the noise, in UID order
    events = await read_topic(kafka.bootstrap, TICKETS_EVENTS)
    assert not [e for e in events if (e.data.get("email") or {}).get("message_id") in noise]
    taken = [flags for flags in dovecot.flags().values() if "$DeskstreamTaken" in flags]
    assert len(taken) >= len(noise) + 1
    answered = [m for m in smtp_server.messages if sender in m[1]]
    assert len(answered) <= 1  # only the real question may be answered


async def test_an_unparseable_mail_is_quarantined_with_its_reason(pipeline_services, kafka, dovecot):
    garbage = f"X-Junk: {uuid.uuid4().hex}\r\n\r\nno headers that make a mail\r\n".encode()
    dovecot.append(garbage)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        quarantined = [dovecot.fetch("Deskstream-Quarantine", uid) for uid in dovecot.uids("Deskstream-Quarantine")]
        if any(garbage.strip() in raw.replace(b"\n", b"\r\n") or garbage.strip() in raw for raw in quarantined):
            break
        await asyncio.sleep(1)
    else:
        raise AssertionError("the unparseable mail never reached the quarantine folder")
    letters = [e for e in await read_topic(kafka.bootstrap, DEADLETTER) if e.data["origin"] == "imap:INBOX"]
    assert any("unparseable e-mail" in e.data["reason"] for e in letters)


@pytest.mark.parametrize("crash_at", ["after-fetch", "after-publish"])
async def test_an_intake_killed_around_publication_makes_exactly_one_ticket(pipeline_services, kafka, dovecot, crash_at, tmp_path):
    intake = pipeline_services["intake"]
    marker = tmp_path / "crashed"
    intake.stop()
    intake.env.update(IMAP_TEST_CRASH_AT=crash_at, IMAP_TEST_CRASH_MARKER=str(marker))
    try:
        intake.start()
        message_id = unique(f"crash-{crash_at}")
        dovecot.append(mail(f"crash.{uuid.uuid4().hex[:6]}@cliente.example.es", "Se cortó", "La línea se cae cada hora.",
                            message_id=message_id))
        code = await asyncio.to_thread(intake.process.wait, 60)
        assert code == 137 and marker.read_text() == crash_at, intake.log_tail()
    finally:
        intake.env.pop("IMAP_TEST_CRASH_AT", None)
        intake.env.pop("IMAP_TEST_CRASH_MARKER", None)
        intake.start()
    await asyncio.to_thread(intake.wait_ready, 90)
    events = await ticket_events_of(kafka.bootstrap, about_message(message_id))
    await asyncio.sleep(3)  # give a second ticket, were there one, the time to appear
    events = [e for e in await read_topic(kafka.bootstrap, TICKETS_EVENTS) if about_message(message_id)(e)]
    assert [e.type for e in events] == ["ticket.created"], events


async def test_intake_reconnects_after_the_mail_server_restarts(pipeline_services, kafka, dovecot):
    dovecot.restart()  # every IMAP connection dropped (in this thread: the server dies with the thread that starts it)
    message_id = unique("after-restart")
    dovecot.append(mail(f"reconnect.{uuid.uuid4().hex[:6]}@cliente.example.es", "Tras el reinicio", "¿Me leéis?",
                        message_id=message_id))
    [created] = await ticket_events_of(kafka.bootstrap, about_message(message_id), timeout=90)
    assert created.type == "ticket.created" and created.data["body_text"] == "¿Me leéis?"
