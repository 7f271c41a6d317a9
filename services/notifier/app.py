"""Notifier: the customer hears from support on their own channel, each message once,
and hears of an outage before they have to ask.

    tickets.events ──> notify.requests (acknowledgement with the wait, or with the status
                       of a known outage; the agent's answer) and notifier.surge_watch
    notify.requests ──> deliveries (pending) ──outbox──> the channel (chat: chat.outbound;
                       e-mail: SMTP; SMS, WhatsApp: Twilio) ──> notify.receipts
    notify.requests (consent.opted_out/opted_in from intake) ──> who must not be messaged
    incidents.events (declared/updated/resolved, from the incident API) ──fan-out──>
                       notify.requests, one notice per affected customer per update
    notifier.surge_watch ──> incidents.events (incident.suspected, for ops only)
    Twilio status callbacks ──> notify.receipts (notify.status_reported)
"""
from __future__ import annotations

from datetime import datetime, timezone

from deskstream.erasure import Erasure, event_id
from deskstream.events import Event, parse_timestamp, utcnow
from deskstream.faustapp import create_app
from deskstream.http import HttpService, health_routes
from deskstream.pipeline import Pipeline
from deskstream.processor import Step
from deskstream.recipients import recipient_key
from deskstream.topics import CHAT_OUTBOUND, INCIDENTS_EVENTS, NOTIFY_REQUESTS, SURGE_WATCH, TICKETS_EVENTS

from services.notifier import attempts, delivery, erasure, incidents, requests, surges
from services.notifier.channels import Channels
from services.notifier.erasure_api import erasure_routes
from services.notifier.fanout import Fanout
from services.notifier.incidents_api import incident_routes
from services.notifier.outbox import Outbox
from services.notifier.outcomes import Outcome
from services.notifier.quiet_hours import deferred_until
from services.notifier.rate_limit import RateLimits
from services.notifier.sent_mail import SentMailbox
from services.notifier.settings import NotifierSettings
from services.notifier.smtp import SmtpPool
from services.notifier.status_webhook import status_routes
from services.notifier.twilio_sms import UNSUBSCRIBED, TwilioSender

settings = NotifierSettings.from_env()
app = create_app(settings.service)
pipeline = Pipeline(app, settings.service)
smtp = SmtpPool(settings.smtp, size=settings.concurrency) if settings.smtp is not None else None
twilio = TwilioSender(settings.twilio) if settings.twilio is not None else None
if twilio is not None:
    app.add_dependency(twilio)
contacts_replica = pipeline.replica("contacts")
subscriptions_replica = pipeline.replica("subscriptions")
incidents_replica = pipeline.replica("incidents")
CONSENT_EVENTS = ("consent.opted_out", "consent.opted_in")
CLOSING_EVENTS = {"ticket.resolved": "resolved", "ticket.reopened": "open"}
SURGES_KEY = "surges"


@pipeline.processor("acknowledgements", source=TICKETS_EVENTS, tables=("contacts",))
def request_acknowledgements(event: Event, step: Step) -> None:
    if event.type == "customer.erased":
        forget_customer(event, step)
        return
    contacts = step.table("contacts")
    ticket_id = event.data["ticket_id"]
    contact = contacts.get(ticket_id)
    if event.type == "ticket.created":
        contacts[ticket_id] = requests.remember_contact(event.data, settings.default_timezone)
    elif contact is None:
        return
    elif event.type == "ticket.classified":
        contact = contacts[ticket_id] = requests.classified(contact, event.data)
        incident = incidents.active_match(incidents_replica.values(), skill=contact["skill"], region=contact["region"])
        ask(step, requests.acknowledgement(event.data, contact, incident))
        if incident is not None:  # the ticket's customer hears of each update and of the resolution
            linked = requests.linked(incident, contact, utcnow())
            step.emit(INCIDENTS_EVENTS, incident["incident_id"], pipeline.event(
                "incident.ticket_linked", f"{incident['incident_id']}.{ticket_id}", linked, ticket_id))
        counted = {"ticket_id": ticket_id, "skill": contact["skill"], "region": contact["region"], "at": event.time}
        step.emit(SURGE_WATCH, SURGES_KEY, pipeline.event("surge.ticket_counted", f"{ticket_id}.counted", counted, ticket_id))
    elif event.type == "ticket.reply_sent":
        ask(step, requests.agent_reply(event.data, contact))
    elif event.type in CLOSING_EVENTS:
        contacts[ticket_id] = {**contact, "status": CLOSING_EVENTS[event.type]}


