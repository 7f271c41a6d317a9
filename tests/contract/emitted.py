"""Events as deskstream's code emits them today, built without a broker.

The golden examples under `examples/<event type>/` were written from these by

    .venv/bin/python -m tests.contract.emitted          # writes the missing files only

and are then kept as they are: they stand for events already on the topics, which a
schema change must keep valid. Times are fixed so that a rerun gives the same bytes.

Every `data` dict comes from the pure function the service itself calls
(`web.contact_event_data`, `normalise`, `routing.triage`, `routing.route_triaged`, `routing.dispatch`,
`requests.acknowledgement`, `delivery.chat_message`, `delivery.receipt`, `render`,
`sms.contact_data`, `sms.consent_data`, `delivery.status_report`,
`deadletter_event`); only the event ids and envelopes are put together here as the
services' `app.py` handlers do.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import orjson

from deskstream.contract import SchemaViolation, default_contract
from deskstream.recipients import recipient_key
from deskstream.events import Event, EventDecodeError, stable_id
from deskstream.pipeline import deadletter_event
from deskstream.topics import AGENTS_EVENTS, CHAT_OUTBOUND, DEADLETTER, INTAKE_RAW, NOTIFY_RECEIPTS, NOTIFY_REQUESTS, ROUTER_DISPATCH, TICKETS_EVENTS
from services.intake import chat, sms, sms_webhook, web
from services.intake.customers import customer_id
from services.intake.normaliser import Thread, normalise
from services.notifier import delivery, requests
from services.notifier.templates import UnknownTemplate, render
from services.router import routing, sla
from services.router.roster import DEFAULT_ROSTER, load_roster
from services.router.triage import DEFAULT_RULES, Rules
from tests.dispatcher import Dispatcher
from tests.twilio_api import form_body, inbound_sms

EXAMPLES = Path(__file__).resolve().parent / "examples"
MEDIA_URL = "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/MM5555/Media/ME0001"

SESSION_ES = "q3V9xLk2Tz8wPm4Rb7Nc1HsY"  # the shape of chat.new_session_id(): token_urlsafe(18)
SESSION_EN = "Hx7_kP2mQ9vL4tR8nB3wZ6cJ"
SESSION_P1 = "a1B2c3D4e5F6g7H8i9J0kLmN"


@dataclass(frozen=True, slots=True)
class Emitted:
    """One event as a service sends it: the topic, the record key and the event."""

    name: str
    topic: str
    key: str | None
    event: Event

    @property
    def type(self) -> str:
        return self.event.type


class Clock:
    """RFC 3339 timestamps, a few seconds apart, as `deskstream.events.utcnow` formats them."""

    def __init__(self, start: str = "2026-11-23T09:41:07.250Z") -> None:
        self._now = datetime.fromisoformat(start.replace("Z", "+00:00"))

    def __call__(self) -> str:
        self._now += timedelta(seconds=1, milliseconds=137)
        return self._now.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pipeline_event(service: str, event_type: str, event_id: str, data: dict[str, Any], subject: str | None, time: str) -> Event:
    """What `Pipeline(app, service).event(...)` builds, at a fixed time."""
    return Event(type=event_type, source=f"deskstream/{service}", id=event_id, data=data, subject=subject, time=time)


# --- intake ---------------------------------------------------------------------------


def chat_contact(clock: Clock, name: str, session_id: str, client_message_id: str, text: str, customer: dict[str, Any] | None = None) -> Emitted:
    """services/intake/web.py post_message: the chat API body to a contact.received."""
    body: dict[str, Any] = {"session_id": session_id, "client_message_id": client_message_id, "text": text}
    if customer is not None:
        body["customer"] = customer
    message = chat.parse_message(body)
    now = clock()
    with mock.patch.object(web, "utcnow", lambda: now):
        data = web.contact_event_data(message, session_id, "ES")
    event = pipeline_event("intake", "contact.received", data["contact_id"], data, data["thread_key"], now)
    return Emitted(name, INTAKE_RAW, data["thread_key"], event)


def ticket_events(clock: Clock, contact: Emitted, thread: Thread, name: str) -> list[Emitted]:
    """services/intake/app.py turn_contacts_into_ticket_events."""
    return [
        Emitted(name, TICKETS_EVENTS, ticket_event.ticket_id,
                pipeline_event("intake", ticket_event.type, ticket_event.id, ticket_event.data, ticket_event.ticket_id, clock()))
        for ticket_event in normalise(contact.event.data, thread)
    ]


def sms_contact(clock: Clock, name: str, form: dict[str, str]) -> Emitted:
    """services/intake/sms_webhook.py receive: a Twilio webhook form to a contact.received."""
    message = sms.parse_inbound(form, "ES")
    data = sms.contact_data(message, customer_id(phone=message.number, fallback=message.thread_key), clock())
    event = pipeline_event("intake", "contact.received", data["contact_id"], data, data["thread_key"], data["received_at"])
    return Emitted(name, INTAKE_RAW, data["thread_key"], event)


def consent(clock: Clock, name: str, form: dict[str, str]) -> Emitted:
    """services/intake/sms_webhook.py receive: a keyword to consent.opted_out/opted_in."""
    message = sms.parse_inbound(form, "ES")
    kind, _ = message.keyword()
    data = sms.consent_data(message, kind, clock())
    event_type = sms_webhook.CONSENT_EVENTS[kind]
    return Emitted(name, NOTIFY_REQUESTS, recipient_key(data["recipient"]), pipeline_event(
        "intake", event_type, f"consent.{message.message_sid}", data, None, data["recorded_at"]))


# --- router ---------------------------------------------------------------------------


def triage_and_assign(clock: Clock, created: dict[str, Any], open_tickets: list[dict[str, Any]], name: str) -> list[Emitted]:
    """services/router/app.py triage_new_tickets then place_tickets_with_agents, from the
    default rules and roster; the first item is the dispatch record, then what the
    dispatcher publishes."""
    triaged = routing.triage(Rules.load(DEFAULT_RULES), created)
    routed = routing.route_triaged(load_roster(DEFAULT_ROSTER), triaged, open_tickets)
    ticket_id = created["ticket_id"]
    emitted = [Emitted(name, ROUTER_DISPATCH, "dispatch",
                       pipeline_event("router", "dispatch.ticket_triaged", f"{ticket_id}.triaged", triaged, ticket_id, clock())),
               Emitted(name, TICKETS_EVENTS, ticket_id,
                       pipeline_event("router", "ticket.classified", f"{ticket_id}.classified", routed.classified, ticket_id, clock()))]
    if routed.assignment is not None:
        emitted.append(Emitted(name, TICKETS_EVENTS, ticket_id, pipeline_event(
            "router", "ticket.assigned", routed.assignment.event_id, routed.assignment.data, ticket_id, clock())))
    return emitted


def resolve(clock: Clock, assigned: dict[str, Any], name: str) -> list[Emitted]:
    """services/router/web.py resolve (the agent API), then triage_new_tickets."""
    ticket_id = assigned["ticket_id"]
    resolved = {"ticket_id": ticket_id, "resolved_at": clock(), "resolved_by": assigned["agent_id"], "note": "Cargo duplicado devuelto."}
    event_id = f"{ticket_id}.resolved.{stable_id(assigned['agent_id'], 'idempotency-key-1', length=12)}"
    return [
        Emitted(name, TICKETS_EVENTS, ticket_id, pipeline_event("router", "ticket.resolved", event_id, resolved, ticket_id, resolved["resolved_at"])),
        Emitted(name, ROUTER_DISPATCH, "dispatch", pipeline_event(
            "router", "dispatch.ticket_closed", f"{event_id}.closed", {"ticket_id": ticket_id, "status": "resolved"}, ticket_id, clock())),
    ]


def goes_offline(clock: Clock, triaged: dict[str, Any], name: str) -> list[Emitted]:
    """services/router/web.py set_presence, then follow_agents and place_tickets_with_agents:
    the agent who took the ticket goes offline before answering it."""
    dispatcher = Dispatcher(load_roster(DEFAULT_ROSTER))
    placed = dispatcher.run("dispatch.ticket_triaged", triaged)
    agent_id = placed.assignments[0].data["agent_id"]
    changed_at = clock()
    presence = {"agent_id": agent_id, "presence": "offline", "changed_at": changed_at}
    event_id = f"{agent_id}.presence.{stable_id(agent_id, 'idempotency-key-2', length=12)}"
    forwarded = {"agent_id": agent_id, "presence": "offline"}
    command = pipeline_event("router", "dispatch.agent_changed", f"{event_id}.dispatch", forwarded, None, clock())
    outcome = dispatcher.run(command.type, forwarded)
    assert outcome.requeued, "the scenario needs a ticket to hand back"
    out = [Emitted(name, AGENTS_EVENTS, agent_id, pipeline_event("router", "agent.presence_changed", event_id, presence, agent_id, changed_at)),
           Emitted(name, ROUTER_DISPATCH, "dispatch", command)]
    for back in outcome.requeued:
        data = {**back, "requeued_at": command.time}
        out.append(Emitted(name, TICKETS_EVENTS, back["ticket_id"], pipeline_event(
            "router", "ticket.requeued", f"{back['ticket_id']}.requeued.{back['requeues']}", data, back["ticket_id"], clock())))
    return out


def misses_its_target(clock: Clock, triaged: dict[str, Any], name: str) -> list[Emitted]:
    """services/router/app.py tick, then place_tickets_with_agents on it: a first-line
    ticket unanswered past its first-response target."""
    dispatcher = Dispatcher(load_roster(DEFAULT_ROSTER))
    dispatcher.run("dispatch.ticket_triaged", triaged)
    ticket = dispatcher.tickets[triaged["ticket_id"]]
    assert ticket["tier"] == "L1", "the scenario needs a first-line ticket"
    due = sla.due(ticket, sla.FIRST_RESPONSE, routing.DEFAULT_TARGETS) + timedelta(minutes=1)
    now = sla.format_time(due)
    tick = pipeline_event("router", "dispatch.tick", f"tick.router.{now}", {"at": now}, None, now)
    outcome = dispatcher.run(tick.type, tick.data, due)
    out = [Emitted(name, ROUTER_DISPATCH, "dispatch", tick)]
    for breach in outcome.breaches:
        data = {"ticket_id": breach.ticket_id, "target": breach.target, "priority": breach.priority, "due_at": breach.due_at,
                "breached_at": tick.time, "agent_id": breach.agent_id}
        out.append(Emitted(name, TICKETS_EVENTS, breach.ticket_id, pipeline_event(
            "router", "ticket.sla_breached", f"{breach.ticket_id}.sla_breached.{breach.target}", data, breach.ticket_id, clock())))
    for raised in outcome.escalations:
        out.append(Emitted(name, TICKETS_EVENTS, raised["ticket_id"], pipeline_event(
            "router", "ticket.escalated", f"{raised['ticket_id']}.escalated.{raised['escalations']}", {**raised, "escalated_at": tick.time},
            raised["ticket_id"], clock())))
    for back in outcome.requeued:
        out.append(Emitted(f"{name}-requeued", TICKETS_EVENTS, back["ticket_id"], pipeline_event(
            "router", "ticket.requeued", f"{back['ticket_id']}.requeued.{back['requeues']}", {**back, "requeued_at": tick.time},
            back["ticket_id"], clock())))
    assert outcome.breaches and outcome.escalations and outcome.requeued
    return out


def reopens(clock: Clock, resolved: dict[str, Any], name: str) -> list[Emitted]:
    """services/router/web.py reopen (the agent API), then triage_new_tickets."""
    ticket_id, agent_id = resolved["ticket_id"], resolved["resolved_by"]
    data = {"ticket_id": ticket_id, "reopened_at": clock(), "reopened_by": agent_id,
            "reason": "The customer was charged twice again this month."}
    event_id = f"{ticket_id}.reopened.{stable_id(agent_id, 'idempotency-key-5', length=12)}"
    again = {"ticket_id": ticket_id, "reopened_at": data["reopened_at"]}
    return [
        Emitted(name, TICKETS_EVENTS, ticket_id, pipeline_event("router", "ticket.reopened", event_id, data, ticket_id, data["reopened_at"])),
        Emitted(name, ROUTER_DISPATCH, "dispatch", pipeline_event("router", "dispatch.ticket_reopened", f"{event_id}.reopened", again, ticket_id, clock())),
    ]


def accepts(clock: Clock, ticket_id: str, agent_id: str, name: str) -> Emitted:
    """services/router/web.py accept (the agent API): an agent takes a waiting ticket."""
    event_id = f"{ticket_id}.accept.{stable_id(agent_id, 'idempotency-key-6', length=12)}"
    data = {"ticket_id": ticket_id, "agent_id": agent_id}
    return Emitted(name, ROUTER_DISPATCH, "dispatch", pipeline_event("router", "dispatch.accept_requested", event_id, data, ticket_id, clock()))


def notes(clock: Clock, assigned: dict[str, Any], text: str, name: str) -> Emitted:
    """services/router/web.py note (the agent API): an internal note, for agents only."""
    ticket_id, agent_id = assigned["ticket_id"], assigned["agent_id"]
    note_id = stable_id(agent_id, ticket_id, "note", "idempotency-key-7", length=12)
    data = {"ticket_id": ticket_id, "note_id": note_id, "agent_id": agent_id, "agent_name": assigned["agent_name"],
            "text": text, "added_at": clock()}
    return Emitted(name, TICKETS_EVENTS, ticket_id, pipeline_event("router", "ticket.note_added", f"{ticket_id}.note.{note_id}",
                                                                   data, ticket_id, data["added_at"]))


def reassigns(clock: Clock, triaged: dict[str, Any], to: str, name: str) -> list[Emitted]:
    """services/router/web.py reassign (the agent API), then place_tickets_with_agents: a
    supervisor moves the ticket to a named agent."""
    dispatcher = Dispatcher(load_roster(DEFAULT_ROSTER))
    dispatcher.run("dispatch.ticket_triaged", triaged)
    ticket_id = triaged["ticket_id"]
    data = {"ticket_id": ticket_id, "agent_id": to, "requested_by": "sam", "reason": "Ben already handled this customer's last invoice."}
    command = pipeline_event("router", "dispatch.reassign_requested", f"{ticket_id}.reassign.{stable_id('sam', 'idempotency-key-8', length=12)}",
                             data, ticket_id, clock())
    [given] = dispatcher.run(command.type, data).assignments
    return [Emitted(name, ROUTER_DISPATCH, "dispatch", command),
            Emitted(name, TICKETS_EVENTS, ticket_id, pipeline_event("router", "ticket.assigned", given.event_id, given.data, ticket_id, clock()))]


def asks_to_escalate(clock: Clock, ticket_id: str, name: str) -> Emitted:
    """services/router/web.py escalate (the agent API)."""
    data = {"ticket_id": ticket_id, "agent_id": "lucia", "reason": "Hace falta un técnico de campo: la ONT parece averiada."}
    event_id = f"{ticket_id}.escalation.{stable_id('lucia', 'idempotency-key-4', length=12)}"
    return Emitted(name, ROUTER_DISPATCH, "dispatch", pipeline_event("router", "dispatch.escalation_requested", event_id, data, ticket_id, clock()))


def agent_replies(clock: Clock, assigned: dict[str, Any], text: str, name: str) -> list[Emitted]:
    """services/router/web.py reply (the agent API), then triage_new_tickets."""
    ticket_id, agent_id = assigned["ticket_id"], assigned["agent_id"]
    reply_id = stable_id(agent_id, ticket_id, "idempotency-key-3", length=12)
    data = {"ticket_id": ticket_id, "reply_id": reply_id, "agent_id": agent_id, "agent_name": assigned["agent_name"],
            "text": text, "sent_at": clock()}
    event_id = f"{ticket_id}.reply.{reply_id}"
    return [
        Emitted(name, TICKETS_EVENTS, ticket_id, pipeline_event("router", "ticket.reply_sent", event_id, data, ticket_id, data["sent_at"])),
        Emitted(name, ROUTER_DISPATCH, "dispatch", pipeline_event(
            "router", "dispatch.ticket_answered", f"{event_id}.answered", {"ticket_id": ticket_id, "answered_at": data["sent_at"]},
            ticket_id, clock())),
    ]


# --- notifier -------------------------------------------------------------------------


def acknowledge_reply(clock: Clock, created: dict[str, Any], replied: dict[str, Any], name: str) -> Emitted:
    """services/notifier/app.py request_acknowledgements, for a ticket.reply_sent."""
    request = requests.agent_reply(replied, requests.remember_contact(created))
    return Emitted(name, NOTIFY_REQUESTS, recipient_key(request["recipient"]),
                   pipeline_event("notifier", "notify.requested", request["request_id"], request, request["ticket_id"], clock()))


def acknowledge(clock: Clock, created: dict[str, Any], classified: dict[str, Any], name: str) -> Emitted:
    """services/notifier/app.py request_acknowledgements."""
    request = requests.acknowledgement(classified, requests.remember_contact(created))
    key = recipient_key(request["recipient"])
    return Emitted(name, NOTIFY_REQUESTS, key,
                   pipeline_event("notifier", "notify.requested", request["request_id"], request, request["ticket_id"], clock()))


def deliver(clock: Clock, requested: Emitted, name: str) -> list[Emitted]:
    """services/notifier/app.py send_requested_messages."""
    request = requested.event.data
    recipient = request["recipient"]
    emitted = []
    if recipient["channel"] == "chat":
        text = render(request["template"], request["language"], request["params"])
        message = delivery.chat_message(request, text, clock())
        emitted.append(Emitted(name, CHAT_OUTBOUND, recipient["address"], pipeline_event(
            "notifier", "chat.message", request["request_id"], message, request["ticket_id"], message["sent_at"])))
        status, detail = "sent", "queued for the chat session"
    else:
        status, detail = "failed", f"no sender for channel {recipient['channel']} yet"
    receipt = delivery.receipt(request, status, detail, clock())
    emitted.append(Emitted(name, NOTIFY_RECEIPTS, recipient_key(recipient), pipeline_event(
        "notifier", f"notify.{status}", f"{request['request_id']}.{status}", receipt, request["ticket_id"], receipt["attempted_at"])))
    return emitted


def deliver_by_phone(clock: Clock, requested: Emitted, sid: str, name: str) -> list[Emitted]:
    """services/notifier/app.py send_to_phone, when Twilio takes the message, and
    services/notifier/status_webhook.py for its delivery report."""
    request = requested.event.data
    receipt = delivery.receipt(request, "sent", f"Twilio accepted {sid} (queued, 1 segment(s), attempt 1)", clock(), sid)
    key = recipient_key(request["recipient"])
    callback = {"MessageSid": sid, "MessageStatus": "delivered", "To": request["recipient"]["address"]}
    report = delivery.status_report({"request": request["request_id"], "ticket": request["ticket_id"]}, callback, clock())
    return [
        Emitted(name, NOTIFY_RECEIPTS, key, pipeline_event(
            "notifier", "notify.sent", f"{request['request_id']}.sent", receipt, request["ticket_id"], receipt["attempted_at"])),
        Emitted(name, NOTIFY_RECEIPTS, key, pipeline_event(
            "notifier", "notify.status_reported", f"{request['request_id']}.status.delivered", report, request["ticket_id"], report["reported_at"])),
    ]


# --- every service: deadletter --------------------------------------------------------


def deadletter(clock: Clock, service: str, origin: str, reason: str, raw: bytes, key: bytes | None, name: str) -> Emitted:
    """deskstream/processor.py Processor._dead_letter, with deskstream/pipeline.py deadletter_event."""
    now = clock()
    with mock.patch("deskstream.pipeline.utcnow", lambda: now):
        event = deadletter_event(f"deskstream/{service}", origin, reason, raw, key)
    return Emitted(name, DEADLETTER, origin, dataclasses.replace(event, time=now))


def decode_reason(raw: bytes) -> str:
    """The reason a Processor gives for bytes that are not a usable event."""
    try:
        default_contract().validate(Event.decode(raw).to_dict())
    except (EventDecodeError, SchemaViolation) as error:
        return str(error)
    raise AssertionError("expected the bytes to be refused")


# --- the scenarios --------------------------------------------------------------------


def scenarios() -> list[Emitted]:
    clock = Clock()
    out: list[Emitted] = []

    # A Spanish chat: network trouble, answered by an L1 agent; then the customer writes again.
    thread = Thread()
    first = chat_contact(clock, "chat-es", SESSION_ES, "m-0001",
                         "Hola, no tengo conexión a internet desde ayer por la tarde.\n"
                         "Ya reinicié el router dos veces y sigue igual. ¿Qué más puedo hacer?",
                         {"name": "Marta López", "email": "marta.lopez@example.es", "language": "es-MX"})
    out.append(first)
    [created_es] = ticket_events(clock, first, thread, "chat-es")
    out.append(created_es)
    routed_es = triage_and_assign(clock, created_es.event.data, [], "chat-es-network")
    out += routed_es
    requested_es = acknowledge(clock, created_es.event.data, routed_es[1].event.data, "chat-es")
    out.append(requested_es)
    out += deliver(clock, requested_es, "chat-es")
    out += goes_offline(clock, routed_es[0].event.data, "chat-es-agent-offline")
    replied = agent_replies(clock, routed_es[2].event.data, "Hola Marta: la avería de fibra de tu zona ya está resuelta. Reinicia el router, por favor.", "chat-es-reply")
    out += replied
    out.append(notes(clock, routed_es[2].event.data, "Avería de fibra en su zona (incidencia de ayer); <b>no</b> prometer hora.", "chat-es-note"))
    reply_request = acknowledge_reply(clock, created_es.event.data, replied[0].event.data, "chat-es-reply")
    out.append(reply_request)
    out += deliver(clock, reply_request, "chat-es-reply")
    again = chat_contact(clock, "chat-es-again", SESSION_ES, "m-0002", "Sigo sin conexión… ¿alguien me puede ayudar? Ya van dos horas.")
    out.append(again)
    out += ticket_events(clock, again, thread, "chat-es-again")

    # An English chat without a stated language: billing, P2.
    english = chat_contact(clock, "chat-en", SESSION_EN, "client-7f3a",
                           "Hi, I was charged twice for my subscription this month. Can you refund one of the payments?",
                           {"name": "John Smith", "email": "", "phone": "+44 20 7946 0958"})
    out.append(english)
    [created_en] = ticket_events(clock, english, Thread(), "chat-en")
    out.append(created_en)
    routed_en = triage_and_assign(clock, created_en.event.data, [], "chat-en-billing")
    out += routed_en
    requested_en = acknowledge(clock, created_en.event.data, routed_en[1].event.data, "chat-en")
    out.append(requested_en)
    out += deliver(clock, requested_en, "chat-en")
    resolved_en = resolve(clock, routed_en[-1].event.data, "chat-en-resolved")
    out += resolved_en
    out += reassigns(clock, routed_en[0].event.data, "ben", "chat-en-reassigned")
    out += reopens(clock, resolved_en[0].event.data, "chat-en-reopened")

    # A Spanish P1 that needs L2 while the only L2 network agent who speaks Spanish is full: queued.
    p1 = chat_contact(clock, "chat-es-p1", SESSION_P1, "1",
                      "¡Toda la oficina está sin internet! Nadie puede trabajar desde las 9:00, "
                      "la fibra parece caída.", {"name": "Ángel Peña"})
    out.append(p1)
    [created_p1] = ticket_events(clock, p1, Thread(), "chat-es-p1")
    out.append(created_p1)
    busy = [{"ticket_id": f"T-BUSY000{n}", "status": "assigned", "agent_id": "omar", "priority": "P2",
             "received_at": "2026-11-23T08:00:00.000Z"} for n in range(2, 7)]
    queued = [{"ticket_id": "T-QUEUED22", "status": "queued", "agent_id": None, "priority": "P1",
               "received_at": "2026-11-23T09:00:00.000Z"}]
    routed_p1 = triage_and_assign(clock, created_p1.event.data, busy + queued, "chat-es-p1-queued")
    out += routed_p1
    requested_p1 = acknowledge(clock, created_p1.event.data, routed_p1[1].event.data, "chat-es-p1")
    out.append(requested_p1)
    out += deliver(clock, requested_p1, "chat-es-p1")
    out.append(accepts(clock, created_p1.event.data["ticket_id"], "omar", "chat-es-p1-accepted"))

    # An e-mail ticket (no intake channel produces these yet; the notifier's failure path does
    # exist): the notifier has no e-mail sender, so the receipt is notify.failed.
    email_contact = {
        "contact_id": "email-CAF3x9.mail.example.es",
        "channel": "email",
        "thread_key": "email:ines.nunez@example.es:factura-octubre",
        "received_at": clock(),
        "customer": {"id": "cus-ines", "name": "Inés Núñez", "email": "ines.nunez@example.es"},
        "subject": "Factura duplicada de octubre",
        "body_text": "Buenos días: me han cobrado dos veces la factura de octubre. ¿Podéis devolverme uno de los cargos?",
        "reply_to": {"channel": "email", "address": "ines.nunez@example.es"},
    }
    [created_email] = (
        Emitted("email-es", TICKETS_EVENTS, e.ticket_id, pipeline_event("intake", e.type, e.id, e.data, e.ticket_id, clock()))
        for e in normalise(email_contact, Thread())
    )
    routed_email = triage_and_assign(clock, created_email.event.data, [], "email-es")
    requested_email = acknowledge(clock, created_email.event.data, routed_email[1].event.data, "email-es")
    out.append(requested_email)
    out += deliver(clock, requested_email, "email-es")

    # An MMS in Spanish, then a WhatsApp message; the SMS customer is acknowledged by SMS
    # (Twilio reports it delivered), then replies BAJA and START.
    sms_thread = Thread()
    mms = sms_contact(clock, "sms-es", inbound_sms(sender="+34 612 345 678", body="El router parpadea en rojo y no hay internet",
                                                    sid="MM" + "5" * 32, media=[(MEDIA_URL, "image/jpeg")]))
    out.append(mms)
    [created_sms] = ticket_events(clock, mms, sms_thread, "sms-es")
    out.append(created_sms)
    routed_sms = triage_and_assign(clock, created_sms.event.data, [], "sms-es")
    requested_sms = acknowledge(clock, created_sms.event.data, routed_sms[1].event.data, "sms-es")
    out.append(requested_sms)
    out += deliver_by_phone(clock, requested_sms, "SM" + "6" * 32, "sms-es")
    out += misses_its_target(clock, routed_sms[0].event.data, "sms-es-sla")
    out.append(asks_to_escalate(clock, routed_sms[0].event.data["ticket_id"], "sms-es-escalation"))
    whatsapp = sms_contact(clock, "whatsapp-es", inbound_sms(sender="whatsapp:+34612345678", body="¿Hay alguna avería en Málaga?",
                                                             sid="SM" + "7" * 32, profile_name="Lucía"))
    out.append(whatsapp)
    out += ticket_events(clock, whatsapp, Thread(), "whatsapp-es")
    out.append(consent(clock, "sms-es-baja", inbound_sms(sender="+34612345678", body="BAJA", sid="SM" + "8" * 32)))
    out.append(consent(clock, "sms-es-alta", inbound_sms(sender="+34612345678", body="alta", sid="SM" + "9" * 32)))
    opted_out = dataclasses.replace(requested_sms.event, data={**requested_sms.event.data, "request_id": "T-ABCDEFGH.reply.1"})
    receipt = delivery.receipt(opted_out.data, "failed", "not sent: the recipient opted out (BAJA)", clock())
    out.append(Emitted("sms-es-opted-out", NOTIFY_RECEIPTS, requested_sms.key, pipeline_event(
        "notifier", "notify.failed", f"{receipt['request_id']}.failed", receipt, receipt["ticket_id"], receipt["attempted_at"])))
    empty_message = inbound_sms(sender="+34612345678", body="", sid="SM" + "a" * 32)
    try:
        sms.parse_inbound(empty_message, "ES")
    except sms.SmsRejected as error:
        out.append(deadletter(clock, "intake", sms_webhook.DEADLETTER_ORIGIN, str(error), form_body(empty_message), None, "sms-empty"))

    # Dead letters, one per service, from the reasons their Pipeline gives.
    truncated = '{"specversion": "1.0", "type": "contact.received", "data": {"body_text": "Hola, ayúdame'.encode()
    out.append(deadletter(clock, "intake", INTAKE_RAW, decode_reason(truncated), truncated, b"chat:" + SESSION_ES.encode(), "intake-not-json"))
    wrong_language = dataclasses.replace(
        created_es.event, data={**created_es.event.data, "customer": {**created_es.event.data["customer"], "language": "fr"}})
    raw = wrong_language.encode()
    out.append(deadletter(clock, "router", TICKETS_EVENTS, decode_reason(raw), raw, created_es.key.encode(), "router-schema-violation"))
    try:
        render("encuesta", "es", {})
    except UnknownTemplate as error:
        reason = f"processing failed: {type(error).__name__}: {error}"
    bad_request = dataclasses.replace(requested_es.event, data={**requested_es.event.data, "template": "encuesta"})
    out.append(deadletter(clock, "notifier", NOTIFY_REQUESTS, reason, bad_request.encode(), requested_es.key.encode(), "notifier-processing-failed"))
    out.append(deadletter(clock, "feedback", TICKETS_EVENTS, decode_reason(b"[]"), b"[]", None, "feedback-no-key"))
    return out


def write_examples(directory: Path = EXAMPLES, overwrite: bool = False) -> list[Path]:
    """Write each scenario event as `<directory>/<type>/<name>.json`; returns the paths written."""
    written = []
    for emitted in scenarios():
        path = directory / emitted.type / f"{emitted.name}.json"
        if path.exists() and not overwrite:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(emitted.event.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_examples(overwrite="--overwrite" in sys.argv[1:]):
        print(written_path.relative_to(Path.cwd()) if written_path.is_relative_to(Path.cwd()) else written_path)
