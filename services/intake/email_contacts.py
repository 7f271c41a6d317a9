"""An e-mail as a contact: the thread it belongs to, the ticket it names, and the
`contact.received` data intake publishes for it.

Threading works on what mail clients keep: a reply's References start with the
first message of the conversation, so the thread key is the sender plus that root;
our own mail carries the ticket in its Message-ID and a `[#T-XXXXXXXX]` subject tag
(deskstream.mailthread), so a reply that lost its References still finds its ticket.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deskstream.customers import customer_id
from deskstream.events import stable_id

from services.intake.mail import Attachment, MailParseError, ParsedMail, content_key, parse

MAX_TEXT_CHARS = 16_000  # the contract's body_text holds 16,384
MAX_FULL_TEXT_CHARS = 65_000
MAX_THREAD_KEY_CHARS = 200  # the key is also the event's subject, which the envelope holds to 200


def thread_key(mail: ParsedMail, content_key: str) -> str:
    """`email:<sender>:<root>`: the root is the first message of the conversation.

    A key that would not fit in MAX_THREAD_KEY_CHARS has its root, and if that is not
    enough its sender too, replaced by a hash: the same for every message of the thread,
    as the key must be. Keys that fit are as they always were."""
    root = (mail.references[0] if mail.references else None) or mail.in_reply_to or mail.message_id or content_key
    if len(root) > 200:
        root = stable_id(root)
    key = f"email:{mail.from_address}:{root}"
    if len(key) > MAX_THREAD_KEY_CHARS:
        key = f"email:{mail.from_address}:{stable_id(root)}"
    if len(key) > MAX_THREAD_KEY_CHARS:
        key = f"email:{stable_id(mail.from_address)}:{stable_id(root)}"
    return key


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def contact_data(mail: ParsedMail, content_key: str, received_at: str) -> dict[str, Any]:
    """The data of the `contact.received` for one parsed e-mail (not noise)."""
    text = mail.text.strip() or mail.full_text.strip() or "(no text)"
    customer: dict[str, str] = {"id": customer_id(email=mail.from_address, fallback=mail.from_address), "email": mail.from_address}
    if mail.from_name:
        customer["name"] = mail.from_name[:200]
    return {
        "contact_id": "email-" + stable_id("email", content_key),
        "channel": "email",
        "thread_key": thread_key(mail, content_key),
        "received_at": received_at,
        "customer": customer,
        "subject": mail.subject[:998] or None,
        "body_text": clip(text, MAX_TEXT_CHARS),
        "reply_to": {"channel": "email", "address": mail.from_address},
        "email": {
            "message_id": mail.message_id,
            "in_reply_to": mail.in_reply_to,
            "references": list(mail.references[-100:]),
            "full_text": clip(mail.full_text, MAX_FULL_TEXT_CHARS),
            "attachments": [
                {"filename": a.filename[:255] if a.filename else None, "content_type": a.content_type[:255], "size": a.size, "sha256": a.sha256}
                for a in mail.attachments[:100]
            ],
        },
    }


@dataclass(frozen=True, slots=True)
class MailOutcome:
    """What to do with one message from the mailbox: publish `contact` (and keep its
    attachments), or take it without a ticket (`noise`), or refuse it (`unusable`)."""

    contact: dict[str, Any] | None = None
    attachments: tuple[Attachment, ...] = ()
    noise: str | None = None
    unusable: str | None = None


def read_mail(raw: bytes, own_addresses: tuple[str, ...], received_at: str) -> MailOutcome:
    try:
        mail = parse(raw, own_addresses)
    except MailParseError as error:
        return MailOutcome(unusable=f"unparseable e-mail: {error}")
    if mail.noise is not None:
        return MailOutcome(noise=mail.noise)
    return MailOutcome(contact=contact_data(mail, content_key(mail, raw), received_at), attachments=mail.attachments)
