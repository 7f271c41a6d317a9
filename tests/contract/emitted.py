"""Events as deskstream's code emits them today, built without a broker.

The golden examples under `examples/<event type>/` were written from these by

    .venv/bin/python -m tests.contract.emitted          # writes the missing files only

and are then kept as they are: they stand for events already on the topics, which a
schema change must keep valid. Times are fixed so that a rerun gives the same bytes.

Every `data` dict comes from the pure function the service itself calls
(`web.contact_event_data`, `normalise`, `routing.triage`, `routing.route_triaged`, `routing.dispatch`,
`requests.acknowledgement`, `requests.linked`, `delivery.chat_message`, `delivery.receipt`,
`render`, `channels.text_of`, `sms.contact_data`, `sms.consent_data`, `delivery.status_report`,
`incident_requests.declared/updated/resolved/subscriptions/unsubscription`,
`incidents.fold/audience/notice/member`, `surges.observe`, `attempts.finished`,
`surveys.survey_id/due_at/skip_reason/answer_open`, `SurveyLinks.url/read`,
`survey_pages.clean_comment`, `normaliser.survey_opened`, `deadletter_event`); only the
event ids and envelopes are put together here as the services' handlers do (`app.py`,
the notifier's `outbox.py`, `fanout.py` and `incidents_api.py`; feedback's `app.py`
cannot be imported, as it reads its settings from the environment, so its handlers and
`survey_request` are rebuilt below from the same parts).
"""
from __future__ import annotations

import asyncio
import dataclasses
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import orjson
from itsdangerous import TimestampSigner

from deskstream.contract import SchemaViolation, default_contract
from deskstream.erasure import event_id
from deskstream.recipients import recipient_key
from deskstream.events import Event, EventDecodeError, parse_timestamp, stable_id, timestamp
from deskstream.pipeline import deadletter_event
from deskstream.topics import (AGENTS_EVENTS, CHAT_OUTBOUND, DEADLETTER, FEEDBACK_SURVEYS, INCIDENTS_EVENTS, INTAKE_RAW, NOTIFY_RECEIPTS,
                               NOTIFY_REQUESTS, ROUTER_DISPATCH, SURGE_WATCH, TICKETS_EVENTS)
from services.feedback import metrics, surveys
from services.feedback.links import SurveyLinks
from services.feedback.survey_pages import clean_comment
from services.feedback.surveys import SurveyRules
from services.intake import chat, sms, sms_webhook, web
from services.intake import erasure as intake_erasure
from deskstream.customers import customer_id
from services.intake.normaliser import Thread, normalise, survey_opened
from services.notifier import attempts, delivery, incident_requests, incidents, requests, surges
from services.notifier.attempts import RetryPolicy
from services.notifier.channels import Channels, text_of
from services.notifier.email import compose
from services.notifier import erasure as notifier_erasure
from services.notifier.erasure_api import erasure_from
from services.notifier.incidents_api import operator
from services.notifier.outcomes import Outcome, brief
from services.notifier.surges import SurgeRule
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
    """services/notifier/outbox.py: a chat message is pushed (Channels.pushed, Outbox._push);
    any other channel, with no sender configured, fails (Channels.send)."""
    request = requested.event.data
    recipient = request["recipient"]
    if recipient["channel"] == "chat":
        return push(clock, request, name)
    return [receipt_of(request, attempts.FAILED, f"no sender for channel {recipient['channel']} is configured", clock(), name)]


def push(clock: Clock, request: dict[str, Any], name: str) -> list[Emitted]:
    """services/notifier/outbox.py Outbox._push with Channels.pushed: the chat.message and
    its notify.sent, in one transaction, at one moment."""
    at = clock()
    message = delivery.chat_message(request, text_of(request), at)
    return [Emitted(name, CHAT_OUTBOUND, request["recipient"]["address"], pipeline_event(
                "notifier", "chat.message", request["request_id"], message, request.get("ticket_id"), at)),
            receipt_of(request, attempts.SENT, "queued for the chat session", at, name)]


def receipt_of(request: dict[str, Any], status: str, detail: str, at: str, name: str, provider_message_id: str | None = None) -> Emitted:
    """services/notifier/outbox.py Outbox.receipt."""
    data = delivery.receipt(request, status, detail, at, provider_message_id)
    event_type = "notify.sent" if status == attempts.SENT else "notify.failed"
    return Emitted(name, NOTIFY_RECEIPTS, recipient_key(request["recipient"]), pipeline_event(
        "notifier", event_type, f"{request['request_id']}.{status}", data, request.get("ticket_id"), at))


