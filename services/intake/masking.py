"""A contact's text with card numbers, passwords and national ids masked
(deskstream.sensitive), before anyone after intake reads it.

Intake masks twice, on purpose. The entry points (chat API, SMS/WhatsApp webhook,
mailbox) mask before `contact.received` goes to `intake.raw`, unless
INTAKE_KEEP_ORIGINAL_TEXT keeps the original there (`as_published`); the `tickets` hop
masks again before it makes ticket events (`masked_contact`), so `tickets.events`, and
the agents' console that reads it, never carry them, whatever is on `intake.raw`
(records written before masking existed, or with the original kept). Masking twice
changes nothing: it is idempotent.

The fields masked are the ones that hold what the customer wrote: `subject`,
`body_text` and an e-mail's `full_text`. Names, addresses and numbers identify the
customer and are kept (the erasure of issue 12 removes them); attachments are kept as
they came, in intake's attachment store, and are not read here.
"""
from __future__ import annotations

from typing import Any

from deskstream.sensitive import mask

# The contract's limits (schemas/cloudevent.json): a masked text can be longer than the
# original ("pwd=x" is "pwd=[secret ····]"), so it is cut to fit.
SUBJECT_CHARS = 998
BODY_TEXT_CHARS = 16384
FULL_TEXT_CHARS = 65536


def masked_text(text: str, limit: int) -> tuple[str, frozenset[str]]:
    masked = mask(text)
    value = masked.text if len(masked.text) <= limit else masked.text[: limit - 1] + "…"
    return value, masked.kinds


def masked_contact(data: dict[str, Any]) -> tuple[dict[str, Any], frozenset[str]]:
    """A `contact.received`'s data with its text masked, and the kinds found (none: the
    same dict back). The given dict is not changed."""
    kinds: set[str] = set()
    masked = dict(data)
    if isinstance(data.get("subject"), str):
        masked["subject"], found = masked_text(data["subject"], SUBJECT_CHARS)
        kinds |= found
    masked["body_text"], found = masked_text(data["body_text"], BODY_TEXT_CHARS)
    kinds |= found
    email = data.get("email")
    if isinstance(email, dict) and isinstance(email.get("full_text"), str):
        full_text, found = masked_text(email["full_text"], FULL_TEXT_CHARS)
        masked["email"] = {**email, "full_text": full_text}
        kinds |= found
    return (masked, frozenset(kinds)) if kinds else (data, frozenset())


def as_published(data: dict[str, Any], keep_original_text: bool) -> dict[str, Any]:
    """What an entry point publishes to `intake.raw`: the contact masked, or as written
    where INTAKE_KEEP_ORIGINAL_TEXT is set (tickets.events is masked either way)."""
    return data if keep_original_text else masked_contact(data)[0]
