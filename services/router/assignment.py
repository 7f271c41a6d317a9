"""Who gets a ticket, and how long the customer should expect to wait.

Pure functions over the roster and the open tickets, so that the router's choice
for a ticket is the same whenever it is made again from the same state (a replay
after a crash then re-sends the same assignment, which consumers drop by id).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Mapping

from services.router.roster import Agent

# Minutes an agent takes for one ticket, by priority: what the wait estimate assumes.
HANDLING_MINUTES = {"P1": 10, "P2": 15, "P3": 20, "P4": 30}
# First-response targets by priority, in minutes: the promise we make at worst.
FIRST_RESPONSE_TARGET = {"P1": 15, "P2": 60, "P3": 240, "P4": 480}
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


def estimate_wait(priority: str, held: int, queue_ahead: int, agents_for_skill: int) -> int:
    """Minutes until a first answer: the tickets ahead, shared among the agents who
    can take them, each taking the handling time of this priority; capped by the target."""
    ahead = held + queue_ahead
    minutes = (ahead * HANDLING_MINUTES[priority]) // max(agents_for_skill, 1) + 2
    return min(minutes, FIRST_RESPONSE_TARGET[priority])


def decide(
    roster: tuple[Agent, ...], open_tickets: Iterable[Mapping[str, object]], skill: str, priority: str, tier: str, language: str
) -> Decision:
    tickets = list(open_tickets)
    held = loads(tickets)
    agent = choose_agent(roster, held, skill, tier, language)
    able = [a for a in roster if a.can_take(skill, tier, language)] or [a for a in roster if a.can_take("general", tier, language)]
    if agent is not None:
        return Decision(agent, estimate_wait(priority, held.get(agent.id, 0), 0, 1), 0)
    ahead = sum(1 for t in tickets if t.get("status") == "queued" and PRIORITY_ORDER[str(t["priority"])] <= PRIORITY_ORDER[priority])
    busy = sum(held.get(a.id, 0) for a in able)
    return Decision(None, estimate_wait(priority, busy, ahead, len(able)), ahead + 1)


def effective_rank(ticket: Mapping[str, object], now: datetime | None, aging_minutes: float) -> int:
    """The priority a waiting ticket competes with: one level higher for every
    `aging_minutes` it has waited, so that a P4 is never starved by a stream of P2s."""
    rank = PRIORITY_ORDER[str(ticket["priority"])]
    if now is None or aging_minutes <= 0:
        return rank
    waited = (now - datetime.fromisoformat(str(ticket["received_at"]).replace("Z", "+00:00"))).total_seconds() / 60
    return max(0, rank - int(max(waited, 0) // aging_minutes))


def next_in_queue(open_tickets: Iterable[Mapping[str, object]], now: datetime | None = None,
                  aging_minutes: float = AGING_MINUTES) -> list[Mapping[str, object]]:
    """Queued tickets in the order they should be served: priority raised by age, then
    arrival. Without `now`, no aging (the order of arrival within each priority)."""
    queued = [t for t in open_tickets if t.get("status") == "queued"]
    return sorted(queued, key=lambda t: (effective_rank(t, now, aging_minutes), str(t["received_at"]), str(t["ticket_id"])))