def deliver_by_phone(clock: Clock, requested: Emitted, sid: str, name: str) -> list[Emitted]:
    """services/notifier/outbox.py, when Twilio takes the message, and
    services/notifier/status_webhook.py for its delivery report."""
    request = requested.event.data
    receipt = receipt_of(request, attempts.SENT, f"Twilio accepted {sid} (queued, 1 segment(s), attempt 1)", clock(), name, sid)
    key = recipient_key(request["recipient"])
    callback = {"MessageSid": sid, "MessageStatus": "delivered", "To": request["recipient"]["address"]}
    report = delivery.status_report({"request": request["request_id"], "ticket": request["ticket_id"]}, callback, clock())
    return [
        receipt,
        Emitted(name, NOTIFY_RECEIPTS, key, pipeline_event(
            "notifier", "notify.status_reported", f"{request['request_id']}.status.delivered", report, request["ticket_id"], report["reported_at"])),
    ]


# --- notifier: incidents, subscriptions, surges ---------------------------------------------

OPS_BY = operator("example-ops-token")  # `ops:` and 8 hex digits, as the incident API names its caller
DEFAULT_TIMEZONE = "Europe/Madrid"  # NOTIFIER_DEFAULT_TIMEZONE
SURGE_RULE = SurgeRule(window_seconds=600, threshold=3)  # NOTIFIER_SURGE_WINDOW_MINUTES=10, NOTIFIER_SURGE_TICKETS=3
RETRY = RetryPolicy(max_attempts=4, backoff_seconds=0.5)  # the notifier's defaults
SESSION_OUTAGE = "Zr4_Wq8nK2pT6vX1mC9bH3sL"
SERVICE = "fibre-madrid"


def retry_key(*scope: str) -> str:
    """services/notifier/incidents_api.py retry_key: the Idempotency-Key, bound to the caller."""
    return "\x1f".join((OPS_BY, *scope))


def incident_published(name: str, event_type: str, data: dict[str, Any]) -> Emitted:
    """services/notifier/incidents_api.py declare, post_update and resolve."""
    incident_id = data["incident_id"]
    suffix = {"incident.declared": "declared", "incident.updated": data["update_id"], "incident.resolved": "resolved"}[event_type]
    return Emitted(name, INCIDENTS_EVENTS, incident_id,
                   pipeline_event("notifier", event_type, f"{incident_id}.{suffix}", data, incident_id, data["at"]))


def subscription_published(name: str, event_type: str, data: dict[str, Any]) -> Emitted:
    """services/notifier/incidents_api.py subscribe and unsubscribe."""
    event_id = incident_requests.subscription_event_id(event_type, data)
    return Emitted(name, INCIDENTS_EVENTS, incident_requests.subscription_key(data),
                   pipeline_event("notifier", event_type, event_id, data, data["service"], data["at"]))


class IncidentsHop:
    """The tables of services/notifier/app.py follow_incidents, and what fanout.py emits
    from them."""

    def __init__(self) -> None:
        self.incidents: dict[str, dict[str, Any]] = {}
        self.audience: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}

    def read(self, emitted: Emitted) -> dict[str, Any] | None:
        """follow_incidents: the incident to fan out, if this event changed one."""
        event_type, data = emitted.type, emitted.event.data
        if event_type in incidents.KINDS:
            changed = incidents.fold(self.incidents.get(data["incident_id"]), event_type, data)
            if changed is not None:
                self.incidents[data["incident_id"]] = changed
            return changed
        if event_type == "incident.ticket_linked":
            incident = self.incidents[data["incident_id"]]
            who = incidents.member(data["recipient"], data["language"], ticket_id=data["ticket_id"])
            self.audience[incidents.audience_key(data["incident_id"], data["recipient"])] = {
                **who, "told": incidents.latest(incident)["update_id"]}
        elif event_type == "subscription.added":
            self.subscriptions[f"{data['service']}|{recipient_key(data['recipient'])}"] = data
        elif event_type == "subscription.removed":
            del self.subscriptions[f"{data['service']}|{recipient_key(data['recipient'])}"]
        return None

    def fan_out(self, clock: Clock, incident: dict[str, Any], contacts: list[dict[str, Any]], names: dict[str, str]) -> list[Emitted]:
        """fanout.py Fanout._fan_out and _requests: one notice per affected recipient,
        named here by `names[recipient key]`."""
        incident_id, update_id = incident["incident_id"], incident["fanout"]["update_id"]
        told = [row for key, row in self.audience.items() if key.startswith(f"{incident_id}|")]
        out = []
        for who in incidents.audience(incident, contacts, self.subscriptions.values(), told):
            request = incidents.notice(incident, who)
            key = recipient_key(who["recipient"])
            out.append(Emitted(names[key], NOTIFY_REQUESTS, key, pipeline_event(
                "notifier", "notify.requested", request["request_id"], request, request.get("ticket_id"), clock())))
            self.audience[incidents.audience_key(incident_id, who["recipient"])] = {**who, "told": update_id}
        return out


def contact_of(created: Emitted, classified: Emitted) -> dict[str, Any]:
    """services/notifier/app.py request_acknowledgements: the `contacts` row of a classified ticket."""
    contact = requests.remember_contact(created.event.data, DEFAULT_TIMEZONE)
    return requests.classified(contact, classified.event.data)


