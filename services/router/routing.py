"""What the router decides for a ticket, as data: the classification it publishes,
the assignment (if an agent is free) and its own record of the ticket.

Pure functions of the rules, the roster and the open tickets, so that a decision
made again from the same state is the same decision, and so that the tests build
exactly what the router emits.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from services.router import assignment
from services.router.roster import Agent
from services.router.triage import Rules, classify

OPEN = ("assigned", "queued")

Ticket = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Assignment:
    event_id: str
    data: dict[str, Any]
    ticket: Ticket  # the router's record once assigned


@dataclass(frozen=True, slots=True)
class Routed:
    classified: dict[str, Any]
    assignment: Assignment | None
    ticket: Ticket


def open_tickets(tickets: Iterable[Ticket]) -> list[Ticket]:
    return [t for t in tickets if t and t["status"] in OPEN]


def assign(ticket: Ticket, agent: Agent, wait_minutes: int) -> Assignment:
    """Give `ticket` to `agent`; the event id counts assignments, so a replay repeats it."""
    number = ticket["assignments"] + 1
    data = {
        "ticket_id": ticket["ticket_id"],
        "agent_id": agent.id,
        "agent_name": agent.name,
        "skill": ticket["skill"],
        "priority": ticket["priority"],
        "tier": ticket["tier"],
        "estimated_wait_minutes": wait_minutes,
    }
    updated = {**ticket, "status": "assigned", "agent_id": agent.id, "assignments": number}
    return Assignment(f"{ticket['ticket_id']}.assigned.{number}", data, updated)


def route_new_ticket(rules: Rules, roster: tuple[Agent, ...], created: dict[str, Any], tickets: Iterable[Ticket]) -> Routed:
    """Triage a `ticket.created` and give it to an agent if one is free."""
    ticket_id = created["ticket_id"]
    language = created["customer"]["language"]
    verdict = classify(rules, created.get("subject"), created["body_text"])
    decision = assignment.decide(roster, open_tickets(tickets), verdict.skill, verdict.priority, verdict.tier, language)
    classified = {
        "ticket_id": ticket_id,
        "skill": verdict.skill,
        "priority": verdict.priority,
        "tier": verdict.tier,
        "language": language,
        "signals": verdict.signals,
        "estimated_wait_minutes": decision.estimated_wait_minutes,
        "queue_position": decision.queue_position,
    }
    ticket = {
        "ticket_id": ticket_id, "status": "queued", "skill": verdict.skill, "priority": verdict.priority,
        "tier": verdict.tier, "language": language, "channel": created["channel"], "agent_id": None,
        "received_at": created["received_at"], "assignments": 0,
    }
    if decision.agent is None:
        return Routed(classified, None, ticket)
    given = assign(ticket, decision.agent, decision.estimated_wait_minutes)
    return Routed(classified, given, given.ticket)


def close_and_refill(roster: tuple[Agent, ...], tickets: Iterable[Ticket], ticket: Ticket, status: str) -> tuple[Ticket, list[Assignment]]:
    """`ticket` leaves the queues with `status`; the capacity it frees goes to the
    queued tickets, in queue order."""
    closed = {**ticket, "status": status}
    current = [t for t in open_tickets(tickets) if t["ticket_id"] != ticket["ticket_id"]]
    held = assignment.loads(current)
    given: list[Assignment] = []
    for waiting in assignment.next_in_queue(current):
        agent = assignment.choose_agent(roster, held, str(waiting["skill"]), str(waiting["tier"]), str(waiting["language"]))
        if agent is not None:
            given.append(assign(dict(waiting), agent, 0))
            held[agent.id] += 1
    return closed, given
