"""Turning contacts into ticket events.

A contact on a thread with an open ticket joins that ticket; otherwise it opens one.
Ticket ids and event ids derive from the contact's own id, so processing the same
contact twice (a replay after a crash, a client retry) produces the same events,
which consumers drop by id; the thread state remembers recent contact ids so that
a replay does not even produce them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from deskstream import survey_answers
from deskstream.events import parse_timestamp, stable_id, timestamp
from deskstream.mailthread import ticket_named

from services.intake.language import detect_language, normalise_language
from services.intake.shown import shown_line, shown_text

RECENT_CONTACTS = 200
MAX_ATTACHMENTS = 1000  # per thread: 100 per mail, ten mails of a hundred
REPLY_CHANNELS = frozenset({"chat", "sms", "whatsapp"})  # e-mail answers by link
CORRECTION_MINUTES = 10  # after an answer, a new one replaces it for this long
SUBJECT_CHARS = 80


@dataclass(slots=True)
class TicketEvent:
    type: str
    id: str
    ticket_id: str
    data: dict[str, Any]


@dataclass(slots=True)
class Thread:
    """What intake remembers per channel thread (a chat session, a mail thread, a phone number)."""

    ticket_id: str | None = None
    customer: dict[str, str] = field(default_factory=dict)
    recent_contacts: list[str] = field(default_factory=list)
    survey: dict[str, str] | None = None  # a satisfaction survey awaiting an answer here (`survey.opened`)
    allowance: dict[str, float] | None = None  # the sender's token bucket (services/intake/senders.py)
    # sha256 of the e-mail attachments stored for this thread: what an erasure removes
    # from the attachment store (services/intake/erasure.py)
    attachments: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        value: dict[str, Any] = {"ticket_id": self.ticket_id, "customer": self.customer, "recent_contacts": self.recent_contacts}
        if self.survey:
            value["survey"] = self.survey
        if self.allowance:
            value["allowance"] = self.allowance
        if self.attachments:
            value["attachments"] = self.attachments
        return value

    @classmethod
    def from_dict(cls, value: dict[str, Any] | None) -> "Thread":
        if not value:
            return cls()
        return cls(value.get("ticket_id"), dict(value.get("customer", {})), list(value.get("recent_contacts", [])),
                   value.get("survey"), value.get("allowance"), list(value.get("attachments", [])))


def ticket_id_for(contact_id: str) -> str:
    return "T-" + stable_id("ticket", contact_id, length=8).upper()


def subject_from(text: str) -> str:
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first_line if len(first_line) <= SUBJECT_CHARS else first_line[: SUBJECT_CHARS - 1] + "…"


def customer_for(contact: dict[str, Any], known: dict[str, str]) -> dict[str, str]:
    """The customer as far as known: what this contact says, over what earlier ones said."""
    given = {k: shown_line(v) if k == "name" else v for k, v in contact["customer"].items()}
    merged = {**known, **{k: v for k, v in given.items() if v}}
    merged["language"] = normalise_language(merged.get("language")) or detect_language(contact["body_text"])
    return merged


def survey_opened(opened: dict[str, Any], thread: Thread) -> None:
    """The thread's next messages may answer this survey, until it expires."""
    thread.survey = {"survey_id": opened["survey_id"], "ticket_id": opened["ticket_id"], "expires_at": opened["expires_at"]}


def survey_answer(contact: dict[str, Any], thread: Thread) -> TicketEvent | None:
    """`survey.answered`, when the thread awaits a survey's answer and the message is
    clearly one ("5", "cinco", "muy bien, gracias"); anything else is a normal message.
    Within the survey's window every answer is passed on (feedback keeps the last)."""
    survey = thread.survey
    if survey is None or contact["channel"] not in REPLY_CHANNELS:
        return None
    if parse_timestamp(contact["received_at"]) >= parse_timestamp(survey["expires_at"]):
        thread.survey = None
        return None
    answer = survey_answers.parse(contact["body_text"])
    if answer is None:  # the customer moved on: what they write next is a message, never a score
        thread.survey = None
        return None
    # A quick correction ("5", then "no, 4") still counts; later short replies ("ok gracias")
    # are messages again, so nothing the agent should read is taken for a score.
    corrections_until = parse_timestamp(contact["received_at"]) + timedelta(minutes=CORRECTION_MINUTES)
    if corrections_until < parse_timestamp(survey["expires_at"]):
        thread.survey = {**survey, "expires_at": timestamp(corrections_until)}
    data = {"survey_id": survey["survey_id"], "ticket_id": survey["ticket_id"], "score": answer.score,
            "comment": answer.comment, "answered_at": contact["received_at"], "via": contact["channel"]}
    return TicketEvent("survey.answered", f"{survey['survey_id']}.answer.{stable_id(contact['contact_id'], length=16)}",
                       survey["ticket_id"], data)


def normalise(contact: dict[str, Any], thread: Thread) -> list[TicketEvent]:
    """The ticket events one `contact.received` produces; updates `thread` in place."""
    contact_id = contact["contact_id"]
    if contact_id in thread.recent_contacts:
        return []
    thread.recent_contacts = (thread.recent_contacts + [contact_id])[-RECENT_CONTACTS:]
    answered = survey_answer(contact, thread)
    if answered is not None:
        return [answered]
    thread.customer = customer_for(contact, thread.customer)
    body_text = shown_text(contact["body_text"])  # what agents are shown, on every channel (services/intake/shown.py)
    common = {
        "channel": contact["channel"],
        "contact_id": contact_id,
        "customer": thread.customer,
        "body_text": body_text if body_text.strip() else "(no text)",
        "received_at": contact["received_at"],
        "reply_to": contact["reply_to"],
    }
    if "sms" in contact:  # the MessageSid and any media, for the agent
        common["sms"] = contact["sms"]
    if "email" in contact:
        common["email"] = contact["email"]
        stored = [a["sha256"] for a in contact["email"]["attachments"] if a["sha256"] not in thread.attachments]
        thread.attachments = (thread.attachments + stored)[-MAX_ATTACHMENTS:]
        if thread.ticket_id is None:
            # a reply whose References were lost, found by our subject tag or Message-ID
            thread.ticket_id = ticket_named(contact.get("subject"), contact["email"]["in_reply_to"], contact["email"]["references"])
    if thread.ticket_id is None:
        thread.ticket_id = ticket_id_for(contact_id)
        subject = shown_line(contact.get("subject") or "") or subject_from(common["body_text"])
        return [
            TicketEvent(
                "ticket.created",
                f"{thread.ticket_id}.created",
                thread.ticket_id,
                {"ticket_id": thread.ticket_id, "thread_key": contact["thread_key"], "subject": subject, **common},
            )
        ]
    return [
        TicketEvent(
            "ticket.message_received",
            f"{thread.ticket_id}.message.{stable_id(contact_id, length=16)}",
            thread.ticket_id,
            {"ticket_id": thread.ticket_id, **common},
        )
    ]