def counted(contact: dict[str, Any], classified: Emitted) -> dict[str, Any]:
    """services/notifier/app.py request_acknowledgements: the surge.ticket_counted data."""
    return {"ticket_id": contact["ticket_id"], "skill": contact["skill"], "region": contact["region"], "at": classified.event.time}


def watch_for_surges(clock: Clock, table: dict[str, Any], data: dict[str, Any], name: str) -> list[Emitted]:
    """services/notifier/app.py watch_for_surges."""
    at = datetime.fromisoformat(data["at"].replace("Z", "+00:00"))
    out = []
    for key in surges.surge_keys(data.get("skill"), data.get("region")):
        state, surge = surges.observe(table.get(key), data["ticket_id"], at, SURGE_RULE)
        table[key] = state
        if surge:
            suspected = surges.suspicion(key, surge, state, SURGE_RULE, clock())
            out.append(Emitted(f"{name}-{suspected['dimension']}", INCIDENTS_EVENTS, suspected["suspicion_id"], pipeline_event(
                "notifier", "incident.suspected", suspected["suspicion_id"], suspected, None, suspected["detected_at"])))
    return out


def settled_after_a_crash(clock: Clock, request: dict[str, Any], name: str) -> Emitted:
    """services/notifier/outbox.py Outbox._settle: a claim found without an outcome after a
    restart; Channels.find cannot ask an SMTP server, so the e-mail is in doubt."""
    claimed_at = datetime.fromisoformat(clock().replace("Z", "+00:00"))
    record = attempts.claimed(attempts.pending(request, None), claimed_at, "example-claim")
    outcome = asyncio.run(Channels(None, None, None, None).find(request, claimed_at))  # type: ignore[arg-type]
    moment = datetime.fromisoformat(clock().replace("Z", "+00:00"))
    _, status, detail = attempts.finished(record, outcome, moment, RETRY)
    assert status == attempts.IN_DOUBT
    return receipt_of(request, status, detail, timestamp(moment), name)


def sent_by_email(clock: Clock, request: dict[str, Any], name: str) -> Emitted:
    """services/notifier/outbox.py Outbox._deliver with Channels.send for e-mail: the outcome
    SmtpPool.deliver gives when the server takes the message (its Message-ID is the
    receipt's provider_message_id)."""
    moment = datetime.fromisoformat(clock().replace("Z", "+00:00"))
    record = attempts.claimed(attempts.pending(request, None), moment, None)
    message = compose(request, text_of(request), from_address="support@example.com", from_name="Support", domain="example.com")
    message_id = message["Message-ID"]
    outcome = Outcome.sent(f"SMTP accepted {message_id}: {brief('2.0.0 Ok: queued as 4Xb2Lm0kQz', 100)}", message_id)
    _, status, detail = attempts.finished(record, outcome, moment, RETRY)
    return receipt_of(request, status, detail, timestamp(moment), name, outcome.provider_message_id)


def superseded(clock: Clock, older: dict[str, Any], newer: dict[str, Any], name: str) -> Emitted:
    """services/notifier/app.py replace_waiting_notice: a newer notice of the same slot
    replaces one still pending."""
    assert older["slot"] == newer["slot"]
    return receipt_of(older, attempts.SUPERSEDED, f"replaced by {newer['request_id']} before it was sent", clock(), name)


