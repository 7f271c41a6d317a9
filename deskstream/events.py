"""The CloudEvents 1.0 envelope every deskstream topic carries, serialised with orjson.

Event ids come from the source's own ids (a chat client's message id, a Message-ID,
a MessageSid) so that a replay or a retry produces the same id, and every consumer
can drop what it has already seen.
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson

SPECVERSION = "1.0"
DATA_CONTENT_TYPE = "application/json"
SCHEMA_BASE = "https://deskstream.dev/schemas/"


class EventDecodeError(ValueError):
    """Bytes from a topic that are not a deskstream event."""


def utcnow() -> str:
    """RFC 3339 timestamp with milliseconds, as CloudEvents' `time` wants it."""
    return timestamp(datetime.now(timezone.utc))


def timestamp(moment: datetime) -> str:
    """`moment` the way every event writes a time: UTC, milliseconds, `Z` (so that times
    compare as text too)."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(text: str) -> datetime:
    """A time as events and queries carry it (RFC 3339, `Z` or an offset), as an aware
    datetime; one written without an offset is taken as UTC."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def stable_id(*parts: str, length: int = 26) -> str:
    """A short id derived from its inputs: the same inputs always give the same id."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return base64.b32encode(digest).decode().rstrip("=").lower()[:length]


def schema_url(event_type: str) -> str:
    return f"{SCHEMA_BASE}{event_type}.json"


@dataclass(frozen=True, slots=True)
class Event:
    """One CloudEvent: attributes plus a JSON `data` object."""

    type: str
    source: str
    id: str
    data: dict[str, Any]
    subject: str | None = None
    time: str = field(default_factory=utcnow)

    def to_dict(self) -> dict[str, Any]:
        envelope: dict[str, Any] = {
            "specversion": SPECVERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time,
            "datacontenttype": DATA_CONTENT_TYPE,
            "dataschema": schema_url(self.type),
            "data": self.data,
        }
        if self.subject is not None:
            envelope["subject"] = self.subject
        return envelope

    def encode(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, envelope: dict[str, Any]) -> "Event":
        try:
            if envelope["specversion"] != SPECVERSION:
                raise EventDecodeError(f"unsupported specversion {envelope['specversion']!r}")
            data = envelope["data"]
            if not isinstance(data, dict):
                raise EventDecodeError("data must be a JSON object")
            return cls(
                type=str(envelope["type"]),
                source=str(envelope["source"]),
                id=str(envelope["id"]),
                data=data,
                subject=envelope.get("subject"),
                time=str(envelope["time"]),
            )
        except KeyError as missing:
            raise EventDecodeError(f"missing CloudEvents attribute {missing}") from None

    @classmethod
    def decode(cls, raw: bytes) -> "Event":
        try:
            envelope = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise EventDecodeError(f"not JSON: {error}") from None
        if not isinstance(envelope, dict):
            raise EventDecodeError("not a JSON object")
        return cls.from_dict(envelope)
