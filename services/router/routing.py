"""What the router decides for a ticket, as data: the classification it publishes,
the assignment (if an agent is free) and its own record of the ticket.

Pure functions of the rules, the roster and the open tickets, so that a decision
made again from the same state is the same decision, and so that the tests build
exactly what the router emits.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Iterable, Protocol

from services.router import assignment, sla
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


def triage(rules: Rules, created: dict[str, Any]) -> dict[str, Any]:
    """The `dispatch.ticket_triaged` for a `ticket.created`: what the dispatcher needs
    to place the ticket, decided from the ticket alone (so any worker can do it)."""
    verdict = classify(rules, created.get("subject"), created["body_text"])
    return {
        "ticket_id": created["ticket_id"],
        "skill": verdict.skill,
        "priority": verdict.priority,
        "tier": verdict.tier,
        "language": created["customer"]["language"],
        "channel": created["channel"],
        "received_at": created["received_at"],
        "signals": verdict.signals,
    }


def route_triaged(roster: tuple[Agent, ...], triaged: dict[str, Any], tickets: Iterable[Ticket]) -> Routed:
    """Give a triaged ticket to an agent if one is free, else queue it; with the wait."""
    ticket_id, language = triaged["ticket_id"], triaged["language"]
    decision = assignment.decide(roster, open_tickets(tickets), triaged["skill"], triaged["priority"], triaged["tier"], language)
    classified = {
        "ticket_id": ticket_id,
        "skill": triaged["skill"],
        "priority": triaged["priority"],
        "tier": triaged["tier"],
        "language": language,
        "signals": triaged["signals"],
        "estimated_wait_minutes": decision.estimated_wait_minutes,
        "queue_position": decision.queue_position,
    }
    ticket = {
        "ticket_id": ticket_id, "status": "queued", "skill": triaged["skill"], "priority": triaged["priority"],
        "tier": triaged["tier"], "language": language, "channel": triaged["channel"], "agent_id": None,
        "received_at": triaged["received_at"], "assignments": 0,
    }
    if decision.agent is None:
        return Routed(classified, None, ticket)
    given = assign(ticket, decision.agent, decision.estimated_wait_minutes)
    return Routed(classified, given, given.ticket)


def refill(roster: tuple[Agent, ...], current: list[Ticket], now: datetime | None) -> list[Assignment]:
    """Free capacity to the queued tickets, in queue order (aged)."""
    held = assignment.loads(current)
    given: list[Assignment] = []
    for waiting in assignment.next_in_queue(current, now):
        agent = assignment.choose_agent(roster, held, str(waiting["skill"]), str(waiting["tier"]), str(waiting["language"]))
        if agent is not None:
            given.append(assign(dict(waiting), agent, 0))
            held[agent.id] += 1
    return given


def close_and_refill(roster: tuple[Agent, ...], tickets: Iterable[Ticket], ticket: Ticket, status: str,
                     now: datetime | None = None) -> tuple[Ticket, list[Assignment]]:
    """`ticket` leaves the queues with `status`; the capacity it frees goes to the
    queued tickets, in queue order."""
    closed = {**ticket, "status": status}
    current = [t for t in open_tickets(tickets) if t["ticket_id"] != ticket["ticket_id"]]
    return closed, refill(roster, current, now)


PRESENCES = ("online", "away", "offline")
DEFAULT_TARGETS = sla.Targets.parse("", "")


def available(roster: tuple[Agent, ...], agents: "Board | dict[str, Any]") -> tuple[Agent, ...]:
    """The agents who may get tickets now: online (the roster's agents are online until
    they say otherwise), with the capacity they last set."""
    out = []
    for agent in roster:
        state = agents.get(agent.id) or {}
        if state.get("presence", "online") != "online":
            continue
        capacity = state.get("max_concurrent")
        out.append(replace(agent, max_concurrent=int(capacity)) if capacity is not None else agent)
    return tuple(out)


class Board(Protocol):
    """The dispatcher's records by id (tickets, agents): its tables in the service,
    dicts in tests."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def values(self) -> Iterable[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class Dispatched:
    classified: dict[str, Any] | None = None  # the ticket.classified to publish, for a new ticket
    assignments: list[Assignment] = field(default_factory=list)  # the ticket.assigned to publish, in order
    requeued: list[dict[str, Any]] = field(default_factory=list)  # the ticket.requeued to publish
    updates: dict[str, Ticket] = field(default_factory=dict)  # the tickets' new records, by ticket id
    agent_updates: dict[str, dict[str, Any]] = field(default_factory=dict)  # the agents' new states
    breaches: list[sla.Breach] = field(default_factory=list)  # the ticket.sla_breached to publish
    escalations: list[dict[str, Any]] = field(default_factory=list)  # the ticket.escalated to publish


