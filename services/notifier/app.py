"""Notifier: the customer hears from support on their own channel, once per message.

    tickets.events (ticket.classified) ──> notify.requests (acknowledgement with the wait)
    notify.requests ──send──> the channel (chat: chat.outbound) ──> notify.receipts
"""
from __future__ import annotations

from typing import Any

from deskstream.events import utcnow
from deskstream.faustapp import Pipeline, create_app
from deskstream.http import HttpService, health_routes
from deskstream.topics import CHAT_OUTBOUND, NOTIFY_RECEIPTS, NOTIFY_REQUESTS, TICKETS_EVENTS

from services.notifier import requests
from services.notifier.settings import NotifierSettings
from services.notifier.templates import render

settings = NotifierSettings.from_env()
app = create_app(settings.service)
pipeline = Pipeline(app, "notifier")
contacts = pipeline.table("contacts")
deliveries = pipeline.table("deliveries")


@app.agent(pipeline.topic(TICKETS_EVENTS))
async def request_acknowledgements(stream):
    async for incoming in pipeline.events(stream, TICKETS_EVENTS):
        async with pipeline.handling(incoming) as event:
            ticket_id = event.data["ticket_id"]
            if event.type == "ticket.created":
                contacts[ticket_id] = requests.remember_contact(event.data)
            elif event.type == "ticket.classified" and contacts.get(ticket_id) is not None:
                request = requests.acknowledgement(event.data, contacts[ticket_id])
                recipient = requests.recipient_key(request["recipient"])
                await pipeline.send(NOTIFY_REQUESTS, recipient, pipeline.event("notify.requested", request["request_id"], request, ticket_id))


async def send_on_channel(request: dict[str, Any], text: str) -> tuple[str, str]:
    """Deliver one message; the outcome and a detail for the receipt."""
    recipient = request["recipient"]
    if recipient["channel"] == "chat":
        message = {
            "session_id": recipient["address"],
            "message_id": request["request_id"],
            "ticket_id": request["ticket_id"],
            "kind": request["reason"],
            "text": text,
            "sent_at": utcnow(),
        }
        event = pipeline.event("chat.message", request["request_id"], message, request["ticket_id"])
        await pipeline.send(CHAT_OUTBOUND, recipient["address"], event)
        return "sent", "queued for the chat session"
    return "failed", f"no sender for channel {recipient['channel']} yet"


@app.agent(pipeline.topic(NOTIFY_REQUESTS))
async def send_requested_messages(stream):
    async for incoming in pipeline.events(stream, NOTIFY_REQUESTS):
        request = incoming.event.data
        if deliveries.get(request["request_id"]) is not None:
            continue
        async with pipeline.handling(incoming):
            text = render(request["template"], request["language"], request["params"])
            status, detail = await send_on_channel(request, text)
            receipt = {
                "request_id": request["request_id"],
                "ticket_id": request["ticket_id"],
                "recipient": request["recipient"],
                "status": status,
                "detail": detail,
                "attempted_at": utcnow(),
            }
            deliveries[request["request_id"]] = {"status": status}
            await pipeline.send(
                NOTIFY_RECEIPTS, requests.recipient_key(request["recipient"]), pipeline.event(f"notify.{status}", f"{request['request_id']}.{status}", receipt, request["ticket_id"])
            )


app.web_server(HttpService(settings.service.http_host, settings.service.http_port, health_routes(pipeline)))