def outage(clock: Clock, tickets: list[tuple[Emitted, Emitted]]) -> list[Emitted]:
    """A fibre outage in Spain: the surge that hints at it, ops declaring it, subscribers
    and matching customers told (in Spanish and English), a new ticket about it answered
    with its status, an update that reaches everyone, the resolution, an unsubscription.
    `tickets` are the (ticket.created, ticket.classified) of the desk's tickets so far."""
    out: list[Emitted] = []
    hop = IncidentsHop()
    contacts = {created.key: contact_of(created, classified) for created, classified in tickets}

    # The tickets so far, counted: three network tickets within ten minutes are a surge.
    surge_table: dict[str, Any] = {}
    for created, classified in tickets:
        out += watch_for_surges(clock, surge_table, counted(contacts[created.key], classified), "surge")
    assert [e.event.data["dimension"] for e in out] == ["skill"], "the scenario needs a surge of one skill"

    # Subscribers: an English one by e-mail, everywhere; a Spanish one by SMS, in Spain.
    subscribed = incident_requests.subscriptions({"subscriptions": [
        {"service": SERVICE, "recipient": {"channel": "email", "address": "Alex.Morgan@example.com"}, "language": "en",
         "name": "Alex Morgan", "timezone": "Europe/London"},
        {"service": SERVICE, "region": "ES", "recipient": {"channel": "sms", "address": "+34 612 345 602"}, "language": "es"},
    ]}, at=clock())
    for data, name in zip(subscribed, ("subscription-en-email", "subscription-es-sms")):
        added = subscription_published(name, "subscription.added", data)
        hop.read(added)
        out.append(added)
    en_email, es_sms = (recipient_key(data["recipient"]) for data in subscribed)

    # Ops declare the outage.
    declared = incident_published("incident-declared", "incident.declared", incident_requests.declared(
        {"service": SERVICE, "region": "ES", "skill": "network",
         "message": {"en": "A fibre cable was cut during road works; technicians are splicing it.",
                     "es": "Unas obras han cortado un cable de fibra; los técnicos ya están empalmándolo."},
         "expected_fix_at": "2026-11-23T16:30:00+01:00"},
        by=OPS_BY, at=clock(), incident_id=incident_requests.new_incident_id(retry_key("declare", "idem-outage-1")),
        update_id=incident_requests.new_update_id(retry_key("declare", "idem-outage-1"))))
    out.append(declared)
    incident_id = declared.key
    open_tickets = [contact for contact in contacts.values() if contact["status"] == "open"]
    sms_ticket = next(key for key, contact in contacts.items() if contact["reply_to"]["channel"] == "sms")
    names = {en_email: "incident-declared-en-subscriber", es_sms: "incident-declared-es-subscriber",
             recipient_key(contacts[sms_ticket]["reply_to"]): "incident-declared-es-ticket"}
    notices = hop.fan_out(clock, hop.read(declared), open_tickets, names)
    assert sorted(e.name for e in notices) == sorted(names.values())
    out += notices
    by_name = {e.name: e.event.data for e in notices}
    # The e-mail went out as the worker died; the SMS waits (quiet hours, or a long queue).
    out.append(settled_after_a_crash(clock, by_name["incident-declared-en-subscriber"], "incident-declared-en-in-doubt"))

    # A new chat ticket about it: answered with the incident's status, linked, counted.
    chat_contact_ = chat_contact(clock, "incident-ack-es", SESSION_OUTAGE, "m-0101",
                                 "Hola, desde esta mañana no tengo fibra en casa. ¿Es una avería general?",
                                 {"name": "Pilar Ruiz", "phone": "+34 612 345 601"})
    [created] = ticket_events(clock, chat_contact_, Thread(), "incident-ack-es")
    classified = triage_and_assign(clock, created.event.data, [], "incident-ack-es")[1]
    contact = contact_of(created, classified)
    incident = incidents.active_match(hop.incidents.values(), skill=contact["skill"], region=contact["region"])
    assert incident is not None and incident["incident_id"] == incident_id
    ack = requests.acknowledgement(classified.event.data, contact, incident)
    assert ack["template"] == "acknowledgement_incident"
    ack_emitted = Emitted("incident-ack-es", NOTIFY_REQUESTS, recipient_key(ack["recipient"]),
                          pipeline_event("notifier", "notify.requested", ack["request_id"], ack, ack["ticket_id"], clock()))
    ticket_id = contact["ticket_id"]
    linked = requests.linked(incident, contact, clock())
    linked_emitted = Emitted("incident-ack-es", INCIDENTS_EVENTS, incident_id, pipeline_event(
        "notifier", "incident.ticket_linked", f"{incident_id}.{ticket_id}", linked, ticket_id, linked["linked_at"]))
    counted_emitted = Emitted("incident-ack-es", SURGE_WATCH, "surges", pipeline_event(
        "notifier", "surge.ticket_counted", f"{ticket_id}.counted", counted(contact, classified), ticket_id, clock()))
    out += [ack_emitted, linked_emitted, counted_emitted]
    assert watch_for_surges(clock, surge_table, counted_emitted.event.data, "surge") == []  # raised once
    out += push(clock, ack, "incident-ack-es")
    hop.read(linked_emitted)
    contacts[created.key] = contact
    open_tickets.append(contact)

    # News: everyone told before hears it; the SMS still waiting is replaced.
    update_id = incident_requests.new_update_id(retry_key("update", incident_id, "idem-outage-2"))
    updated = incident_published("incident-updated", "incident.updated", incident_requests.updated(
        {"message": {"en": "Half of the damaged fibres are spliced; service is coming back street by street.",
                     "es": "Ya está empalmada la mitad de las fibras dañadas; el servicio vuelve calle a calle."}},
        incident=hop.incidents[incident_id], by=OPS_BY, at=clock(), update_id=update_id))
    out.append(updated)
    names = {en_email: "incident-updated-en-subscriber", es_sms: "incident-updated-es-subscriber",
             recipient_key(contacts[sms_ticket]["reply_to"]): "incident-updated-es-ticket",
             recipient_key(contact["reply_to"]): "incident-updated-es-chat"}
    notices = hop.fan_out(clock, hop.read(updated), open_tickets, names)
    assert sorted(e.name for e in notices) == sorted(names.values())
    out += notices
    by_name = {e.name: e.event.data for e in notices}
    out.append(superseded(clock, next(e.event.data for e in out if e.name == "incident-declared-es-subscriber"),
                          by_name["incident-updated-es-subscriber"], "incident-superseded"))
    out += push(clock, by_name["incident-updated-es-chat"], "incident-updated-es-chat")

    # Resolved; then the SMS subscriber leaves.
    resolved = incident_published("incident-resolved", "incident.resolved", incident_requests.resolved(
        {"message": {"en": "The cable is repaired and every line works again.",
                     "es": "El cable está reparado y todas las líneas funcionan de nuevo."}},
        incident=hop.incidents[incident_id], by=OPS_BY, at=clock(),
        update_id=incident_requests.new_update_id(retry_key("resolve", incident_id, "idem-outage-3"))))
    out.append(resolved)
    names = {en_email: "incident-resolved-en-subscriber", es_sms: "incident-resolved-es-subscriber",
             recipient_key(contacts[sms_ticket]["reply_to"]): "incident-resolved-es-ticket",
             recipient_key(contact["reply_to"]): "incident-resolved-es-chat"}
    notices = hop.fan_out(clock, hop.read(resolved), open_tickets, names)
    out += [e for e in notices if e.name in ("incident-resolved-en-subscriber", "incident-resolved-es-chat")]
    out.append(sent_by_email(clock, next(e.event.data for e in notices if e.name == "incident-resolved-en-subscriber"),
                             "incident-resolved-en-subscriber"))
    removed = subscription_published("subscription-es-sms-removed", "subscription.removed", incident_requests.unsubscription(
        {"service": SERVICE, "recipient": {"channel": "sms", "address": "+34612345602"}}, at=clock()))
    hop.read(removed)
    out.append(removed)
    return out