def forget_customer(event: Event, step: Step) -> None:
    """The customer's contacts go, and the erasure goes on to the tables keyed otherwise
    (services/notifier/erasure.py): every partition of notify.requests and
    incidents.events, and the outbox of each chat session found here."""
    contacts = step.table("contacts")
    asked = Erasure.from_data(event.data)
    found = erasure.contacts_to_delete(contacts.items(), asked)
    for ticket_id in found.ticket_ids:
        del contacts[ticket_id]
    passed_on = asked.with_found(ticket_ids=found.ticket_ids, chat_sessions=found.chat_sessions)
    data = passed_on.to_data()
    for session in sorted(found.chat_sessions):
        step.emit(CHAT_OUTBOUND, session, pipeline.event("chat.erased", event_id(asked, "chat", event.id, session), data))
    for partition in range(settings.service.kafka.partitions):
        step.emit(NOTIFY_REQUESTS, asked.erasure_id, pipeline.event(
            "notify.erasure_requested", event_id(asked, "notify", event.id, str(partition)), data), partition=partition)
        step.emit(INCIDENTS_EVENTS, asked.erasure_id, pipeline.event(
            "incident.erasure_requested", event_id(asked, "incident", event.id, str(partition)), data), partition=partition)


def ask(step: Step, request: dict) -> None:
    step.emit(NOTIFY_REQUESTS, recipient_key(request["recipient"]),
              pipeline.event("notify.requested", request["request_id"], request, request.get("ticket_id")))


@pipeline.processor("deliveries", source=NOTIFY_REQUESTS, tables=("deliveries", "consents"))
def accept_requested_messages(requested: Event, step: Step) -> None:
    """Record each new request as pending (after the recipient's quiet hours); the
    outbox sends it. A request seen before is dropped: that is what makes a repeated
    request, or a fan-out run again after a crash, send nothing twice."""
    if requested.type == "notify.erasure_requested":  # pending messages to the customer are not sent
        forget_recipient(Erasure.from_data(requested.data), step)
        return
    if requested.type in CONSENT_EVENTS:  # a STOP or START, on the recipient's own partition
        step.table("consents")[recipient_key(requested.data["recipient"])] = delivery.consent(requested.type, requested.data)
        return
    request = requested.data
    deliveries = step.table("deliveries")
    if attempts.known(deliveries.get(request["request_id"])):
        return
    moment = datetime.now(timezone.utc)
    if request.get("slot"):
        replace_waiting_notice(step, request, moment)
    not_before = deferred_until(
        settings.quiet_hours, channel=request["recipient"]["channel"], reason=request["reason"],
        priority=request.get("priority"), timezone=request.get("timezone") or settings.default_timezone, now=moment,
    )
    deliveries[request["request_id"]] = attempts.pending(request, not_before)
    step.after_commit(lambda: outbox.accepted(step.partition, request["request_id"], not_before))


def forget_recipient(asked: Erasure, step: Step) -> None:
    deliveries, consents = step.table("deliveries"), step.table("consents")
    for key in erasure.deliveries_to_delete(deliveries.items(), asked):
        del deliveries[key]
    for key in erasure.consents_to_delete([key for key, _ in consents.items()], asked):
        del consents[key]


def replace_waiting_notice(step: Step, request: dict, moment: datetime) -> None:
    """A newer notice for the same slot (incident and recipient) replaces one not sent yet."""
    deliveries = step.table("deliveries")
    slot = f"slot:{request['slot']}"
    waiting = deliveries.get(slot)
    if waiting is not None:
        older = deliveries.get(waiting["request_id"])
        if attempts.is_pending(older):
            deliveries[waiting["request_id"]] = attempts.final(attempts.SUPERSEDED, moment)
            outbox.receipt(step, older["request"], attempts.SUPERSEDED, f"replaced by {request['request_id']} before it was sent", moment)
    deliveries[slot] = {"request_id": request["request_id"]}


def remember_carrier_opt_out(step: Step, request: dict, outcome: Outcome) -> None:
    """Twilio refused because the recipient replied STOP at the carrier: remember it,
    and tell whoever listens."""
    if outcome.error_code != UNSUBSCRIBED:
        return
    opt_out = {"recipient": request["recipient"], "keyword": f"TWILIO-{UNSUBSCRIBED}", "message_sid": None, "recorded_at": utcnow()}
    key = recipient_key(request["recipient"])
    step.table("consents")[key] = delivery.consent("consent.opted_out", opt_out)
    step.emit(NOTIFY_REQUESTS, key, pipeline.event("consent.opted_out", f"consent.{request['request_id']}.{UNSUBSCRIBED}", opt_out))


