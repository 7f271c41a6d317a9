"""Who gets a ticket, and how long the customer should expect to wait.

Pure functions over the roster and the open tickets, so that the router's choice
for a ticket is the same whenever it is made again from the same state (a replay
after a crash then re-sends the same assignment, which consumers drop by id).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from statistics import median
from typing import Any, Iterable, Mapping

from services.router.roster import Agent
from services.router.sla import DEFAULT_FIRST_RESPONSE_MINUTES, waiting_since

# What the wait estimate assumes until the router has seen tickets of a skill handled:
# minutes a ticket holds one of an agent's places, by priority...
HANDLING_MINUTES = {"P1": 10, "P2": 15, "P3": 20, "P4": 30}
# ...and minutes from a ticket's assignment to its first answer.
RESPONSE_MINUTES = 2.0
# First-response targets by priority, in minutes: what we can say when nobody who could
# take the ticket is online.
FIRST_RESPONSE_TARGET = DEFAULT_FIRST_RESPONSE_MINUTES
# How many recent times per skill the estimate is drawn from.
RECENT = 50
PRIORITY_ORDER = {"P1": 0, "P2": 1, "P3": 2, "P4": 3}
# A queued ticket climbs one priority level for every this many minutes it waits.
AGING_MINUTES = 30.0


@dataclass(frozen=True, slots=True)
class Decision:
    agent: Agent | None
    estimated_wait_minutes: int
    queue_position: int


def loads(open_tickets: Iterable[Mapping[str, object]]) -> Counter[str]:
    """Open tickets held by each agent."""
    return Counter(str(t["agent_id"]) for t in open_tickets if t.get("status") == "assigned" and t.get("agent_id"))


def choose_agent(roster: Iterable[Agent], held: Mapping[str, int], skill: str, tier: str, language: str) -> Agent | None:
    """The eligible agent with free capacity and the fewest tickets (lowest share of
    capacity, then id: deterministic). First-line work goes to first-line agents while
    one is free, so that specialists stay free for what only they can do. Falls back to
    `general` when no agent has the skill."""
    agents = list(roster)
    for wanted in (skill, "general"):
        eligible = [a for a in agents if a.can_take(wanted, tier, language) and held.get(a.id, 0) < a.max_concurrent]
        if eligible:
            return min(eligible, key=lambda a: (a.tier != tier, held.get(a.id, 0) / a.max_concurrent, a.id))
    return None


def estimate_wait(priority: str, position: int, places: int, recent: Mapping[str, Any] | None = None) -> int:
    """Minutes until a first answer, from what agents of the skill have lately done.

    Given to an agent at once (`position` 0): the time such tickets have lately waited
    for their first answer once assigned. In the queue: the `places` of the agents who
    can take it free up one every `handling / places` minutes, so the ticket at
    `position` waits that many turns, then for its answer. With nobody online who could
    take it, the first-response target is all that can honestly be said."""
    recent = recent or {}
    response = median(recent["response_minutes"]) if recent.get("response_minutes") else RESPONSE_MINUTES
    if position == 0:
        return max(1, math.ceil(response))
    if places <= 0:
        return FIRST_RESPONSE_TARGET[priority]
    handling = median(recent["handling_minutes"]) if recent.get("handling_minutes") else HANDLING_MINUTES[priority]
    return max(1, math.ceil(position * handling / places + response))


def remember(recent: Mapping[str, Any] | None, kind: str, minutes: float) -> dict[str, Any]:
    """`recent` with one more time of `kind` (response_minutes, handling_minutes), the
    oldest dropped past RECENT."""
    recent = dict(recent or {})
    recent[kind] = [*recent.get(kind, []), round(max(minutes, 0.0), 2)][-RECENT:]
    return recent


def decide(
    roster: tuple[Agent, ...], open_tickets: Iterable[Mapping[str, object]], skill: str, priority: str, tier: str, language: str,
    recent: Mapping[str, Any] | None = None,
) -> Decision:
    tickets = list(open_tickets)
    held = loads(tickets)
    agent = choose_agent(roster, held, skill, tier, language)
    if agent is not None:
        return Decision(agent, estimate_wait(priority, 0, 0, recent), 0)
    able = [a for a in roster if a.can_take(skill, tier, language)] or [a for a in roster if a.can_take("general", tier, language)]
    ahead = sum(1 for t in tickets if t.get("status") == "queued" and PRIORITY_ORDER[str(t["priority"])] <= PRIORITY_ORDER[priority])
    places = sum(a.max_concurrent for a in able)
    return Decision(None, estimate_wait(priority, ahead + 1, places, recent), ahead + 1)


def effective_rank(ticket: Mapping[str, object], now: datetime | None, aging_minutes: float) -> int:
    """The priority a waiting ticket competes with: one level higher for every
    `aging_minutes` it has waited, so that a P4 is never starved by a stream of P2s."""
    rank = PRIORITY_ORDER[str(ticket["priority"])]
    if now is None or aging_minutes <= 0:
        return rank
    waited = (now - datetime.fromisoformat(waiting_since(ticket).replace("Z", "+00:00"))).total_seconds() / 60
    return max(0, rank - int(max(waited, 0) // aging_minutes))


def next_in_queue(open_tickets: Iterable[Mapping[str, object]], now: datetime | None = None,
                  aging_minutes: float = AGING_MINUTES) -> list[Mapping[str, object]]:
    """Queued tickets in the order they should be served: priority raised by age, then
    arrival. Without `now`, no aging (the order of arrival within each priority)."""
    queued = [t for t in open_tickets if t.get("status") == "queued"]
    return sorted(queued, key=lambda t: (effective_rank(t, now, aging_minutes), waiting_since(t), str(t["ticket_id"])))