# --- feedback: surveys ------------------------------------------------------------------

SURVEY_RULES = SurveyRules(delay_seconds=3600.0, fatigue_days=30.0, answer_window_hours=72.0)  # feedback's defaults
SURVEY_BASE_URL = "https://support.example.com"  # FEEDBACK_PUBLIC_BASE_URL
# app.py's module-level `links`, with a fixed example secret (FEEDBACK_SURVEY_SECRET).
SURVEY_LINKS = SurveyLinks("example-survey-link-secret-0123456789", SURVEY_RULES.answer_window_hours * 3600, SURVEY_BASE_URL)
LOW_SCORE = 2  # app.py: a score of 1 or 2 closes the loop


def at_seconds(stamp: str) -> float:
    return parse_timestamp(stamp).timestamp()


def survey_request(due: dict[str, Any], now: str) -> dict[str, Any]:
    """services/feedback/app.py survey_request, with SURVEY_LINKS signed at `now` (the
    tokens carry the time they were signed: fixed here, so that a rerun gives the same bytes)."""
    with mock.patch.object(TimestampSigner, "get_timestamp", lambda self: int(at_seconds(now))):
        params: dict = {"ticket_id": due["ticket_id"], "name": due.get("name")}
        template = "survey_reply"
        if due["channel"] == "email":
            template = "survey_links"
            params["links"] = {str(score): SURVEY_LINKS.url(due["survey_id"], due["ticket_id"], score, due["language"])
                               for score in range(1, 6)}
    return {"request_id": f"{due['survey_id']}.survey", "ticket_id": due["ticket_id"], "reason": "survey",
            "recipient": due["recipient"], "language": due["language"], "template": template, "params": params}


