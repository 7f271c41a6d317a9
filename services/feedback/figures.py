"""Support figures from what feedback remembers of each ticket.

Facts are kept per ticket (the table is keyed like `tickets.events`, so each worker
holds the tickets of its own partitions) and the figures are computed from them on
request: nothing is counted twice when an event is replayed.
"""
from __future__ import annotations

from collections import Counter
from statistics import median
from typing import Any, Iterable

from services.feedback.metrics import seconds_between


def record(facts: dict[str, Any] | None, event_type: str, data: dict[str, Any], time: str) -> dict[str, Any] | None:
    """The ticket's facts after one more event, or None when the event changes nothing."""
    if event_type == "ticket.created":
        return None if facts else {"ticket_id": data["ticket_id"], "channel": data["channel"], "created_at": time}
    if facts is None:
        return None
    if event_type == "ticket.classified" and "priority" not in facts:
        return {**facts, "priority": data["priority"], "skill": data["skill"]}
    if event_type == "ticket.assigned" and "assigned_at" not in facts:
        return {**facts, "assigned_at": time, "agent_id": data["agent_id"]}
    return None


def percentile(samples: list[float], share: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def daily(all_facts: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per day: tickets by channel and priority, and seconds from creation to assignment."""
    days: dict[str, dict[str, Any]] = {}
    for facts in all_facts:
        day = days.setdefault(facts["created_at"][:10], {"channel": Counter(), "priority": Counter(), "waits": []})
        day["channel"][facts["channel"]] += 1
        if "priority" in facts:
            day["priority"][facts["priority"]] += 1
        if "assigned_at" in facts:
            day["waits"].append(seconds_between(facts["created_at"], facts["assigned_at"]))
    return {
        name: {
            "tickets": sum(day["channel"].values()),
            "by_channel": dict(day["channel"]),
            "by_priority": dict(day["priority"]),
            "assigned": len(day["waits"]),
            "seconds_to_assign_median": median(day["waits"]) if day["waits"] else None,
            "seconds_to_assign_p90": percentile(day["waits"], 0.9),
        }
        for name, day in sorted(days.items())
    }
