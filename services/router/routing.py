"""What the router decides for a ticket, as data: the classification it publishes,
the assignment (if an agent is free) and its own record of the ticket.

Pure functions of the rules, the roster and the open tickets, so that a decision
made again from the same state is the same decision, and so that the tests build
exactly what the router emits.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Iterable, Protocol

from services.router import assignment, sla
from services.router.roster import Agent
from services.router.triage import Rules, classify, weigh_history

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


def open_tickets(tickets: Iterable[Ticket | None]) -> list[Ticket]:
    return [t for t in tickets if t and t["status"] in OPEN]


def assign(ticket: Ticket, agent: Agent, wait_minutes: int, now: datetime | None = None, *,
           by: str | None = None, reason: str | None = None) -> Assignment:
    """Give `ticket` to `agent`; the event id counts assignments, so a replay repeats it.
    `by` is the person who chose the agent (an accept, a reassignment), not the router."""
    number = ticket["assignments"] + 1
    data = {
        "ticket_id": ticket["ticket_id"],
        "agent_id": agent.id,
        "agent_name": agent.name,
        "skill": ticket["skill"],
        "priority": ticket["priority"],
        "tier": ticket["tier"],
        "estimated_wait_minutes": wait_minutes,
        **({"assigned_by": by} if by else {}),
        **({"reason": reason} if reason else {}),
    }
    updated = {**ticket, "status": "assigned", "agent_id": agent.id, "assignments": number}
    if now is not None:
        updated["assigned_at"] = sla.format_time(now)
    return Assignment(f"{ticket['ticket_id']}.assigned.{number}", data, updated)


def triage(rules: Rules, created: dict[str, Any]) -> dict[str, Any]:
    """The `dispatch.ticket_triaged` for a `ticket.created`: what the dispatcher needs
    to place the ticket, decided from the ticket alone (so any worker can do it). The
    customer's history is the dispatcher's to add: it alone sees all their tickets."""
    customer = created["customer"]
    verdict = classify(rules, created.get("subject"), created["body_text"], customer=customer)
    return {
        "ticket_id": created["ticket_id"],
        "skill": verdict.skill,
        "priority": verdict.priority,
        "tier": verdict.tier,
        "language": customer["language"],
        "channel": created["channel"],
        "received_at": created["received_at"],
        "signals": verdict.signals,
        "customer_id": customer["id"],
    }


def route_triaged(roster: tuple[Agent, ...], triaged: dict[str, Any], tickets: Iterable[Ticket],
                  now: datetime | None = None, recent: dict[str, Any] | None = None) -> Routed:
    """Give a triaged ticket to an agent if one is free, else queue it; with the wait
    drawn from the `recent` handling times of its skill."""
    ticket_id, language = triaged["ticket_id"], triaged["language"]
    decision = assignment.decide(roster, open_tickets(tickets), triaged["skill"], triaged["priority"], triaged["tier"], language, recent)
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
        **({"customer_id": triaged["customer_id"]} if triaged.get("customer_id") else {}),
    }
    if decision.agent is None:
        return Routed(classified, None, ticket)
    given = assign(ticket, decision.agent, decision.estimated_wait_minutes, now)
    return Routed(classified, given, given.ticket)


def refill(roster: tuple[Agent, ...], current: list[Ticket], now: datetime | None) -> list[Assignment]:
    """Free capacity to the queued tickets, in queue order (aged)."""
    held = assignment.loads(current)
    given: list[Assignment] = []
    for waiting in assignment.next_in_queue(current, now):
        agent = assignment.choose_agent(roster, held, str(waiting["skill"]), str(waiting["tier"]), str(waiting["language"]))
        if agent is not None:
            given.append(assign(dict(waiting), agent, 0, now))
            held[agent.id] += 1
    return given


PRESENCES = ("online", "away", "offline")
DEFAULT_TARGETS = sla.Targets.parse("", "")


@dataclass(frozen=True, slots=True)
class Policy:
    """The dispatcher's settings: service targets, how far back a customer's earlier
    tickets count as a repeated contact, and how long a resolved ticket stays
    reopenable (and remembered) before a tick forgets it."""

    targets: sla.Targets = DEFAULT_TARGETS
    repeat_window: timedelta = timedelta(days=7)
    keep_resolved: timedelta = timedelta(days=14)


DEFAULT_POLICY = Policy()


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
    """The dispatcher's records by id (tickets, agents...): its tables in the service,
    dicts in tests."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def values(self) -> Iterable[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class Boards:
    """Everything the dispatcher keeps: the tickets it placed, the agents' presence,
    each customer's recent tickets, and the recent handling times of each skill."""

    tickets: Board
    agents: Board = field(default_factory=dict)
    customers: Board = field(default_factory=dict)
    handling: Board = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Dispatched:
    classified: dict[str, Any] | None = None  # the ticket.classified to publish, for a new ticket
    assignments: list[Assignment] = field(default_factory=list)  # the ticket.assigned to publish, in order
    requeued: list[dict[str, Any]] = field(default_factory=list)  # the ticket.requeued to publish
    updates: dict[str, Ticket | None] = field(default_factory=dict)  # the tickets' new records (None: forgotten)
    agent_updates: dict[str, dict[str, Any]] = field(default_factory=dict)  # the agents' new states
    breaches: list[sla.Breach] = field(default_factory=list)  # the ticket.sla_breached to publish
    escalations: list[dict[str, Any]] = field(default_factory=list)  # the ticket.escalated to publish
    customer_updates: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # customers' recent tickets
    handling_updates: dict[str, dict[str, Any]] = field(default_factory=dict)  # skills' recent handling times

    def writes(self) -> dict[str, dict[str, Any]]:
        """The changes to the dispatcher's tables, by table (a None value deletes)."""
        return {"tickets": self.updates, "agents": self.agent_updates, "customers": self.customer_updates,
                "handling": self.handling_updates}


