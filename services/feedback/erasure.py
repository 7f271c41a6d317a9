"""Feedback's part of a customer's erasure (deskstream/erasure.py): the surveys planned
for the customer's tickets (name, address, thread) are deleted, and each ticket's facts
keep their figures (times, skill, score) but lose the customer's words (the survey
comment), so support's metrics stay whole. Plain functions of the rows; the facts hop
in services/feedback/app.py applies them.

Not erased: the `customers` table of the surveys hop (feedback.surveys, keyed by the
customer id), which holds only when the customer was last surveyed under that
pseudonymous id (README, "Erasure and retention").
"""
from __future__ import annotations

from typing import Any, Iterable

from deskstream.erasure import Erasure


def survey_is_theirs(ticket_id: str, survey: dict[str, Any], erasure: Erasure) -> bool:
    contact = survey.get("contact") or {}
    return (ticket_id in erasure.ticket_ids or contact.get("customer_id") in erasure.customer_ids
            or erasure.covers_recipient(contact.get("recipient")))


def surveys_to_delete(rows: Iterable[tuple[str, dict[str, Any]]], erasure: Erasure) -> list[str]:
    return [ticket_id for ticket_id, survey in rows if survey_is_theirs(ticket_id, survey, erasure)]


def scrubbed_facts(facts: dict[str, Any]) -> dict[str, Any] | None:
    """A ticket's facts without the customer's words, or None if there are none to remove."""
    survey = facts.get("survey")
    if not survey or survey.get("comment") is None:
        return None
    return {**facts, "survey": {**survey, "comment": None}}


def facts_to_scrub(rows: Iterable[tuple[str, dict[str, Any]]], erased_tickets: Iterable[str]) -> dict[str, dict[str, Any]]:
    erased = set(erased_tickets)
    changed = {ticket_id: scrubbed_facts(facts) for ticket_id, facts in rows if ticket_id in erased}
    return {ticket_id: facts for ticket_id, facts in changed.items() if facts is not None}
