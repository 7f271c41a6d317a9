"""The web chat's message contract: validation, sessions and tokens.

A session id is random and public (it appears in URLs); the session token is an
HMAC of the id under a server secret, so any intake worker can check it without
shared state, and nobody can derive it from the id alone.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from deskstream.events import stable_id

from services.intake.shown import shown_line, shown_text

MAX_TEXT_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
MAX_CLIENT_MESSAGE_ID = 128
# Matched with fullmatch: `$` also matches before a final newline, which let "m-1\n" through.
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_CLIENT_MESSAGE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,190}\.[^@\s\x00-\x1f\x7f]{2,63}$")
_PHONE = re.compile(r"^\+?[0-9 ()-]{5,32}$")
_CUSTOMER_FIELDS = {"name": 200, "email": 254, "phone": 32, "language": 16}


class ChatRejected(ValueError):
    """A chat request that cannot be accepted; `status` is the HTTP status to answer."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class ChatMessage:
    session_id: str | None
    client_message_id: str
    text: str
    customer: dict[str, str]


def parse_message(body: Any) -> ChatMessage:
    """Check a decoded JSON body against the chat API's contract."""
    if not isinstance(body, dict):
        raise ChatRejected("the body must be a JSON object")
    unknown = set(body) - {"session_id", "client_message_id", "text", "customer"}
    if unknown:
        raise ChatRejected(f"unknown fields: {', '.join(sorted(unknown))}")
    session_id = body.get("session_id")
    if session_id is not None and (not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id)):
        raise ChatRejected("session_id must be a session id this server issued")
    client_message_id = body.get("client_message_id")
    if not isinstance(client_message_id, str) or not _CLIENT_MESSAGE_ID.fullmatch(client_message_id):
        raise ChatRejected("client_message_id must be 1 to 128 characters of letters, digits and ._:-")
    text = body.get("text")
    if not isinstance(text, str):
        raise ChatRejected("text must be a string")
    if not text.strip():
        raise ChatRejected("text is empty")
    if len(text.encode()) > MAX_TEXT_BYTES:
        raise ChatRejected(f"text is longer than {MAX_TEXT_BYTES} bytes", status=413)
    text = shown_text(text)
    if not text.strip():
        raise ChatRejected("text is empty")
    return ChatMessage(session_id, client_message_id, text, parse_customer(body.get("customer")))


def parse_customer(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ChatRejected("customer must be an object")
    customer: dict[str, str] = {}
    for field, item in value.items():
        limit = _CUSTOMER_FIELDS.get(field)
        if limit is None:
            raise ChatRejected(f"customer.{field} is not a known field")
        if item is None or item == "":
            continue
        if not isinstance(item, str) or len(item) > limit:
            raise ChatRejected(f"customer.{field} must be a string of at most {limit} characters")
        kept = shown_line(item) if field == "name" else item.strip()
        if kept:
            customer[field] = kept
    if "email" in customer and not _EMAIL.match(customer["email"]):
        raise ChatRejected("customer.email is not an e-mail address")
    if "phone" in customer and not _PHONE.match(customer["phone"]):
        raise ChatRejected("customer.phone is not a phone number")
    return customer


def new_session_id() -> str:
    return secrets.token_urlsafe(18)


def session_token(secret: bytes, session_id: str) -> str:
    return hmac.new(secret, f"chat-session:{session_id}".encode(), hashlib.sha256).hexdigest()


def token_matches(secret: bytes, session_id: str, token: str | None) -> bool:
    return token is not None and hmac.compare_digest(session_token(secret, session_id), token)


def thread_key(session_id: str) -> str:
    return f"chat:{session_id}"


def contact_id(session_id: str, client_message_id: str) -> str:
    """The same client message always gets the same contact id: retries dedupe."""
    return "chat-" + stable_id("chat", session_id, client_message_id)