def dispatch(roster: tuple[Agent, ...], boards: Boards, command_type: str, data: dict[str, Any],
             now: datetime | None = None, policy: Policy = DEFAULT_POLICY) -> Dispatched:
    """What the dispatcher does with one `router.dispatch` record: place a triaged
    ticket, note its first answer, free a closed ticket's capacity for the queue, put a
    reopened ticket back, give a queued ticket to the agent who accepts it, follow an
    agent's presence and capacity, escalate a ticket, or check the service targets at a
    tick. A record seen again (a replay) finds its work done and does nothing.
    `now` is the record's own time, so that replaying the records decides the same."""
    tickets, agents = boards.tickets, boards.agents
    if command_type == "dispatch.agent_changed":
        return agent_changed(roster, tickets, agents, data, now)
    if command_type == "dispatch.tick":
        at = sla.parse_time(data["at"])
        return merge(check_targets(roster, tickets, agents, at, policy.targets), forget(boards, at, policy))
    known = tickets.get(data["ticket_id"])
    if command_type == "dispatch.escalation_requested":
        if known is None or known["status"] not in OPEN or known["tier"] == "L2":
            return Dispatched()
        return escalate(roster, tickets, agents, [(known, data["reason"], data.get("agent_id"))], now)
    if command_type == "dispatch.ticket_triaged" and known is None:
        return place(roster, boards, data, now, policy)
    if command_type == "dispatch.ticket_answered" and known is not None and not known.get("answered"):
        return answered(boards, known, data)
    if command_type == "dispatch.ticket_closed" and known is not None and known["status"] in OPEN:
        return closed(roster, boards, known, data["status"], now)
    if command_type == "dispatch.ticket_reopened" and known is not None and known["status"] not in OPEN:
        return reopened(roster, boards, known, data)
    if command_type == "dispatch.accept_requested" and known is not None and known["status"] == "queued":
        return accepted(roster, boards, known, data["agent_id"], now)
    if command_type == "dispatch.reassign_requested" and known is not None and known["status"] in OPEN:
        return reassigned(roster, boards, known, data, now)
    return Dispatched()