class FeedbackHops:
    """The tables of services/feedback/app.py's facts hop (`ticket_facts`, `surveys`) and
    surveys hop (`customers`), and what keep_ticket_facts (with answer_in_time,
    close_the_loop and schedule_surveys), survey_due (the SurveyClock's work),
    ask_how_it_went and answer_by_link emit from them."""

    def __init__(self, low_score_action: str = "reopen") -> None:  # FEEDBACK_LOW_SCORE_ACTION
        self.facts: dict[str, dict[str, Any]] = {}
        self.surveys: dict[str, dict[str, Any]] = {}
        self.customers: dict[str, dict[str, Any]] = {}
        self.low_score_action = low_score_action

    def read(self, clock: Clock, emitted: Emitted, name: str | None = None) -> list[Emitted]:
        """keep_ticket_facts, for one event of tickets.events; what it emits (a low score's reopening or note)."""
        event_type, data = emitted.type, emitted.event.data
        ticket_id = data["ticket_id"]
        before = self.facts.get(ticket_id)
        out: list[Emitted] = []
        if event_type == "survey.answered" and not self.answer_in_time(before, data):
            return out
        updated = metrics.record(before, event_type, data, emitted.event.time)
        if updated is not None:
            self.facts[ticket_id] = updated
            if event_type == "survey.answered":
                out += self.close_the_loop(clock, before, updated, name or emitted.name)
        self.schedule(event_type, data)
        return out

    @staticmethod
    def answer_in_time(facts: dict[str, Any] | None, answered: dict[str, Any]) -> bool:
        survey = (facts or {}).get("survey") or {}
        return survey.get("survey_id") == answered["survey_id"] and surveys.answer_open(survey["sent_at"], answered["answered_at"], SURVEY_RULES)

    def close_the_loop(self, clock: Clock, before: dict[str, Any] | None, after: dict[str, Any], name: str) -> list[Emitted]:
        said, was = after.get("survey") or {}, (before or {}).get("survey") or {}
        if not said.get("score") or said["score"] > LOW_SCORE or (was.get("score") or 5) <= LOW_SCORE:
            return []
        ticket_id = after["ticket_id"]
        comment = f': "{said["comment"]}"' if said.get("comment") else " (no comment)"
        text = f"The customer scored the support {said['score']} of 5{comment}"
        event_id = f"{said['survey_id']}.low-score"
        now = clock()
        if self.low_score_action == "reopen":
            data = {"ticket_id": ticket_id, "reopened_at": now, "reopened_by": "feedback", "reason": text[:500]}
            event_type = "ticket.reopened"
        else:
            data = {"ticket_id": ticket_id, "note_id": stable_id(event_id, length=12).lower(), "agent_id": "feedback",
                    "agent_name": "Customer feedback", "text": f"Follow up, supervisors: {text}", "added_at": now}
            event_type = "ticket.note_added"
        return [Emitted(name, TICKETS_EVENTS, ticket_id, pipeline_event("feedback", event_type, event_id, data, ticket_id, now))]

    def schedule(self, event_type: str, data: dict[str, Any]) -> None:
        """schedule_surveys."""
        ticket_id = data["ticket_id"]
        if event_type == "ticket.created":
            self.surveys[ticket_id] = {"state": "open", "contact": {
                "customer_id": data["customer"].get("id") or recipient_key(data["reply_to"]), "channel": data["channel"],
                "recipient": data["reply_to"], "language": data["customer"].get("language", "en"),
                "name": data["customer"].get("name"), "thread_key": data.get("thread_key")}}
            return
        survey = self.surveys.get(ticket_id)
        if survey is None:
            return
        if event_type == "ticket.assigned":
            self.surveys[ticket_id] = {**survey, "agent_id": data["agent_id"]}
        elif event_type == "ticket.resolved" and survey["state"] != "scheduled":
            self.surveys[ticket_id] = {**survey, "state": "scheduled", "due_at": surveys.due_at(data["resolved_at"], SURVEY_RULES),
                                       "resolved_at": data["resolved_at"], "survey_id": surveys.survey_id(ticket_id, data["resolved_at"])}
        elif event_type == "ticket.reopened" and survey["state"] == "scheduled":
            self.surveys[ticket_id] = {**survey, "state": "cancelled"}

    def due(self, clock: Clock, ticket_id: str, name: str) -> Emitted:
        """survey_due, run by the SurveyClock (Processor.transact on the ticket's partition) once due_at is past."""
        survey = self.surveys[ticket_id]
        assert survey["state"] == "scheduled"
        now = clock()
        assert now >= survey["due_at"]
        contact = survey["contact"]
        due = {"survey_id": survey["survey_id"], "ticket_id": ticket_id, "customer_id": contact["customer_id"],
               "channel": contact["channel"], "recipient": contact["recipient"], "language": contact["language"],
               "name": contact.get("name"), "thread_key": contact.get("thread_key"), "agent_id": survey.get("agent_id"),
               "resolved_at": survey["resolved_at"]}
        self.surveys[ticket_id] = {**survey, "state": "due"}
        return Emitted(name, FEEDBACK_SURVEYS, contact["customer_id"],
                       pipeline_event("feedback", "survey.due", f"{survey['survey_id']}.due", due, ticket_id, now))

    def ask(self, clock: Clock, due: Emitted, name: str) -> list[Emitted]:
        """ask_how_it_went: the survey to the notifier, survey.sent, and survey.opened where
        the customer answers by replying (not e-mail)."""
        data = due.event.data
        now = clock()
        customer = self.customers.get(data["customer_id"])
        assert surveys.skip_reason(customer=customer, ticket={"tags": []}, now=now, rules=SURVEY_RULES) is None
        self.customers[data["customer_id"]] = {**(customer or {}), "last_surveyed_at": now}
        expires_at = timestamp(parse_timestamp(now) + timedelta(hours=SURVEY_RULES.answer_window_hours))
        request = survey_request(data, now)
        assert data["name"] is None or data["name"].split(" ")[0] in text_of(request)
        ticket_id = data["ticket_id"]
        out = [Emitted(name, NOTIFY_REQUESTS, recipient_key(data["recipient"]),
                       pipeline_event("feedback", "notify.requested", request["request_id"], request, ticket_id, now))]
        sent = {"survey_id": data["survey_id"], "ticket_id": ticket_id, "channel": data["channel"], "sent_at": now, "expires_at": expires_at}
        out.append(Emitted(name, TICKETS_EVENTS, ticket_id, pipeline_event("feedback", "survey.sent", f"{data['survey_id']}.sent", sent, ticket_id, now)))
        if data["channel"] != "email" and data.get("thread_key"):
            opened = {"survey_id": data["survey_id"], "ticket_id": ticket_id, "thread_key": data["thread_key"], "expires_at": expires_at}
            out.append(Emitted(name, INTAKE_RAW, data["thread_key"],
                               pipeline_event("feedback", "survey.opened", f"{data['survey_id']}.opened", opened, ticket_id, now)))
        return out

    def answer_by_link(self, clock: Clock, url: str, comment: Any, name: str) -> Emitted:
        """A survey page's POST (survey_pages.submit, then app.py answer_by_link): the link
        read back, the comment as the form gives it."""
        now = clock()
        link = SURVEY_LINKS.read(url.removeprefix(f"{SURVEY_BASE_URL}/survey/"), now=at_seconds(now))
        survey = self.facts[link["ticket_id"]]["survey"]
        assert survey["survey_id"] == link["survey_id"] and surveys.answer_open(survey["sent_at"], now, SURVEY_RULES)
        assert not (survey["via"] == "email_link" and survey["score"] == link["score"])
        answered = {"survey_id": link["survey_id"], "ticket_id": link["ticket_id"], "score": link["score"],
                    "comment": clean_comment(comment), "answered_at": now, "via": "email_link"}
        return Emitted(name, TICKETS_EVENTS, link["ticket_id"], pipeline_event(
            "feedback", "survey.answered", f"{link['survey_id']}.answer.link.{link['score']}", answered, link["ticket_id"], now))


