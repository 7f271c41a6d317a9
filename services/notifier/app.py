"""Notifier: the customer hears from support on their own channel, once per message.

    tickets.events (ticket.classified) ──> notify.requests (acknowledgement with the wait)
    tickets.events (ticket.reply_sent) ──> notify.requests (the agent's answer)
    notify.requests ──send──> the channel (chat: chat.outbound; e-mail: SMTP; SMS, WhatsApp: Twilio) ──> notify.receipts
    notify.requests (consent.opted_out/opted_in from intake) ──> who must not be messaged
    Twilio status callbacks ──> notify.receipts (notify.status_reported)
"""
from __future__ import annotations

import aiosmtplib

from deskstream.events import Event, utcnow
from deskstream.faustapp import create_app
from deskstream.http import HttpService, health_routes
from deskstream.pipeline import Pipeline
from deskstream.processor import Step
from deskstream.recipients import recipient_key
from deskstream.topics import CHAT_OUTBOUND, NOTIFY_RECEIPTS, NOTIFY_REQUESTS, TICKETS_EVENTS

from services.notifier import delivery, requests
from services.notifier.email import compose
from services.notifier.settings import NotifierSettings
from services.notifier.smtp import SmtpSender
from services.notifier.status_webhook import status_routes
from services.notifier.templates import render
from services.notifier.twilio_sms import UNSUBSCRIBED, TwilioSender, TwilioSendFailed

settings = NotifierSettings.from_env()
app = create_app(settings.service)
pipeline = Pipeline(app, settings.service)
smtp = SmtpSender(settings.smtp) if settings.smtp is not None else None
twilio = TwilioSender(settings.twilio) if settings.twilio is not None else None
if twilio is not None:
    app.add_dependency(twilio)
CONSENT_EVENTS = ("consent.opted_out", "consent.opted_in")
ASKS_FOR_A_MESSAGE = {"ticket.classified": requests.acknowledgement, "ticket.reply_sent": requests.agent_reply}


@pipeline.processor("acknowledgements", source=TICKETS_EVENTS, tables=("contacts",))
def request_acknowledgements(event: Event, step: Step) -> None:
    contacts = step.table("contacts")
    ticket_id = event.data["ticket_id"]
    if event.type == "ticket.created":
        contacts[ticket_id] = requests.remember_contact(event.data)
    elif event.type in ASKS_FOR_A_MESSAGE and contacts.get(ticket_id) is not None:
        request = ASKS_FOR_A_MESSAGE[event.type](event.data, contacts.get(ticket_id))
        recipient = recipient_key(request["recipient"])
        step.emit(NOTIFY_REQUESTS, recipient, pipeline.event("notify.requested", request["request_id"], request, ticket_id))


# Sends e-mail and SMS inside the hop: a crash after the send and before the commit
# sends it again on restart (at least once; e-mail with the same Message-ID); small
# batches keep a batch of sends well within the consumer's poll interval.
@pipeline.processor("deliveries", source=NOTIFY_REQUESTS, tables=("deliveries", "consents"), max_batch=20)
async def send_requested_messages(requested: Event, step: Step) -> None:
    if requested.type in CONSENT_EVENTS:  # a STOP or START, on the recipient's own partition
        step.table("consents")[recipient_key(requested.data["recipient"])] = delivery.consent(requested.type, requested.data)
        return
    request = requested.data
    deliveries = step.table("deliveries")
    if deliveries.get(request["request_id"]) is not None:
        return
    recipient, ticket_id = request["recipient"], request["ticket_id"]
    text = render(request["template"], request["language"], request["params"])
    provider_id = None
    if recipient["channel"] == "chat":
        message = delivery.chat_message(request, text, utcnow())
        step.emit(CHAT_OUTBOUND, recipient["address"], pipeline.event("chat.message", request["request_id"], message, ticket_id))
        status, detail = "sent", "queued for the chat session"
    elif recipient["channel"] == "email" and smtp is not None:
        status, detail = await send_mail(request, text)
    elif recipient["channel"] in delivery.PHONE_CHANNELS and twilio is not None:
        status, detail, provider_id = await send_to_phone(request, text, step)
    else:
        status, detail = "failed", f"no sender for channel {recipient['channel']} is configured"
    receipt = delivery.receipt(request, status, detail, utcnow(), provider_id)
    deliveries[request["request_id"]] = {"status": status}
    step.emit(NOTIFY_RECEIPTS, recipient_key(recipient),
              pipeline.event(f"notify.{status}", f"{request['request_id']}.{status}", receipt, ticket_id))


async def send_to_phone(request: dict, text: str, step: Step) -> tuple[str, str, str | None]:
    assert twilio is not None and settings.twilio is not None
    recipient = request["recipient"]
    consents = step.table("consents")
    key = recipient_key(recipient)
    if delivery.opted_out(consents.get(key)):
        return "failed", f"not sent: the recipient opted out ({consents.get(key)['keyword']})", None
    body = delivery.phone_text(recipient["channel"], text, settings.twilio.max_segments)
    callback = delivery.status_callback_url(settings.twilio.public_base_url, request)
    try:
        sent = await twilio.send(recipient["channel"], recipient["address"], body, callback)
    except TwilioSendFailed as failure:
        if failure.code == UNSUBSCRIBED:  # opted out at the carrier: remember, and tell whoever listens
            opt_out = {"recipient": recipient, "keyword": f"TWILIO-{UNSUBSCRIBED}", "message_sid": None, "recorded_at": utcnow()}
            consents[key] = delivery.consent("consent.opted_out", opt_out)
            step.emit(NOTIFY_REQUESTS, key, pipeline.event("consent.opted_out", f"consent.{request['request_id']}.{UNSUBSCRIBED}", opt_out))
        kind = "permanent" if failure.permanent else f"temporary, gave up after {failure.attempts} attempts"
        return "failed", f"{failure.detail} ({kind})", None
    segments = f", {sent.segments} segment(s)" if sent.segments else ""
    return "sent", f"Twilio accepted {sent.sid} ({sent.status}{segments}, attempt {sent.attempts})", sent.sid


async def send_mail(request: dict, text: str) -> tuple[str, str]:
    assert smtp is not None and settings.smtp is not None
    message = compose(request, text, from_address=settings.smtp.from_address, from_name=settings.smtp.from_name,
                      domain=settings.smtp.message_id_domain)
    try:
        answer = await smtp.send(message)
    except (aiosmtplib.SMTPException, OSError) as error:
        return "failed", f"SMTP: {type(error).__name__}: {str(error)[:200]}"
    return "sent", f"SMTP accepted {message['Message-ID']}: {answer[:100]}"


app.web_server(
    HttpService(
        settings.service.http_host,
        settings.service.http_port,
        health_routes(pipeline),
        status_routes(pipeline, settings.twilio),
    )
)