def place(roster: tuple[Agent, ...], boards: Boards, triaged: dict[str, Any], now: datetime | None, policy: Policy) -> Dispatched:
    """A new ticket: weighed against the customer's recent tickets, then given to a free
    agent or queued, with the wait the customer should expect."""
    ticket_id, customer_id = triaged["ticket_id"], triaged.get("customer_id")
    customer_updates: dict[str, dict[str, Any] | None] = {}
    if customer_id:
        since = sla.parse_time(triaged["received_at"]) - policy.repeat_window
        earlier = [entry for entry in (boards.customers.get(customer_id) or {}).get("tickets", [])
                   if sla.parse_time(entry[0]) >= since and entry[1] != ticket_id]
        priority, signals = weigh_history(triaged["priority"], triaged["signals"], len(earlier))
        triaged = {**triaged, "priority": priority, "signals": signals}
        customer_updates[customer_id] = {"customer_id": customer_id, "tickets": [*earlier, [triaged["received_at"], ticket_id]]}
    routed = route_triaged(available(roster, boards.agents), triaged, boards.tickets.values(), now,
                           boards.handling.get(triaged["skill"]))
    return Dispatched(routed.classified, [routed.assignment] if routed.assignment else [], updates={ticket_id: routed.ticket},
                      customer_updates=customer_updates)


def answered(boards: Boards, ticket: Ticket, data: dict[str, Any]) -> Dispatched:
    """The ticket's first answer: its first-response clock stops, and the time it took
    from assignment joins the skill's recent response times."""
    updated = {**ticket, "answered": True, "first_response_at": data["answered_at"]}
    handling: dict[str, dict[str, Any]] = {}
    if ticket.get("assigned_at"):
        minutes = _minutes_between(ticket["assigned_at"], data["answered_at"])
        handling[ticket["skill"]] = assignment.remember(boards.handling.get(ticket["skill"]), "response_minutes", minutes)
    return Dispatched(updates={ticket["ticket_id"]: updated}, handling_updates=handling)


def closed(roster: tuple[Agent, ...], boards: Boards, ticket: Ticket, status: str, now: datetime | None) -> Dispatched:
    """The ticket leaves the queues with `status`; the time it held its agent joins the
    skill's recent handling times, and the place it frees goes to the queue."""
    done = {**ticket, "status": status, **({"closed_at": sla.format_time(now)} if now is not None else {})}
    handling: dict[str, dict[str, Any]] = {}
    if now is not None and ticket.get("assigned_at"):
        minutes = _minutes_between(ticket["assigned_at"], sla.format_time(now))
        handling[ticket["skill"]] = assignment.remember(boards.handling.get(ticket["skill"]), "handling_minutes", minutes)
    current = [t for t in open_tickets(boards.tickets.values()) if t["ticket_id"] != ticket["ticket_id"]]
    given = refill(available(roster, boards.agents), current, now)
    return Dispatched(assignments=given, updates={ticket["ticket_id"]: done, **{a.ticket["ticket_id"]: a.ticket for a in given}},
                      handling_updates=handling)


def reopened(roster: tuple[Agent, ...], boards: Boards, ticket: Ticket, data: dict[str, Any]) -> Dispatched:
    """A resolved ticket the customer (or an agent) opened again: waiting anew from now,
    with fresh targets, and back to the agent who knows it if they are free."""
    at = sla.parse_time(data["reopened_at"])
    again = {**ticket, "status": "queued", "agent_id": None, "answered": False, "breaches": [], "reopened_at": data["reopened_at"],
             "reopens": ticket.get("reopens", 0) + 1}
    again.pop("first_response_at", None)
    again.pop("closed_at", None)
    agents = available(roster, boards.agents)
    current = open_tickets(boards.tickets.values())
    held = assignment.loads(current)
    before = next((a for a in agents if a.id == ticket.get("agent_id")), None)
    if before is not None and before.can_take(again["skill"], again["tier"], again["language"]) and held[before.id] < before.max_concurrent:
        agent: Agent | None = before
    else:
        agent = assignment.choose_agent(agents, held, again["skill"], again["tier"], again["language"])
    if agent is None:
        return Dispatched(updates={ticket["ticket_id"]: again})
    given = assign(again, agent, 0, at)
    return Dispatched(assignments=[given], updates={ticket["ticket_id"]: given.ticket})