@pipeline.processor("incidents", source=INCIDENTS_EVENTS, tables=("incidents", "audience", "subscriptions"))
def follow_incidents(event: Event, step: Step) -> None:
    data = event.data
    if event.type == "incident.erasure_requested":
        asked = Erasure.from_data(data)
        for name in ("audience", "subscriptions"):
            table = step.table(name)
            for key in erasure.listeners_to_delete(table.items(), asked):
                del table[key]
        return
    if event.type in incidents.KINDS:
        table = step.table("incidents")
        changed = incidents.fold(table.get(data["incident_id"]), event.type, data)
        if changed is not None:
            table[data["incident_id"]] = changed
            step.after_commit(lambda: fanout.updated(step.partition, data["incident_id"]))
    elif event.type == "incident.ticket_linked":
        incident = step.table("incidents").get(data["incident_id"])
        if incident is not None:
            who = incidents.member(data["recipient"], data["language"], data.get("name"), data.get("timezone"), data["ticket_id"])
            if data.get("update_id") in (None, incidents.latest(incident)["update_id"]):
                told = incidents.latest(incident)["update_id"]
                step.table("audience")[incidents.audience_key(data["incident_id"], data["recipient"])] = {**who, "told": told}
            else:  # the acknowledgement told an older state (its copy of the incident lagged): tell the latest
                fanout.tell(step, incident, [who])
    elif event.type == "subscription.added":
        step.table("subscriptions")[subscription_key(data)] = data
        tell_new_subscriber(step, data)
    elif event.type == "subscription.removed":
        del step.table("subscriptions")[subscription_key(data)]


def tell_new_subscriber(step: Step, subscription: dict) -> None:
    """A customer who subscribes during an outage hears its status at once. This also
    catches a subscription that the incident's fan-out ran too early to see (it was
    still on its way through this hop): the notice has the fan-out's request id, so a
    customer both reach gets it once."""
    known = {i["incident_id"]: i for i in [*incidents_replica.values(), *step.table("incidents").values()]}
    for incident in known.values():
        if incident["status"] == incidents.ACTIVE and incidents.subscribed(incident, subscription):
            who = incidents.member(subscription["recipient"], subscription["language"], subscription.get("name"),
                                   subscription.get("timezone"))
            fanout.tell(step, incident, [who], remember=False)  # a subscriber hears of every update anyway


def subscription_key(data: dict) -> str:
    return f"{data['service']}|{recipient_key(data['recipient'])}"


@pipeline.processor("surges", source=SURGE_WATCH, tables=("surges",))
def watch_for_surges(counted: Event, step: Step) -> None:
    """Many new tickets of one skill or region in a short time: tell ops, never customers."""
    data = counted.data
    table = step.table("surges")
    at = parse_timestamp(data["at"])
    for key in surges.surge_keys(data.get("skill"), data.get("region")):
        state, surge = surges.observe(table.get(key), data["ticket_id"], at, settings.surge)
        table[key] = state
        if surge:
            suspected = surges.suspicion(key, surge, state, settings.surge, utcnow())
            step.emit(INCIDENTS_EVENTS, suspected["suspicion_id"],
                      pipeline.event("incident.suspected", suspected["suspicion_id"], suspected))


sent_mail = SentMailbox(settings.sent_mail) if settings.sent_mail is not None else None
outbox = Outbox(pipeline, pipeline.processors["deliveries"], Channels(pipeline, settings, smtp, twilio, sent_mail),
                RateLimits(settings.rates), settings.retry, concurrency=settings.concurrency,
                recorded=remember_carrier_opt_out)
app.add_dependency(outbox)
fanout = Fanout(pipeline, pipeline.processors["incidents"], contacts_replica, subscriptions_replica)
app.add_dependency(fanout)

app.web_server(
    HttpService(
        settings.service.http_host,
        settings.service.http_port,
        health_routes(pipeline),
        status_routes(pipeline, settings.twilio),
        incident_routes(pipeline, incidents_replica, settings.ops_tokens),
        erasure_routes(pipeline, settings.ops_tokens, settings.phone_region),
    )
)
