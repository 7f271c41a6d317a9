"""Feedback's part of a customer's erasure (deskstream/erasure.py): the surveys planned
for the customer's tickets (name, address, thread) are deleted, and each ticket's facts
keep their figures (times, skill, score) but lose the customer's words (the survey
comment), so support's metrics stay whole. Plain functions of the rows; the facts hop
in services/feedback/app.py applies them.

The surveys hop's `customers` table (keyed by customer id: when each was last
surveyed) is on feedback.surveys: the facts hop sends it `survey.customer_erased` keyed
by each of the customer's ids, the erasure's and those its surveys held.
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


def customer_ids_of(rows: Iterable[tuple[str, dict[str, Any]]], tickets: Iterable[str]) -> set[str]:
    """The customer ids the surveys of these tickets were for (a chat customer's is not
    one the erasure names)."""
    wanted = set(tickets)
    return {survey["contact"]["customer_id"] for ticket_id, survey in rows
            if ticket_id in wanted and str((survey.get("contact") or {}).get("customer_id")).startswith("cus-")}


def customers_to_delete(rows: Iterable[tuple[str, dict[str, Any]]], erasure: Erasure) -> list[str]:
    return [key for key, _ in rows if key in erasure.customer_ids]


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