def accepted(roster: tuple[Agent, ...], boards: Boards, ticket: Ticket, agent_id: str, now: datetime | None) -> Dispatched:
    """An agent takes a waiting ticket themselves ("assign to me"), if they are online
    and could be given it. Capacity bounds what the router hands out, not what an agent
    chooses to take on, as in the help desks agents know; the router gives them nothing
    more until they are under it again. Otherwise nothing changes (the API said why)."""
    agent = next((a for a in available(roster, boards.agents) if a.id == agent_id), None)
    if agent is None or not may_take(agent, ticket):
        return Dispatched()
    given = assign(ticket, agent, 0, now, by=agent_id)
    return Dispatched(assignments=[given], updates={ticket["ticket_id"]: given.ticket})


def reassigned(roster: tuple[Agent, ...], boards: Boards, ticket: Ticket, data: dict[str, Any], now: datetime | None) -> Dispatched:
    """A person moves an open ticket to a named agent, who must be online and able to
    take it; like an accept, a person's choice is not bounded by capacity. The place
    the ticket leaves goes to the queue. Otherwise nothing changes (the API said why)."""
    agent = next((a for a in available(roster, boards.agents) if a.id == data["agent_id"]), None)
    if agent is None or not may_take(agent, ticket) or ticket.get("agent_id") == agent.id:
        return Dispatched()
    given = assign(ticket, agent, 0, now, by=data["requested_by"], reason=data.get("reason"))
    current = [given.ticket if t["ticket_id"] == ticket["ticket_id"] else t for t in open_tickets(boards.tickets.values())]
    refilled = refill(available(roster, boards.agents), current, now)
    return Dispatched(assignments=[given, *refilled],
                      updates={ticket["ticket_id"]: given.ticket, **{a.ticket["ticket_id"]: a.ticket for a in refilled}})


def may_take(agent: Agent, ticket: Ticket) -> bool:
    """Whether `agent` could be given `ticket`: its skill (or general work), tier and language."""
    return any(agent.can_take(skill, str(ticket["tier"]), str(ticket["language"])) for skill in (str(ticket["skill"]), "general"))


def forget(boards: Boards, now: datetime, policy: Policy) -> Dispatched:
    """At a tick: resolved tickets past reopening are forgotten, and customers' entries
    past the repeat window, so that the tables hold what is still of use."""
    old = now - policy.keep_resolved
    tickets = {t["ticket_id"]: None for t in boards.tickets.values()
               if t and t["status"] not in OPEN and t.get("closed_at") and sla.parse_time(t["closed_at"]) < old}
    since = now - policy.repeat_window
    customers: dict[str, dict[str, Any] | None] = {}
    for record in boards.customers.values():
        kept = [entry for entry in record["tickets"] if sla.parse_time(entry[0]) >= since]
        if len(kept) != len(record["tickets"]):
            customers[record["customer_id"]] = {**record, "tickets": kept} if kept else None
    return Dispatched(updates=tickets, customer_updates=customers)


def _minutes_between(start: str, end: str) -> float:
    return (sla.parse_time(end) - sla.parse_time(start)).total_seconds() / 60


def merge(first: Dispatched, second: Dispatched) -> Dispatched:
    """Two outcomes of one record, the second applied after the first."""
    return Dispatched(
        classified=first.classified or second.classified,
        assignments=[*first.assignments, *second.assignments],
        requeued=[*first.requeued, *second.requeued],
        updates={**first.updates, **second.updates},
        agent_updates={**first.agent_updates, **second.agent_updates},
        breaches=[*first.breaches, *second.breaches],
        escalations=[*first.escalations, *second.escalations],
        customer_updates={**first.customer_updates, **second.customer_updates},
        handling_updates={**first.handling_updates, **second.handling_updates},
    )


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
