"""Notifier: the customer hears from support on their own channel, once per message.

    tickets.events (ticket.classified) ──> notify.requests (acknowledgement with the wait)
    notify.requests ──send──> the channel (chat: chat.outbound; e-mail: SMTP) ──> notify.receipts
"""
from __future__ import annotations

import aiosmtplib

from deskstream.events import Event, utcnow
from deskstream.faustapp import create_app
from deskstream.http import HttpService, health_routes
from deskstream.pipeline import Pipeline
from deskstream.processor import Step
from deskstream.topics import CHAT_OUTBOUND, NOTIFY_RECEIPTS, NOTIFY_REQUESTS, TICKETS_EVENTS

from services.notifier import delivery, requests
from services.notifier.email import compose
from services.notifier.settings import NotifierSettings
from services.notifier.smtp import SmtpSender
from services.notifier.templates import render

settings = NotifierSettings.from_env()
app = create_app(settings.service)
pipeline = Pipeline(app, settings.service)
smtp = SmtpSender(settings.smtp) if settings.smtp is not None else None


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


# Sends e-mail inside the hop: a crash after the send and before the commit sends it
# again on restart, with the same Message-ID (at least once); small batches keep a
# batch of sends well within the consumer's poll interval.
@pipeline.processor("deliveries", source=NOTIFY_REQUESTS, tables=("deliveries",), max_batch=20)
async def send_requested_messages(requested: Event, step: Step) -> None:
    request = requested.data
    deliveries = step.table("deliveries")
    if deliveries.get(request["request_id"]) is not None:
        return
    recipient, ticket_id = request["recipient"], request["ticket_id"]
    text = render(request["template"], request["language"], request["params"])
    if recipient["channel"] == "chat":
        message = delivery.chat_message(request, text, utcnow())
        step.emit(CHAT_OUTBOUND, recipient["address"], pipeline.event("chat.message", request["request_id"], message, ticket_id))
        status, detail = "sent", "queued for the chat session"
    elif recipient["channel"] == "email" and smtp is not None:
        status, detail = await send_mail(request, text)
    else:
        status, detail = "failed", f"no sender for channel {recipient['channel']} yet"
    receipt = delivery.receipt(request, status, detail, utcnow())
    deliveries[request["request_id"]] = {"status": status}
    step.emit(NOTIFY_RECEIPTS, requests.recipient_key(recipient),
              pipeline.event(f"notify.{status}", f"{request['request_id']}.{status}", receipt, ticket_id))


async def send_mail(request: dict, text: str) -> tuple[str, str]:
    assert smtp is not None and settings.smtp is not None
    message = compose(request, text, from_address=settings.smtp.from_address, from_name=settings.smtp.from_name,
                      domain=settings.smtp.message_id_domain)
    try:
        answer = await smtp.send(message)
    except (aiosmtplib.SMTPException, OSError) as error:
        return "failed", f"SMTP: {type(error).__name__}: {str(error)[:200]}"
    return "sent", f"SMTP accepted {message['Message-ID']}: {answer[:100]}"


app.web_server(HttpService(settings.service.http_host, settings.service.http_port, health_routes(pipeline)))
