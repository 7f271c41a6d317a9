"""Per-sender limits: one customer flooding SMS, WhatsApp or e-mail opens one ticket,
or a few, not hundreds, and what they send past their limit is kept in `deadletter`
with the reason and counted, never dropped in silence.

Where each limit is kept, and why there:

- **SMS and WhatsApp: in intake's tickets hop**, in the thread's row of the `threads`
  table. The thread key is `sms:+number` or `whatsapp:+number`, so one thread is one
  sender and already one ticket: the flood's first messages join that ticket, and past
  the limit the rest go to `deadletter` instead of onto it. The bucket's clock is the
  contacts' own `received_at`, and its state commits in the hop's transaction with the
  offsets, so a restart, a replay or a rebalance to another worker decides exactly as
  the first run did, and every intake worker shares one count per sender (the webhook's
  in-memory limits are per worker). The webhook has already answered Twilio 200: the
  message is stored (in `deadletter`), and Twilio has nothing to retry.
- **E-mail: at the mailbox reader** (`MailboxIntake`), keyed by the From address. A mail
  thread is a conversation, not a sender: 500 mails with 500 subjects are 500 threads
  on as many partitions, so no thread row can count them, while the one reader of the
  mailbox sees every mail of a sender. Past the limit a mail is dead-lettered with the
  reason and moved, whole, to the quarantine folder, where an operator can still take
  it. The count is in memory: a restart of intake begins it again, which a flood that
  needs intake restarted to pass is welcome to. A forged From can make mail in another
  customer's name count against them: it is quarantined, not lost.

Chat is limited at the API, per session and per address (429 with Retry-After), where
the page sees it and retries; nothing sent on a chat session is dead-lettered here.
"""
from __future__ import annotations

from typing import Any

from deskstream.events import Event, parse_timestamp
from deskstream.limits import Bucket, KeyedLimiter, Limit
from deskstream.pipeline import deadletter_event
from deskstream.topics import INTAKE_RAW

from services.intake.normaliser import Thread

LIMITED_CHANNELS = frozenset({"sms", "whatsapp"})
METRIC = "sender over limit"


def over_sender_limit(contact: dict[str, Any], thread: Thread, limit: Limit) -> str | None:
    """Why this contact is over its sender's limit, or None; takes its token from the
    thread's allowance (updated in place) when it is not.

    A contact the thread has already seen is not counted (None): a Twilio retry or a
    replay repeats an id the normaliser drops, and it must not use up the sender's
    allowance. Only SMS and WhatsApp threads are limited (see the module docstring).
    """
    if limit.unlimited or contact["channel"] not in LIMITED_CHANNELS or contact["contact_id"] in thread.recent_contacts:
        return None
    now = parse_timestamp(contact["received_at"]).timestamp()
    kept = thread.allowance
    bucket = Bucket(float(kept["tokens"]), float(kept["updated"])) if kept else Bucket.full(limit.burst, now)
    wait = bucket.take(now, limit.rate, limit.burst)
    if wait > 0:
        return f"{METRIC}: this {contact['channel']} sender wrote more than {limit}; kept here, not on the ticket"
    thread.allowance = {"tokens": round(bucket.tokens, 6), "updated": bucket.updated}
    return None


def held_back(contact: Event, thread: Thread, limit: Limit, source: str) -> Event | None:
    """The `deadletter.recorded` for a contact over its sender's limit (the whole event,
    with the reason), or None when it goes on to the normaliser. Keyed, like the hop's
    other dead letters, by the topic it was read from."""
    reason = over_sender_limit(contact.data, thread, limit)
    if reason is None:
        return None
    return deadletter_event(source, INTAKE_RAW, reason, contact.encode(), contact.data["thread_key"].encode())


class MailSenders:
    """The e-mail senders' allowances at the mailbox reader, by From address (lower
    case), for at most `max_keys` addresses at a time."""

    def __init__(self, limit: Limit, max_keys: int = 100_000) -> None:
        self.limit = limit
        self._limiter = KeyedLimiter(limit, max_keys)

    def over(self, address: str) -> str | None:
        """Why this sender's next mail is over the limit, or None (its token taken)."""
        if self._limiter.take(address.lower()) <= 0:
            return None
        return f"{METRIC}: this address sent more than {self.limit}; the mail is in the quarantine folder"
