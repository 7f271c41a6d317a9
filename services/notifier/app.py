"""Notifier: the customer hears from support on their own channel, once per message.

    tickets.events (ticket.classified) ──> notify.requests (acknowledgement with the wait)
    notify.requests ──send──> the channel (chat: chat.outbound) ──> notify.receipts
"""
from __future__ import annotations

from deskstream.events import Event, utcnow
from deskstream.faustapp import create_app
from deskstream.http import HttpService, health_routes
from deskstream.pipeline import Pipeline
from deskstream.processor import Step
from deskstream.topics import CHAT_OUTBOUND, NOTIFY_RECEIPTS, NOTIFY_REQUESTS, TICKETS_EVENTS

from services.notifier import delivery, requests
from services.notifier.settings import NotifierSettings
from services.notifier.templates import render

settings = NotifierSettings.from_env()
app = create_app(settings.service)
pipeline = Pipeline(app, settings.service)


@pipeline.processor("acknowledgements", source=TICKETS_EVENTS, tables=("contacts",))
def request_acknowledgements(event: Event, step: Step) -> None:
    contacts = step.table("contacts")
    ticket_id = event.data["ticket_id"]
    if event.type == "ticket.created":
        contacts[ticket_id] = requests.remember_contact(event.data)
    elif event.type == "ticket.classified" and contacts.get(ticket_id) is not None:
        request = requests.acknowledgement(event.data, contacts.get(ticket_id))
        recipient = requests.recipient_key(request["recipient"])
        step.emit(NOTIFY_REQUESTS, recipient, pipeline.event("notify.requested", request["request_id"], request, ticket_id))


@pipeline.processor("deliveries", source=NOTIFY_REQUESTS, tables=("deliveries",))
def send_requested_messages(requested: Event, step: Step) -> None:
    request = requested.data
    deliveries = step.table("deliveries")
    if deliveries.get(request["request_id"]) is not None:
        return
    recipient, ticket_id = request["recipient"], request["ticket_id"]
    if recipient["channel"] == "chat":
        text = render(request["template"], request["language"], request["params"])
        message = delivery.chat_message(request, text, utcnow())
        step.emit(CHAT_OUTBOUND, recipient["address"], pipeline.event("chat.message", request["request_id"], message, ticket_id))
        status, detail = "sent", "queued for the chat session"
    else:
        status, detail = "failed", f"no sender for channel {recipient['channel']} yet"
    receipt = delivery.receipt(request, status, detail, utcnow())
    deliveries[request["request_id"]] = {"status": status}
    step.emit(NOTIFY_RECEIPTS, requests.recipient_key(recipient),
              pipeline.event(f"notify.{status}", f"{request['request_id']}.{status}", receipt, ticket_id))


app.web_server(HttpService(settings.service.http_host, settings.service.http_port, health_routes(pipeline)))
