"""What the ops dashboard shows, as data: the live queues, SLA breaches, incidents,
and CSAT and response times day by day. Built on request from the facts every worker
reads (`ticket_facts` and `incidents` replicas), so any feedback worker answers."""
from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any, Callable, Generic, Iterable, TypeVar

from deskstream.events import parse_timestamp, timestamp

from services.feedback import metrics

T = TypeVar("T")

DAYS_SHOWN = 14
SUSPICIONS_SHOWN = 20
PRIORITIES = ("P1", "P2", "P3", "P4")


def is_open(facts: dict[str, Any]) -> bool:
    return not metrics.is_resolved(facts)


def queues(all_facts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Open tickets by skill and priority, and how many of them wait for an agent."""
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for facts in all_facts:
        if not is_open(facts) or "priority" not in facts:
            continue
        key = (facts.get("skill") or "unclassified", facts["priority"])
        cell = cells.setdefault(key, {"skill": key[0], "priority": key[1], "open": 0, "waiting": 0})
        cell["open"] += 1
        if not facts.get("agent_id") or (facts.get("reopened_at") and not _after(facts.get("assigned_at"), facts["reopened_at"])):
            cell["waiting"] += 1
    return sorted(cells.values(), key=lambda c: (c["priority"], c["skill"]))


def _after(stamp: str | None, than: str) -> bool:
    return stamp is not None and parse_timestamp(stamp) > parse_timestamp(than)


def breaches(all_facts: list[dict[str, Any]], today: str) -> dict[str, int]:
    return {
        "open_breached": sum(1 for f in all_facts if f.get("breaches") and is_open(f)),
        "today": sum(1 for f in all_facts if (f.get("breached_at") or "").startswith(today)),
    }


def incident_fold(incident: dict[str, Any] | None, event_type: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """What the dashboard keeps of an incident (or a suspicion) after one of its events."""
    if event_type == "incident.declared":
        return incident or {"incident_id": data["incident_id"], "kind": "incident", "status": "active", "service": data["service"],
                            "region": data.get("region"), "skill": data.get("skill"), "message": data["message"],
                            "expected_fix_at": data.get("expected_fix_at"), "declared_at": data["at"]}
    if event_type == "incident.updated" and incident and incident["status"] == "active":
        fix = data["expected_fix_at"] if "expected_fix_at" in data else incident["expected_fix_at"]
        return {**incident, "message": data["message"], "expected_fix_at": fix}
    if event_type == "incident.resolved" and incident and incident["status"] == "active":
        return {**incident, "status": "resolved", "resolved_at": data["at"]}
    if event_type == "incident.suspected":
        return incident or {"suspicion_id": data["suspicion_id"], "kind": "suspicion", "dimension": data["dimension"],
                            "value": data["value"], "count": data["count"], "detected_at": data["detected_at"]}
    return None


def snapshot(all_facts: Iterable[dict[str, Any]], incidents: Iterable[dict[str, Any]], now: datetime) -> dict[str, Any]:
    facts = list(all_facts)
    known = list(incidents)
    first_day = (now - timedelta(days=DAYS_SHOWN - 1)).strftime("%Y-%m-%d")
    days = {row["day"]: row for row in metrics.summary(facts, by="day", since=first_day)}
    return {
        "generated_at": timestamp(now),
        "queues": queues(facts),
        "breaches": breaches(facts, now.strftime("%Y-%m-%d")),
        "incidents": {
            "active": sorted((i for i in known if i.get("kind") == "incident" and i["status"] == "active"),
                             key=lambda i: i["declared_at"], reverse=True),
            "suspected": sorted((i for i in known if i.get("kind") == "suspicion"),
                                key=lambda i: i["detected_at"], reverse=True)[:SUSPICIONS_SHOWN],
        },
        "days": [
            {"day": day, **{field: days.get(day, {}).get(field) for field in (
                "tickets", "surveys_answered", "csat", "first_response_seconds_median", "resolution_seconds_median")}}
            for day in (
                (now - timedelta(days=n)).strftime("%Y-%m-%d") for n in range(DAYS_SHOWN - 1, -1, -1))
        ],
    }


class Fresh(Generic[T]):
    """`make()`'s value, made again at most once every `seconds`: what is read on every
    request (a dashboard, a scrape) but costs a pass over every ticket's facts."""

    def __init__(self, make: Callable[[], T], seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.make = make
        self.seconds = seconds
        self.clock = clock
        self._made: tuple[float, T] | None = None

    def __call__(self) -> T:
        now = self.clock()
        if self._made is None or now - self._made[0] >= self.seconds:
            self._made = (now, self.make())
        return self._made[1]
