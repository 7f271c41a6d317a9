"""When to ask a customer how their ticket went, and the rules against survey fatigue.

A survey goes out a while after the resolution (a reopening before then cancels it:
asking how it went while it is still going badly would be worse than not asking), at
most once per customer per period (customers who get a survey after every ticket stop
answering them), never to those who opted out, and never for tickets nobody really
handled (spam, auto-closed). Answers are accepted for a limited window after sending.
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import timedelta, timezone

from deskstream.events import parse_timestamp, timestamp


@dataclass(frozen=True, slots=True)
class SurveyRules:
    delay_seconds: float        # after ticket.resolved (e.g. 3600); a reopen before then cancels
    fatigue_days: float         # at most one survey per customer per this period (e.g. 30)
    answer_window_hours: float  # answers accepted this long after sending (e.g. 72); last one wins within it
    skip_tags: frozenset[str] = frozenset({"spam", "auto_closed"})


def due_at(resolved_at: str, rules: SurveyRules) -> str:
    """When the survey of a resolution goes out: the delay gives a reopening time to happen first."""
    return timestamp(parse_timestamp(resolved_at) + timedelta(seconds=rules.delay_seconds))


def skip_reason(*, customer: dict | None, ticket: dict, now: str, rules: SurveyRules) -> str | None:
    """Why not to survey this ticket's customer now (None: go ahead).

    `customer` is what feedback keeps per customer, {"last_surveyed_at": iso|None,
    "opted_out": bool} (None or missing keys: never surveyed, not opted out). `ticket`
    may have "tags" (a tag in `rules.skip_tags` gives the tag as the reason, "_" as "-"),
    "resolution" ("auto_closed": "auto-closed") and "reopened_after_resolution".

    The customer's wish comes first, then the reasons that hold whatever the date (the
    ticket's), then fatigue, which only defers to another ticket: the reason logged is
    the one that would still stand if the others went away. Fatigue ends exactly
    `fatigue_days` after the last survey: surveyed on the 1st with 30 days, the 31st is fine."""
    customer = customer or {}
    if customer.get("opted_out"):
        return "opted out"
    skipped = sorted(rules.skip_tags.intersection(ticket.get("tags") or ()))
    if skipped:
        return skipped[0].replace("_", "-")
    if ticket.get("resolution") == "auto_closed":
        return "auto-closed"
    if ticket.get("reopened_after_resolution"):
        return "reopened"
    last = customer.get("last_surveyed_at")
    if last is not None and parse_timestamp(now) - parse_timestamp(last) < timedelta(days=rules.fatigue_days):
        day = parse_timestamp(last).astimezone(timezone.utc).date().isoformat()
        return f"surveyed on {day} (fatigue: one per {rules.fatigue_days:g} days)"
    return None


def answer_open(sent_at: str, now: str, rules: SurveyRules) -> bool:
    """Whether an answer given at `now` still counts: for `answer_window_hours` after
    sending, the end excluded (as intake treats the survey's `expires_at`). An answer
    stamped before `sent_at` is another clock's skew, not a reason to refuse it."""
    return parse_timestamp(now) < parse_timestamp(sent_at) + timedelta(hours=rules.answer_window_hours)


def survey_id(ticket_id: str, resolved_at: str) -> str:
    """The survey of one resolution: "S-" and 12 base32 characters of a hash of both.

    Stable, so that a replayed ticket.resolved schedules the same survey (and every event
    about it carries the same id), while a second resolution after a reopening gets a
    survey of its own. The time is normalised first: the same instant, the same id."""
    key = f"{ticket_id}\x1f{parse_timestamp(resolved_at).astimezone(timezone.utc).isoformat()}"
    digest = hashlib.sha256(key.encode()).digest()
    return "S-" + base64.b32encode(digest).decode().lower()[:12]
