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

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

FIRST_RESPONSE = "first_response"
RESOLUTION = "resolution"
DEFAULT_FIRST_RESPONSE_MINUTES = {"P1": 15, "P2": 60, "P3": 240, "P4": 480}
DEFAULT_RESOLUTION_MINUTES = {"P1": 240, "P2": 480, "P3": 1440, "P4": 4320}


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOURS_FORMAT = re.compile(r"^\s*(?P<days>[a-z,\-]+)\s+(?P<opens>\d{1,2}:\d{2})-(?P<closes>\d{1,2}:\d{2})\s+(?P<zone>\S+)\s*$")


class TargetsError(ValueError):
    """A target setting that is not `P1=15,P2=60,...` with every priority, or business
    hours that are not `Mon-Fri 09:00-18:00 Europe/Madrid`."""


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """When the support desk's clock runs: these weekdays, from `opens` to `closes`,
    in `zone` (daylight saving included)."""

    days: frozenset[int]  # 0 is Monday
    opens: time
    closes: time
    zone: ZoneInfo

    @classmethod
    def parse(cls, raw: str) -> "BusinessHours":
        """`Mon-Fri 09:00-18:00 Europe/Madrid`; days also as a list (`Mon,Wed,Sat`)."""
        found = HOURS_FORMAT.match(raw.lower())
        if found is None:
            raise TargetsError(f"{raw!r} is not like 'Mon-Fri 09:00-18:00 Europe/Madrid'")
        try:
            days = frozenset(day for part in found["days"].split(",") for day in _day_range(part))
            opens, closes = time.fromisoformat(found["opens"].zfill(5)), time.fromisoformat(found["closes"].zfill(5))
            zone = ZoneInfo(raw.split()[-1])
        except (ValueError, ZoneInfoNotFoundError) as error:
            raise TargetsError(f"{raw!r}: {error}") from None
        if not days or opens >= closes:
            raise TargetsError(f"{raw!r}: no day, or the desk closes before it opens")
        return cls(days, opens, closes, zone)

    def add(self, start: datetime, minutes: float) -> datetime:
        """`minutes` of open desk time after `start`: a ticket that arrives at night
        starts counting when the desk opens, and a target runs over to the next open day."""
        remaining = timedelta(minutes=minutes)
        local = start.astimezone(self.zone)
        day = local.date()
        for _ in range(366 * 20):  # a bound: every open week moves the count on
            if day.weekday() in self.days:
                opens, closes = self._open(day, self.opens), self._open(day, self.closes)
                begin = max(opens, local)
                if begin < closes:
                    if begin + remaining <= closes:
                        return (begin + remaining).astimezone(timezone.utc)
                    remaining -= closes - begin
            day += timedelta(days=1)
        raise TargetsError("business hours too short to ever meet this target")

    def _open(self, day: date, at: time) -> datetime:
        return datetime.combine(day, at, self.zone)


def _day_range(part: str) -> list[int]:
    first, _, last = part.strip().partition("-")
    start = DAYS.index(first[:3])
    end = DAYS.index(last[:3]) if last else start
    return list(range(start, end + 1)) if start <= end else [*range(start, 7), *range(0, end + 1)]


@dataclass(frozen=True, slots=True)
class Targets:
    first_response_minutes: Mapping[str, float]
    resolution_minutes: Mapping[str, float]
    business_hours: BusinessHours | None = None  # None: the clock always runs
    around_the_clock: frozenset[str] = field(default_factory=lambda: frozenset({"P1"}))  # never wait for opening time

    @classmethod
    def parse(cls, first_response: str, resolution: str, business_hours: str = "", around_the_clock: str = "P1") -> "Targets":
        hours = BusinessHours.parse(business_hours) if business_hours.strip() else None
        always = frozenset(p.strip() for p in around_the_clock.split(",") if p.strip())
        if always - set(DEFAULT_FIRST_RESPONSE_MINUTES):
            raise TargetsError(f"{around_the_clock!r} is not a list of priorities")
        return cls(_minutes(first_response, DEFAULT_FIRST_RESPONSE_MINUTES), _minutes(resolution, DEFAULT_RESOLUTION_MINUTES),
                   hours, always)

    def minutes(self, target: str, priority: str) -> float:
        return (self.first_response_minutes if target == FIRST_RESPONSE else self.resolution_minutes)[priority]

    def deadline(self, start: datetime, target: str, priority: str) -> datetime:
        minutes = self.minutes(target, priority)
        if self.business_hours is None or priority in self.around_the_clock:
            return start + timedelta(minutes=minutes)
        return self.business_hours.add(start, minutes)


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


def waiting_since(ticket: Mapping[str, Any]) -> str:
    """When the customer started waiting: arrival, or the last reopening."""
    return str(ticket.get("reopened_at") or ticket["received_at"])


def due(ticket: Mapping[str, Any], target: str, targets: Targets) -> datetime:
    """When `target` falls due: counted from arrival (or reopening), in the ticket's
    current priority, in business hours if the desk keeps them."""
    return targets.deadline(parse_time(waiting_since(ticket)), target, str(ticket["priority"]))


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
