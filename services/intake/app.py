"""Intake: every contact into Kafka, every contact into a ticket event.

    contact (chat API, IMAP mailbox, Twilio SMS/WhatsApp webhook) ──> intake.raw ──normalise──> tickets.events
    survey.opened (feedback) ──> intake.raw: the thread's next message may answer it ──> survey.answered
    STOP / START by SMS or WhatsApp ──> notify.requests (the recipient's consent, for notifier)
    notifier ──> chat.outbound ──store──> chat outbox ──changelog──> every worker's copy ──> the customer's page
"""
from __future__ import annotations

from deskstream.erasure import Erasure
from deskstream.events import Event
from deskstream.faustapp import create_app
from deskstream.http import HttpService, health_routes
from deskstream.pipeline import Pipeline
from deskstream.processor import Step
from deskstream.topics import CHAT_OUTBOUND, DEADLETTER, INTAKE_RAW, TICKETS_EVENTS

from services.intake import erasure, outbox
from services.intake.attachments import AttachmentStore
from services.intake.chat import MAX_BODY_BYTES
from services.intake.mailbox import MailboxIntake
from services.intake.masking import masked_contact
from services.intake.normaliser import Thread, normalise, survey_opened
from services.intake.senders import METRIC as SENDER_OVER_LIMIT, held_back
from services.intake.settings import IntakeSettings
from services.intake.sms_webhook import sms_routes
from services.intake.web import ChatSockets, chat_routes

settings = IntakeSettings.from_env()
app = create_app(settings.service)
pipeline = Pipeline(app, settings.service)
# The page's socket may be on any worker, the outbox is written where the session's
# partition is: every worker reads the outboxes from its own copy of the table.
sockets = ChatSockets(pipeline.replica("chat_outboxes"))
app.add_dependency(sockets)
attachments = AttachmentStore(settings.service.data_dir / "attachments")
if settings.mailbox is not None:
    app.add_dependency(MailboxIntake(settings.mailbox, pipeline, attachments, keep_original_text=settings.keep_original_text))


@pipeline.processor("tickets", source=INTAKE_RAW, tables=("threads",))
def turn_contacts_into_ticket_events(contact: Event, step: Step) -> None:
    if contact.type == "erasure.requested":  # the ops API, on every partition
        erasure.erase_threads_in(step, pipeline, attachments, Erasure.from_data(contact.data))
        return
    threads = step.table("threads")
    thread_key = contact.data["thread_key"]
    thread = Thread.from_dict(threads.get(thread_key))
    if contact.type == "survey.opened":  # from feedback: the next message here may be an answer
        survey_opened(contact.data, thread)
        threads[thread_key] = thread.to_dict()
        return
    letter = held_back(contact, thread, settings.limits.sms_per_sender, pipeline.source)
    if letter is not None:  # one SMS/WhatsApp sender past their limit: kept, not on the ticket
        step.emit(DEADLETTER, INTAKE_RAW, letter)
        step.after_commit(lambda: pipeline.metrics.failed(SENDER_OVER_LIMIT))
        return
    events = normalise(masked_contact(contact.data)[0], thread)  # tickets.events never carries card numbers or passwords
    for ticket_event in events:
        event = pipeline.event(ticket_event.type, ticket_event.id, ticket_event.data, ticket_event.ticket_id)
        step.emit(TICKETS_EVENTS, ticket_event.ticket_id, event)
    if events:
        threads[thread_key] = thread.to_dict()


@pipeline.processor("chat-outbox", source=CHAT_OUTBOUND, tables=("chat_outboxes",))
def deliver_chat_messages(message: Event, step: Step) -> None:
    if message.type == "chat.erased":  # the notifier, for an erased customer's chat tickets
        erasure.erase_outbox_in(step, Erasure.from_data(message.data))
        return
    outboxes = step.table("chat_outboxes")
    session_id = message.data["session_id"]
    updated = outbox.append(outboxes.get(session_id), message.data)
    if updated is not None:
        outboxes[session_id] = updated  # pushed once committed, by every worker's ChatSockets


app.web_server(
    HttpService(
        settings.service.http_host,
        settings.service.http_port,
        health_routes(pipeline),
        chat_routes(pipeline, settings, sockets),
        sms_routes(pipeline, settings),
        client_max_size=MAX_BODY_BYTES,
    )
)
