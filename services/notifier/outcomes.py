"""What one attempt at handing a message to a provider came to.

The notifier's outbox records a claim ("about to send request R") before each send
and the outcome after it, and does its own retrying with backoff. So a sender makes
exactly one attempt and reports which of four things happened, because each asks
the outbox for something different:

- ``sent``: the provider took the message. Record it; never send it again.
- ``retry``: it certainly did not go out, and another attempt later may work (a rate
  limit, a server error before anything was created, a connection that could not be
  opened). Back off and try again.
- ``failed``: it did not go out and never will in this form (an unsubscribed or
  invalid recipient, a mailbox that does not exist). Record it; do not try again.
- ``in_doubt``: the request, or the mail's content, reached the provider and then the
  answer was lost (a timeout or a dropped connection). Sending again could send it
  twice, so the outbox must first find out (for SMS: `TwilioSender.find_sent`).

`detail` goes into the receipt that agents and customers' records see, so it is short
and never holds the message text or a full address: addresses and numbers that a
provider echoes back in an error are masked by `deskstream.sensitive.mask_contact_details`,
the same masking every log line gets.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from deskstream.sensitive import mask_contact_details

Status = Literal["sent", "retry", "failed", "in_doubt"]

_SPACE = re.compile(r"\s+")


def brief(text: str, limit: int = 200) -> str:
    """A provider's answer fit for a receipt: on one line, at most `limit` characters, and
    the recipient that providers echo in some errors ("<ana@example.com>: Recipient
    address rejected", "The 'To' number +34600111222 is not a valid phone number") masked."""
    text = _SPACE.sub(" ", mask_contact_details(text)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One classified attempt (see the module's docstring for what each status asks of the outbox)."""

    status: Status
    detail: str  # short, for the receipt; never the message text or a full address
    provider_message_id: str | None = None  # Twilio's message sid; for mail, the Message-ID
    error_code: int | None = None  # Twilio's error code (21610: unsubscribed), or the SMTP reply code

    @classmethod
    def sent(cls, detail: str, provider_message_id: str | None = None) -> "Outcome":
        return cls("sent", detail, provider_message_id)

    @classmethod
    def retry(cls, detail: str, error_code: int | None = None) -> "Outcome":
        return cls("retry", detail, error_code=error_code)

    @classmethod
    def failed(cls, detail: str, error_code: int | None = None) -> "Outcome":
        return cls("failed", detail, error_code=error_code)

    @classmethod
    def in_doubt(cls, detail: str) -> "Outcome":
        return cls("in_doubt", detail)