def dispatch(roster: tuple[Agent, ...], tickets: Board, agents: Board, command_type: str, data: dict[str, Any],
             now: datetime | None = None, targets: sla.Targets = DEFAULT_TARGETS) -> Dispatched:
    """What the dispatcher does with one `router.dispatch` record: place a triaged
    ticket, note its first answer, free a closed ticket's capacity for the queue,
    follow an agent's presence and capacity, escalate a ticket, or check the service
    targets at a tick. A record seen again (a replay) finds its work done and does nothing.
    `now` is the record's own time, so that replaying the records decides the same."""
    if command_type == "dispatch.agent_changed":
        return agent_changed(roster, tickets, agents, data, now)
    if command_type == "dispatch.tick":
        return check_targets(roster, tickets, agents, sla.parse_time(data["at"]), targets)
    if command_type == "dispatch.escalation_requested":
        known = tickets.get(data["ticket_id"])
        if known is None or known["status"] not in OPEN or known["tier"] == "L2":
            return Dispatched()
        return escalate(roster, tickets, agents, [(known, data["reason"], data.get("agent_id"))], now)
    ticket_id = data["ticket_id"]
    known = tickets.get(ticket_id)
    if command_type == "dispatch.ticket_triaged" and known is None:
        routed = route_triaged(available(roster, agents), data, tickets.values())
        return Dispatched(routed.classified, [routed.assignment] if routed.assignment else [], updates={ticket_id: routed.ticket})
    if command_type == "dispatch.ticket_answered" and known is not None and not known.get("answered"):
        return Dispatched(updates={ticket_id: {**known, "answered": True, "first_response_at": data["answered_at"]}})
    if command_type == "dispatch.ticket_closed" and known is not None and known["status"] in OPEN:
        closed, given = close_and_refill(available(roster, agents), tickets.values(), known, data["status"], now)
        return Dispatched(assignments=given, updates={ticket_id: closed, **{a.ticket["ticket_id"]: a.ticket for a in given}})
    return Dispatched()


def agent_changed(roster: tuple[Agent, ...], tickets: Board, agents: Board, data: dict[str, Any], now: datetime | None) -> Dispatched:
    """An agent went online, away or offline, or changed capacity. Offline hands their
    unanswered tickets back to the queue; whatever capacity is free then goes to it."""
    agent_id = data["agent_id"]
    state = {"presence": data["presence"], **({"max_concurrent": data["max_concurrent"]} if "max_concurrent" in data else {})}
    if agent_id not in {a.id for a in roster} or (agents.get(agent_id) or {"presence": "online"}) == state:
        return Dispatched()
    requeued: list[dict[str, Any]] = []
    updates: dict[str, Ticket] = {}
    if state["presence"] == "offline":
        for ticket in open_tickets(tickets.values()):
            if ticket["status"] == "assigned" and ticket["agent_id"] == agent_id and not ticket.get("answered"):
                back = {**ticket, "status": "queued", "agent_id": None, "requeues": ticket.get("requeues", 0) + 1}
                updates[ticket["ticket_id"]] = back
                requeued.append({"ticket_id": back["ticket_id"], "agent_id": agent_id, "reason": "agent_offline",
                                 "requeues": back["requeues"]})
    current = [updates.get(t["ticket_id"], t) for t in open_tickets(tickets.values())]
    states = {**{a.id: agents.get(a.id) for a in roster}, agent_id: state}
    given = refill(available(roster, states), current, now)
    updates.update({a.ticket["ticket_id"]: a.ticket for a in given})
    return Dispatched(assignments=given, requeued=requeued, updates=updates, agent_updates={agent_id: state})


def check_targets(roster: tuple[Agent, ...], tickets: Board, agents: Board, now: datetime, targets: sla.Targets) -> Dispatched:
    """The targets missed by `now`: each recorded on its ticket and announced once; a
    first-line ticket that misses one goes to second line."""
    breaches = sla.missed(open_tickets(tickets.values()), now, targets)
    if not breaches:
        return Dispatched()
    updates: dict[str, Ticket] = {}
    for breach in breaches:
        ticket = updates.get(breach.ticket_id) or tickets.get(breach.ticket_id) or {}
        updates[breach.ticket_id] = {**ticket, "breaches": [*ticket.get("breaches", []), breach.target]}
    first_line = [(ticket, f"sla_breached:{ticket['breaches'][-1]}", None) for ticket in updates.values() if ticket["tier"] == "L1"]
    escalated = escalate(roster, _Changed(tickets, updates), agents, first_line, now)
    return Dispatched(assignments=escalated.assignments, requeued=escalated.requeued,
                      updates={**updates, **escalated.updates}, breaches=breaches, escalations=escalated.escalations)


def escalate(roster: tuple[Agent, ...], tickets: Board, agents: Board, asked: list[tuple[Ticket, str, str | None]],
             now: datetime | None) -> Dispatched:
    """Move tickets to second line: an L1 agent who holds one hands it back, and it goes
    to the next free L2 agent who can take it (at once, or from the queue)."""
    updates: dict[str, Ticket] = {}
    escalations, requeued = [], []
    for ticket, reason, by in asked:
        raised = {**ticket, "tier": "L2", "escalations": ticket.get("escalations", 0) + 1}
        holder = next((a for a in roster if a.id == ticket.get("agent_id")), None)
        if ticket["status"] == "assigned" and (holder is None or holder.tier != "L2"):
            raised = {**raised, "status": "queued", "agent_id": None, "requeues": ticket.get("requeues", 0) + 1}
            requeued.append({"ticket_id": ticket["ticket_id"], "agent_id": ticket["agent_id"], "reason": "escalated",
                             "requeues": raised["requeues"]})
        updates[ticket["ticket_id"]] = raised
        escalations.append({"ticket_id": ticket["ticket_id"], "from_tier": "L1", "to_tier": "L2", "reason": reason,
                            "escalated_by": by, "escalations": raised["escalations"]})
    current = [updates.get(t["ticket_id"], t) for t in open_tickets(tickets.values())]
    given = refill(available(roster, {a.id: agents.get(a.id) for a in roster}), current, now)
    updates.update({a.ticket["ticket_id"]: a.ticket for a in given})
    return Dispatched(assignments=given, requeued=requeued, updates=updates, escalations=escalations)


class _Changed:
    """A board seen with some of its records already changed (in this same decision)."""

    def __init__(self, board: Board, changes: dict[str, Ticket]) -> None:
        self._board, self._changes = board, changes

    def get(self, key: str) -> Ticket | None:
        return self._changes.get(key) or self._board.get(key)

    def values(self) -> Iterable[Ticket]:
        return [self._changes.get(str(t["ticket_id"]), t) for t in self._board.values()]
