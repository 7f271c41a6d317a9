"""What delivering one requested message produces, as data: the message for the
channel and the receipt saying what the attempt did."""
from __future__ import annotations

from typing import Any


def chat_message(request: dict[str, Any], text: str, sent_at: str) -> dict[str, Any]:
    """The `chat.message` intake pushes to the customer's chat session."""
    return {
        "session_id": request["recipient"]["address"],
        "message_id": request["request_id"],
        "ticket_id": request["ticket_id"],
        "kind": request["reason"],
        "text": text,
        "sent_at": sent_at,
    }


def receipt(request: dict[str, Any], status: str, detail: str, attempted_at: str) -> dict[str, Any]:
    """The data of `notify.<status>`; its event id is `<request id>.<status>`."""
    return {
        "request_id": request["request_id"],
        "ticket_id": request["ticket_id"],
        "recipient": request["recipient"],
        "status": status,
        "detail": detail,
        "attempted_at": attempted_at,
    }
