"""What a chat session has been sent, kept so a page that (re)connects gets every
message it has not seen yet, in order."""
from __future__ import annotations

from typing import Any

MAX_MESSAGES = 200


def append(outbox: list[dict[str, Any]] | None, message: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The outbox with `message` added under the next sequence number, or None if it is
    already there (the same message id delivered twice)."""
    outbox = list(outbox or [])
    if any(kept["message_id"] == message["message_id"] for kept in outbox):
        return None
    seq = outbox[-1]["seq"] + 1 if outbox else 1
    outbox.append({**message, "seq": seq})
    return outbox[-MAX_MESSAGES:]


def unseen(outbox: list[dict[str, Any]] | None, after: int) -> list[dict[str, Any]]:
    return [message for message in outbox or [] if message["seq"] > after]
