"""How deskstream's own mail names its ticket, so that replies find their way back.

Shared by intake (which reads replies) and the notifier (which writes the mail):
the subject carries a `[#T-XXXXXXXX]` tag and the Message-ID starts with the ticket
id, and a reply keeps at least one of the two.
"""
from __future__ import annotations

import re

from deskstream.events import stable_id

TAG = re.compile(r"\[#(T-[A-Z2-7]{8})\]")
OWN_MESSAGE_ID = re.compile(r"^<?(T-[A-Z2-7]{8})\.[^@>]*@")
REPLY_PREFIXES = ("re:", "aw:", "fwd:", "fw:", "rv:", "res:")


def subject_tag(ticket_id: str) -> str:
    return f"[#{ticket_id}]"


def reply_subject(subject: str | None, ticket_id: str) -> str:
    """`Re: <the customer's subject> [#T-...]`, tagged once and prefixed once."""
    bare = TAG.sub("", subject or "").strip()
    while bare.lower().startswith(REPLY_PREFIXES):
        bare = bare.split(":", 1)[1].strip()
    return f"Re: {bare} {subject_tag(ticket_id)}" if bare else subject_tag(ticket_id)


def message_id(owner: str, request_id: str, domain: str) -> str:
    """Our Message-ID for one outbound message: the same request, the same id. `owner`
    is its ticket (which a reply then finds), or the incident of a subscriber's notice."""
    return f"<{owner}.{stable_id(request_id, length=16)}@{domain}>"


def ticket_named(subject: str | None, in_reply_to: str | None, references: list[str] | tuple[str, ...]) -> str | None:
    """The ticket a message says it belongs to: its subject tag, else one of our own
    Message-IDs that it answers."""
    tag = TAG.search(subject or "")
    if tag:
        return tag.group(1)
    for answered in [in_reply_to or "", *reversed(references)]:
        own = OWN_MESSAGE_ID.match(answered)
        if own:
            return own.group(1)
    return None
