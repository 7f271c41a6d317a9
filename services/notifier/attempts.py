"""The life of one requested message in the notifier's outbox, as data.

    requested ──> pending (not before the end of the recipient's quiet hours)
    pending ──claim──> sending ──outcome──> sent | failed | pending again after a backoff
    sending, found after a crash ──> sent (the provider has it) | pending (it certainly
        went nowhere) | in_doubt (nobody can tell: it is not sent again)
    pending ──a newer notice for the same slot (incident, recipient)──> superseded

The claim is recorded (committed to Kafka) before the provider is called and never
made twice: that is what keeps every message at most once across crashes and
rebalances. A record is kept per request id in the `deliveries` table; once it is
final only its state is kept, so that a repeated request is still recognised.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from deskstream.events import parse_timestamp, timestamp

from services.notifier.outcomes import Outcome

PENDING = "pending"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
IN_DOUBT = "in_doubt"
SUPERSEDED = "superseded"
FINAL = frozenset({SENT, FAILED, IN_DOUBT, SUPERSEDED})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int  # per message, counting the first
    backoff_seconds: float  # before the second attempt; doubled after each
    max_backoff_seconds: float = 300.0

    def backoff(self, attempts: int) -> float:
        """The pause after `attempts` failed attempts."""
        return min(self.max_backoff_seconds, self.backoff_seconds * 2 ** max(attempts - 1, 0))


def pending(request: dict[str, Any], not_before: datetime | None) -> dict[str, Any]:
    return {"state": PENDING, "request": request, "attempts": 0, "not_before": timestamp(not_before) if not_before else None}


def final(state: str, at: datetime, attempts: int = 0) -> dict[str, Any]:
    return {"state": state, "at": timestamp(at), "attempts": attempts}


def is_pending(record: dict[str, Any] | None) -> bool:
    return bool(record) and record.get("state") == PENDING


def is_claimed(record: dict[str, Any] | None) -> bool:
    return bool(record) and record.get("state") == SENDING


def known(record: dict[str, Any] | None) -> bool:
    """Whether a request with this record was seen before (records of older notifiers
    carry `status` rather than `state`)."""
    return bool(record) and ("state" in record or "status" in record)


def not_before(record: dict[str, Any]) -> datetime | None:
    value = record.get("not_before")
    return parse_timestamp(value) if value else None


def new_claim() -> str:
    """A name for one claim: what settles a claim says which one it settles."""
    return secrets.token_hex(8)


def claimed(record: dict[str, Any], at: datetime, claim: str | None) -> dict[str, Any]:
    return {**record, "state": SENDING, "attempts": record["attempts"] + 1, "claimed_at": timestamp(at), "claim": claim}


def unclaimed(record: dict[str, Any]) -> dict[str, Any]:
    """A claim whose send certainly never started (its commit was not confirmed, so the
    sender held back): pending again, the attempt not counted."""
    return {**record, "state": PENDING, "attempts": max(record["attempts"] - 1, 0), "claim": None}


def finished(record: dict[str, Any], outcome: Outcome, at: datetime, policy: RetryPolicy) -> tuple[dict[str, Any], str | None, str]:
    """The record after an attempt, the receipt's status (None while it is pending
    again) and the receipt's detail."""
    attempts = record["attempts"]
    if outcome.status == "retry":
        if attempts < policy.max_attempts:
            later = at + timedelta(seconds=policy.backoff(attempts))
            return {**record, "state": PENDING, "not_before": timestamp(later), "last_detail": outcome.detail}, None, outcome.detail
        return final(FAILED, at, attempts), FAILED, f"{outcome.detail} (temporary, gave up after {attempts} attempts)"
    said = {SENT: f"attempt {attempts}", FAILED: f"permanent, attempt {attempts}"}.get(outcome.status)
    return final(outcome.status, at, attempts), outcome.status, f"{outcome.detail} ({said})" if said else outcome.detail
