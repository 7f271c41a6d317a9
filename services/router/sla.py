"""Service-level targets: how soon a ticket must get its first answer and be resolved,
by priority, and which open tickets have missed one.

Pure arithmetic over the dispatcher's ticket records and a time. The dispatcher runs
it on each `dispatch.tick` with the tick's own time, so the timers need no state of
their own: they survive any restart because the deadlines are computed from what the
ticket table already holds (arrival, priority, first answer), and a replay of the
ticks finds the same breaches, which each ticket records so that none is announced
twice.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping

FIRST_RESPONSE = "first_response"
RESOLUTION = "resolution"
DEFAULT_FIRST_RESPONSE_MINUTES = {"P1": 15, "P2": 60, "P3": 240, "P4": 480}
DEFAULT_RESOLUTION_MINUTES = {"P1": 240, "P2": 480, "P3": 1440, "P4": 4320}


class TargetsError(ValueError):
    """A target setting that is not `P1=15,P2=60,...` with every priority."""


@dataclass(frozen=True, slots=True)
class Targets:
    first_response_minutes: Mapping[str, float]
    resolution_minutes: Mapping[str, float]

    @classmethod
    def parse(cls, first_response: str, resolution: str) -> "Targets":
        return cls(_minutes(first_response, DEFAULT_FIRST_RESPONSE_MINUTES), _minutes(resolution, DEFAULT_RESOLUTION_MINUTES))

    def minutes(self, target: str, priority: str) -> float:
        return (self.first_response_minutes if target == FIRST_RESPONSE else self.resolution_minutes)[priority]


def _minutes(raw: str, default: Mapping[str, float]) -> dict[str, float]:
    if not raw.strip():
        return dict(default)
    try:
        parsed = {key.strip(): float(value) for key, value in (part.split("=") for part in raw.split(","))}
    except ValueError:
        raise TargetsError(f"{raw!r} is not P1=minutes,P2=minutes,...") from None
    if set(parsed) != set(default):
        raise TargetsError(f"{raw!r} must set exactly {', '.join(sorted(default))}")
    return parsed


@dataclass(frozen=True, slots=True)
class Breach:
    ticket_id: str
    target: str  # first_response or resolution
    priority: str
    due_at: str
    agent_id: str | None


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def format_time(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def due(ticket: Mapping[str, Any], target: str, targets: Targets) -> datetime:
    """When `target` falls due: counted from arrival, in the ticket's current priority."""
    return parse_time(str(ticket["received_at"])) + timedelta(minutes=targets.minutes(target, str(ticket["priority"])))


def missed(open_tickets: Iterable[Mapping[str, Any]], now: datetime, targets: Targets) -> list[Breach]:
    """The targets the open tickets have missed by `now` and not yet recorded."""
    found = []
    for ticket in open_tickets:
        recorded = set(ticket.get("breaches", ()))
        pending = [RESOLUTION] if ticket.get("answered") else [FIRST_RESPONSE, RESOLUTION]
        for target in pending:
            deadline = due(ticket, target, targets)
            if target not in recorded and now >= deadline:
                found.append(Breach(str(ticket["ticket_id"]), target, str(ticket["priority"]), format_time(deadline), ticket.get("agent_id")))
    return sorted(found, key=lambda b: (b.due_at, b.ticket_id, b.target))
