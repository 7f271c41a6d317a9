"""What delivering one requested message produces, as data: the message for the
channel and the receipt saying what the attempt did."""
from __future__ import annotations

import re
from typing import Any, Mapping
from urllib.parse import urlencode

from deskstream.phones import split_channel

from services.notifier import sms_text, templates

TICKET_ID = re.compile(r"^T-[A-Z2-7]{8}$")
MESSAGE_SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")


def chat_message(request: dict[str, Any], text: str, sent_at: str) -> dict[str, Any]:
    """The `chat.message` intake pushes to the customer's chat session."""
    message = {
        "session_id": request["recipient"]["address"],
        "message_id": request["request_id"],
        "kind": request["reason"],
        "text": text,
        "sent_at": sent_at,
    }
    if request["reason"] == "survey":  # answered with a button on the page
        message["choices"] = templates.survey_choices(request["language"])
    return with_subject(message, request)


def with_subject(data: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """`data` with the ticket and the incident the request is about (a notice to a
    subscriber has no ticket)."""
    for field in ("ticket_id", "incident_id"):
        if request.get(field):
            data[field] = request[field]
    return data


def receipt(request: dict[str, Any], status: str, detail: str, attempted_at: str, provider_message_id: str | None = None) -> dict[str, Any]:
    """The data of `notify.<status>`; its event id is `<request id>.<status>`."""
    data = {
        "request_id": request["request_id"],
        "recipient": request["recipient"],
        "status": status,
        "detail": detail,
        "attempted_at": attempted_at,
    }
    if provider_message_id:
        data["provider_message_id"] = provider_message_id
    return with_subject(data, request)


# --- SMS and WhatsApp -------------------------------------------------------------------

PHONE_CHANNELS = ("sms", "whatsapp")
WHATSAPP_MAX_CHARS = 1600  # Twilio's limit for a message body
STATUS_PATH = "/webhooks/twilio/status"
TWILIO_STATUSES = frozenset(
    "accepted scheduled queued sending sent delivered undelivered failed read receiving received canceled partially_delivered".split()
)


class InvalidStatusCallback(ValueError):
    """A signed status callback that does not say which message and what became of it."""


def consent(consent_event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """What the notifier keeps per recipient from a `consent.*` event."""
    return {"opted_out": consent_event_type == "consent.opted_out", "keyword": data["keyword"], "at": data["recorded_at"]}


def opted_out(record: dict[str, Any] | None) -> bool:
    return bool(record and record["opted_out"])


def phone_text(channel: str, text: str, max_segments: int) -> str:
    """The text as it goes out: SMS within `max_segments` segments, WhatsApp within
    Twilio's body limit."""
    if channel == "sms":
        return sms_text.fit(text, max_segments)
    return text if len(text) <= WHATSAPP_MAX_CHARS else text[: WHATSAPP_MAX_CHARS - 1] + "…"


def status_callback_url(public_base_url: str, request: dict[str, Any]) -> str:
    """Where Twilio reports the message's status: the request and ticket travel in the
    (signed) URL, so the report can be tied to them without a lookup."""
    about = {"request": request["request_id"]}
    if request.get("ticket_id"):
        about["ticket"] = request["ticket_id"]
    return f"{public_base_url}{STATUS_PATH}?" + urlencode(about)


def status_report(query: Mapping[str, str], form: Mapping[str, str], reported_at: str) -> dict[str, Any]:
    """The data of `notify.status_reported` for one Twilio status callback."""
    request_id, ticket_id = query.get("request", ""), query.get("ticket", "")
    status = form.get("MessageStatus") or form.get("SmsStatus") or ""
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    if not request_id or (ticket_id and not TICKET_ID.match(ticket_id)):
        raise InvalidStatusCallback("the callback URL does not name a request (and its ticket, if any)")
    if status not in TWILIO_STATUSES:
        raise InvalidStatusCallback("MessageStatus is not a Twilio message status")
    if not MESSAGE_SID.match(sid):
        raise InvalidStatusCallback("MessageSid is not a Twilio message SID")
    channel, number = split_channel(form.get("To", ""))
    if not number:
        raise InvalidStatusCallback("To is missing")
    code = form.get("ErrorCode") or ""
    report = {
        "request_id": request_id[:200],
        "recipient": {"channel": channel, "address": number[:64]},
        "provider": "twilio",
        "provider_message_id": sid,
        "status": status,
        "error_code": int(code) if code.isdigit() else None,
        "reported_at": reported_at,
    }
    return {**report, "ticket_id": ticket_id} if ticket_id else report