def resolution(clock: Clock, ticket_id: str, name: str) -> Emitted:
    """The part of a ticket.resolved the facts hop reads (the router's own are emitted above):
    an input here, not an example."""
    at = clock()
    return Emitted(name, TICKETS_EVENTS, ticket_id, pipeline_event(
        "router", "ticket.resolved", f"{ticket_id}.resolved.example", {"ticket_id": ticket_id, "resolved_at": at}, ticket_id, at))


def answered_in_the_thread(clock: Clock, opened: Emitted, contact: Emitted, thread: Thread) -> list[Emitted]:
    """services/intake/app.py turn_contacts_into_ticket_events: survey.opened marks the
    thread (normaliser.survey_opened), and the thread's next message, an answer, is a
    survey.answered (normalise) rather than a ticket message."""
    assert opened.key == contact.key, "both are keyed by the thread"
    survey_opened(opened.event.data, thread)
    [answer] = ticket_events(clock, contact, thread, contact.name)
    assert answer.type == "survey.answered"
    return [contact, answer]


def satisfaction_surveys(clock: Clock, tickets_events: list[Emitted], chat_es: Thread, chat_en: Thread, sms_es: Thread) -> list[Emitted]:
    """After resolution, feedback asks how it went: by e-mail with one-click links (Inés,
    in Spanish), by SMS and by chat with "reply 1 to 5" (in Spanish, and in English for a
    ticket whose first survey a reopening cancelled); the SMS and chat customers answer by
    replying, the e-mail customer by a link and a comment; a low score reopens the ticket
    (or, with FEEDBACK_LOW_SCORE_ACTION=note, adds a note). `tickets_events` are the
    tickets.events so far, as the facts hop reads them."""
    hops = FeedbackHops()
    for emitted in tickets_events:
        assert hops.read(clock, emitted) == []
    created = {e.key: e.event.data for e in tickets_events if e.type == "ticket.created"}
    email_es = next(t for t, d in created.items() if d["channel"] == "email")
    sms_ticket = next(t for t, d in created.items() if d["channel"] == "sms")
    chat_ticket_es = next(t for t, d in created.items() if d["thread_key"] == f"chat:{SESSION_ES}")
    chat_ticket_en = next(t for t, d in created.items() if d["thread_key"] == f"chat:{SESSION_EN}")
    assert hops.surveys[chat_ticket_en]["state"] == "cancelled", "the scenario reopened it before its survey was due"
    names = {email_es: "survey-email-es", sms_ticket: "survey-sms-es", chat_ticket_es: "survey-chat-es", chat_ticket_en: "survey-chat-en"}
    for ticket_id, name in names.items():
        hops.read(clock, resolution(clock, ticket_id, name))

    # An hour later the clock finds them due; one decision per customer.
    later = Clock(max(hops.surveys[t]["due_at"] for t in names))
    out: list[Emitted] = []
    asked: dict[str, list[Emitted]] = {}
    for ticket_id, name in names.items():
        due = hops.due(later, ticket_id, name)
        asked[name] = hops.ask(later, due, name)
        out += [due, *asked[name]]
        for emitted in asked[name]:
            if emitted.topic == TICKETS_EVENTS:
                hops.read(later, emitted)

    def opened(name: str) -> Emitted:
        return next(e for e in asked[name] if e.type == "survey.opened")

    # The answers: "5 excelente" by SMS, "cuatro" in the Spanish chat, a click and a comment in the mail.
    reply = sms_contact(later, "survey-sms-es", inbound_sms(sender="+34 612 345 678", body="5 excelente", sid="SM" + "b" * 32))
    out += answered_in_the_thread(later, opened("survey-sms-es"), reply, sms_es)
    reply = chat_contact(later, "survey-chat-es", SESSION_ES, "m-0003", "cuatro")
    out += answered_in_the_thread(later, opened("survey-chat-es"), reply, chat_es)
    mail = next(e for e in asked["survey-email-es"] if e.type == "notify.requested")
    out.append(hops.answer_by_link(later, mail.event.data["params"]["links"]["4"],
                                   "La devolución llegó en dos días, pero tuve que escribir dos veces.\r\n¡Gracias!", "survey-email-es"))
    for answer in [e for e in out if e.type == "survey.answered"]:
        assert hops.read(later, answer) == [], "no low score so far"

    # A low score in the English chat: the ticket is reopened, or (the other setting) a note is added.
    reply = chat_contact(later, "survey-chat-en", SESSION_EN, "client-7f4b", "2, the refund took too long")
    contact, answer = answered_in_the_thread(later, opened("survey-chat-en"), reply, chat_en)
    out += [contact, answer]
    with_a_note = FeedbackHops(low_score_action="note")
    with_a_note.facts = dict(hops.facts)
    out += hops.read(later, answer)
    out += with_a_note.read(later, answer, "survey-chat-en-note")
    assert [e.type for e in out[-2:]] == ["ticket.reopened", "ticket.note_added"]
    return out


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
    english_thread = Thread()
    [created_en] = ticket_events(clock, english, english_thread, "chat-en")
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

    # The notifier's incidents: after the rest, so that the clock of the events above stays as it was.
    out += outage(clock, [(created_es, routed_es[1]), (created_en, routed_en[1]), (created_p1, routed_p1[1]),
                          (created_sms, routed_sms[1])])

    # Feedback's satisfaction surveys, after the outage for the same reason; the facts hop
    # reads every ticket event so far, the e-mail ticket's included.
    read = [e for e in (*out, created_email, *routed_email) if e.topic == TICKETS_EVENTS]
    out += satisfaction_surveys(clock, read, thread, english_thread, sms_thread)

    # Marta asks to be forgotten, last of all.
    out += erasure(clock, "chat-es-erased", thread, created_es)
    return out


