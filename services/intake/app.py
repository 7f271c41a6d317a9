"""Intake: every contact into Kafka, every contact into a ticket event.

    contact (chat API) ──> intake.raw ──normalise──> tickets.events
    notifier ──> chat.outbound ──store──> chat outbox ──> the customer's page
"""
from __future__ import annotations

from deskstream.faustapp import Pipeline, create_app
from deskstream.http import HttpService, health_routes
from deskstream.topics import CHAT_OUTBOUND, INTAKE_RAW, TICKETS_EVENTS

from services.intake import outbox
from services.intake.chat import MAX_BODY_BYTES
from services.intake.normaliser import Thread, normalise
from services.intake.settings import IntakeSettings
from services.intake.web import ChatSockets, chat_routes

settings = IntakeSettings.from_env()
app = create_app(settings.service)
pipeline = Pipeline(app, "intake")
threads = pipeline.table("threads")
chat_outboxes = pipeline.table("chat_outboxes")
sockets = ChatSockets()


@app.agent(pipeline.topic(INTAKE_RAW))
async def turn_contacts_into_ticket_events(stream):
    async for incoming in pipeline.events(stream, INTAKE_RAW):
        async with pipeline.handling(incoming) as contact:
            thread_key = contact.data["thread_key"]
            thread = Thread.from_dict(threads.get(thread_key))
            events = normalise(contact.data, thread)
            for ticket_event in events:
                event = pipeline.event(ticket_event.type, ticket_event.id, ticket_event.data, ticket_event.ticket_id)
                await pipeline.send(TICKETS_EVENTS, ticket_event.ticket_id, event)
            if events:
                threads[thread_key] = thread.to_dict()


@app.agent(pipeline.topic(CHAT_OUTBOUND))
async def deliver_chat_messages(stream):
    async for incoming in pipeline.events(stream, CHAT_OUTBOUND):
        async with pipeline.handling(incoming) as message:
            session_id = message.data["session_id"]
            updated = outbox.append(chat_outboxes.get(session_id), message.data)
            if updated is not None:
                chat_outboxes[session_id] = updated
                sockets.push(session_id, updated[-1])


app.web_server(
    HttpService(
        settings.service.http_host,
        settings.service.http_port,
        health_routes(pipeline),
        chat_routes(pipeline, settings, chat_outboxes, sockets),
        client_max_size=MAX_BODY_BYTES,
    )
)