def erasure(clock: Clock, name: str, thread: Thread, created: Emitted) -> list[Emitted]:
    """An erasure by e-mail address, as it travels: the API's request and notice, intake's
    notice per ticket found, then the router's and the notifier's onward events."""
    asked = erasure_from({"email": "marta.lopez@example.es"}, clock(), "ES")
    data = asked.to_data()
    out = [Emitted(name, INTAKE_RAW, asked.erasure_id, pipeline_event(
               "notifier", "erasure.requested", event_id(asked, "requested", "0"), data, None, asked.requested_at)),
           Emitted(f"{name}-announced", TICKETS_EVENTS, asked.erasure_id, pipeline_event(
               "notifier", "customer.erased", event_id(asked, "announced"), data, None, asked.requested_at))]
    found = intake_erasure.find_threads([(created.event.data["thread_key"], thread.to_dict())], asked)
    told = asked.with_found(ticket_ids=found.ticket_ids, customer_ids=found.customer_ids)
    [ticket_id] = sorted(found.ticket_ids)
    erased = pipeline_event("intake", "customer.erased", event_id(asked, "erased", ticket_id), told.to_data(), ticket_id, clock())
    out.append(Emitted(name, TICKETS_EVENTS, ticket_id, erased))
    out.append(Emitted(name, ROUTER_DISPATCH, "dispatch", pipeline_event(
        "router", "dispatch.customer_erased", event_id(told, "dispatch", erased.id), erased.data, None, clock())))
    contact = requests.remember_contact(created.event.data)
    contacts = notifier_erasure.contacts_to_delete([(ticket_id, contact)], told)
    onward = told.with_found(ticket_ids=contacts.ticket_ids, chat_sessions=contacts.chat_sessions)
    [session] = sorted(contacts.chat_sessions)
    out.append(Emitted(name, CHAT_OUTBOUND, session, pipeline_event(
        "notifier", "chat.erased", event_id(told, "chat", erased.id, session), onward.to_data(), None, clock())))
    out.append(Emitted(name, NOTIFY_REQUESTS, told.erasure_id, pipeline_event(
        "notifier", "notify.erasure_requested", event_id(told, "notify", erased.id, "0"), onward.to_data(), None, clock())))
    out.append(Emitted(name, INCIDENTS_EVENTS, told.erasure_id, pipeline_event(
        "notifier", "incident.erasure_requested", event_id(told, "incident", erased.id, "0"), onward.to_data(), None, clock())))
    [customer] = sorted(told.customer_ids & {created.event.data["customer"]["id"]})
    out.append(Emitted(name, FEEDBACK_SURVEYS, customer, pipeline_event(
        "feedback", "survey.customer_erased", event_id(told, "survey", erased.id, customer), told.to_data(), None, clock())))
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
