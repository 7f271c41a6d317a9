"""The agent-facing API: the roster with its load, the queues, one ticket's routing and
conversation, the actions an agent takes, and the supervisor's view of everything.
Every request is authenticated: by a bearer token from the roster (programs), or by the
console's session cookie, in which case a request that changes anything must also
carry the session's CSRF token. Described in `openapi.json`, served at
`/api/openapi.json`.

Reads and permission checks use the dispatcher's tables as this worker's replicas hold
them (deskstream.replica), so every router worker answers alike. An agent acts on the
tickets assigned to them, accepts queued tickets they could be given, and reopens the
tickets they resolved; a supervisor may do all of it on any ticket. An agent sees the
tickets of their own queues (theirs, and the waiting ones they could take); a
supervisor sees every ticket.

Every action is published as an event before the answer, which is 202 with the event
id (503 if Kafka did not take it); an `Idempotency-Key` header makes a retried request
the same event, so that consumers drop the repeat. The dispatcher has the last word:
an accept that lost a race to another decision changes nothing.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

import orjson
from aiohttp import web

from deskstream.bearer import bearer_token
from deskstream.events import Event, stable_id, utcnow
from deskstream.pipeline import NotStored, Pipeline
from deskstream.replica import TableReplica
from deskstream.topics import AGENTS_EVENTS, ROUTER_DISPATCH, TICKETS_EVENTS

from services.router import assignment, conversations, routing, sla
from services.router.roster import Agent, agent_with_token
from services.router.signin import CSRF_HEADER, SESSION_COOKIE, Session, Sessions

OPENAPI = Path(__file__).resolve().parent / "openapi.json"
TICKET_ID = re.compile(r"^T-[A-Z2-7]{8}$")
MAX_NOTE_CHARS = 2000
MAX_CAPACITY = 50
MAX_REPLY_CHARS = 8000
MAX_REASON_CHARS = 500


class Refused(Exception):
    """A request the API answers with an error; `status` is the HTTP status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Action:
    """What an authenticated agent asked for."""

    agent: Agent
    ticket_id: str | None
    body: dict[str, Any]
    key: str  # the Idempotency-Key, or a fresh one
    request: web.Request

    def event_suffix(self, *parts: str) -> str:
        return stable_id(self.agent.id, *parts, self.key, length=12)

    def text(self, name: str, limit: int, *, required: bool = True) -> str | None:
        value = self.body.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            raise Refused(400, f"{name} must be text of 1 to {limit} characters")
        return value.strip()


def session_of(request: web.Request, roster: tuple[Agent, ...], sessions: Sessions) -> tuple[Agent, Session] | None:
    """The agent signed in to the console in this browser, with their session."""
    session = sessions.read(request.cookies.get(SESSION_COOKIE))
    agent = next((a for a in roster if session is not None and a.id == session.agent_id), None)
    return None if agent is None or session is None else (agent, session)


def caller(request: web.Request, roster: tuple[Agent, ...], sessions: Sessions) -> Agent:
    """The agent behind a request: its bearer token, else its console session. A session
    rides along with every request the browser makes, so a change made with one must
    also carry the CSRF token that only our own pages can read."""
    token = bearer_token(request.headers.get("Authorization"))
    if token:
        agent = agent_with_token(roster, token)
        if agent is None:
            raise Refused(401, "a valid agent token is required (Authorization: Bearer ...)")
        return agent
    signed_in = session_of(request, roster, sessions)
    if signed_in is None:
        raise Refused(401, "sign in at /console, or send an agent token (Authorization: Bearer ...)")
    agent, session = signed_in
    if request.method not in ("GET", "HEAD") and not sessions.csrf_valid(session.nonce, request.headers.get(CSRF_HEADER)):
        raise Refused(403, f"the {CSRF_HEADER} header is missing or wrong")
    return agent


async def read_action(request: web.Request, roster: tuple[Agent, ...], sessions: Sessions) -> Action:
    agent = caller(request, roster, sessions)
    ticket_id = request.match_info.get("ticket_id")
    if ticket_id is not None and not TICKET_ID.match(ticket_id):
        raise Refused(404, "not a ticket id")
    body: Any = {}
    if request.can_read_body:
        try:
            body = orjson.loads(await request.read())
        except web.HTTPRequestEntityTooLarge:  # refused as JSON with its reason, like every other refusal
            raise Refused(413, f"the body is larger than {request.client_max_size} bytes") from None
        except orjson.JSONDecodeError:
            raise Refused(400, "the body must be JSON") from None
    if not isinstance(body, dict):
        raise Refused(400, "the body must be a JSON object")
    return Action(agent, ticket_id, body, request.headers.get("Idempotency-Key") or uuid.uuid4().hex, request)


@dataclass(frozen=True, slots=True)
class Tables:
    """This worker's copies of the dispatcher's tables."""

    tickets: TableReplica
    agents: TableReplica
    conversations: TableReplica

    def ticket(self, ticket_id: str | None) -> dict[str, Any]:
        found = self.tickets.get(ticket_id) if ticket_id else None
        if found is None:
            raise Refused(404, "no such ticket (or not routed yet)")
        return found

    def seen_by(self, agent: Agent, ticket_id: str | None) -> dict[str, Any]:
        found = self.ticket(ticket_id)
        if not may_see(agent, found):
            raise Refused(403, "the ticket is not in your queues")
        return found

    def open_tickets(self) -> list[dict[str, Any]]:
        return routing.open_tickets(self.tickets.values())


def may_see(agent: Agent, ticket: dict[str, Any]) -> bool:
    """An agent sees the tickets of their own queues: the ones they hold or last held,
    and the waiting ones they could take; a supervisor sees every ticket."""
    return (agent.supervises or ticket.get("agent_id") == agent.id
            or (ticket["status"] == "queued" and routing.may_take(agent, ticket)))


def listed(ticket: dict[str, Any], conversation: dict[str, Any] | None, targets: sla.Targets) -> dict[str, Any]:
    """A ticket as a queue shows it: the router's record, what it is about and who
    wrote, and the next target it must meet (the first answer, else the resolution)."""
    target = sla.RESOLUTION if ticket.get("answered") else sla.FIRST_RESPONSE
    about = conversation or {}
    return {**ticket, "subject": about.get("subject", ""), "customer_name": (about.get("customer") or {}).get("name", ""),
            "hint": about.get("hint", "unknown"), "due_target": target, "due_at": sla.format_time(sla.due(ticket, target, targets))}


def conversation_view(agent: Agent, ticket: dict[str, Any], rows: TableReplica, tickets: TableReplica) -> dict[str, Any]:
    """One ticket's conversation with the customer's other tickets in one timeline (those
    the agent may see), and a summary of every ticket of the customer."""
    conversation = rows.get(ticket["ticket_id"])
    if conversation is None:
        raise Refused(404, "no conversation yet for this ticket")
    theirs = conversations.customer_tickets(rows.values(), conversation)

    def shown(other: dict[str, Any]) -> bool:
        known = tickets.get(other["ticket_id"])  # None once the dispatcher forgot it: then for supervisors only
        return other is conversation or (may_see(agent, known) if known is not None else agent.supervises)

    visible = [c for c in theirs if shown(c)]
    shown_ids = {c["ticket_id"] for c in visible}
    return {
        "ticket": ticket,
        "conversation": {k: v for k, v in conversation.items() if k != "entries"},
        "timeline": conversations.timeline(visible),
        "history": [{**conversations.summary(c), "shown": c["ticket_id"] in shown_ids} for c in theirs],
    }


def queue_of(agent: Agent, tables: Tables, targets: sla.Targets) -> dict[str, Any]:
    """The agent's own open tickets (oldest first), and the waiting tickets they could be
    given, in the order the dispatcher serves them (a supervisor sees the whole queue)."""
    tickets = tables.open_tickets()
    mine = sorted((t for t in tickets if t["status"] == "assigned" and t.get("agent_id") == agent.id), key=lambda t: str(t["received_at"]))
    waiting = [t for t in assignment.next_in_queue(tickets, datetime.now(timezone.utc)) if may_see(agent, t)]
    return {"assigned": [listed(t, tables.conversations.get(t["ticket_id"]), targets) for t in mine],
            "queued": [listed(t, tables.conversations.get(t["ticket_id"]), targets) for t in waiting]}


def held_by(agent: Agent, ticket: dict[str, Any]) -> None:
    """An agent acts on an open ticket assigned to them; a supervisor on any open one."""
    if ticket["status"] not in routing.OPEN:
        raise Refused(409, f"the ticket is {ticket['status']}")
    if not agent.supervises and ticket.get("agent_id") != agent.id:
        raise Refused(403, "the ticket is not assigned to you")


def agent_view(agent: Agent, state: dict[str, Any], held: int) -> dict[str, Any]:
    return {"id": agent.id, "name": agent.name, "role": agent.role, "skills": sorted(agent.skills), "tier": agent.tier,
            "languages": sorted(agent.languages), "presence": state.get("presence", "online"),
            "max_concurrent": state.get("max_concurrent", agent.max_concurrent), "open_tickets": held}


def supervision(roster: tuple[Agent, ...], tickets: list[dict[str, Any]], agents: Any, now: Any, targets: sla.Targets) -> dict[str, Any]:
    """Every queue at a glance: waiting tickets by skill and priority (with the oldest),
    each agent's load, and the open tickets that missed a target."""
    queued = assignment.next_in_queue(tickets, now)
    queues: dict[str, dict[str, Any]] = {}
    for ticket in queued:
        queue = queues.setdefault(str(ticket["skill"]), {"waiting": 0, "by_priority": {p: 0 for p in assignment.PRIORITY_ORDER},
                                                           "oldest_waiting_since": None})
        queue["waiting"] += 1
        queue["by_priority"][str(ticket["priority"])] += 1
        since = sla.waiting_since(ticket)
        queue["oldest_waiting_since"] = min(filter(None, (queue["oldest_waiting_since"], since)))
    held = assignment.loads(tickets)
    return {
        "queues": queues,
        "queued": queued,
        "agents": [agent_view(a, agents.get(a.id) or {}, held.get(a.id, 0)) for a in roster],
        "breached": [t for t in tickets if t.get("breaches")],
        "targets": {"first_response_minutes": dict(targets.first_response_minutes), "resolution_minutes": dict(targets.resolution_minutes)},
    }


Handler = Callable[[Action], Awaitable[web.StreamResponse]]
View = Callable[[web.Request], Awaitable[web.StreamResponse]]


def authenticated(roster: tuple[Agent, ...], sessions: Sessions) -> Callable[[Handler], View]:
    """Views that answer an authenticated agent's Action; a Refused becomes its error."""
    def action(handler: Handler) -> View:
        async def view(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(await read_action(request, roster, sessions))
            except Refused as refused:
                return web.json_response({"error": refused.reason}, status=refused.status)

        return view

    return action


def agent_routes(roster: tuple[Agent, ...], tables: Tables, pipeline: Pipeline, dispatch_key: str, targets: sla.Targets,
                 sessions: Sessions):
    action = authenticated(roster, sessions)

    async def accepted(publication: Awaitable[None], event: Event, **extra: str) -> web.Response:
        try:
            await publication
        except NotStored:
            return web.json_response({"error": "not stored; retry with the same Idempotency-Key"}, status=503)
        return web.json_response({"event_id": event.id, **extra}, status=202)

    async def written(act: Action, event_type: str, noun: str, at: str, written_id: str) -> web.Response:
        """An agent's words on the ticket (a reply, a note): `<noun>_id` names them, and
        the event's id is `<ticket>.<noun>.<that id>`."""
        ticket_id = str(act.ticket_id)
        data = {"ticket_id": ticket_id, f"{noun}_id": written_id, "agent_id": act.agent.id, "agent_name": act.agent.name,
                "text": act.text("text", MAX_REPLY_CHARS), at: utcnow()}
        event = pipeline.event(event_type, f"{ticket_id}.{noun}.{written_id}", data, ticket_id)
        return await accepted(pipeline.publish(TICKETS_EVENTS, ticket_id, event), event, **{f"{noun}_id": written_id})

    @action
    async def list_agents(act: Action) -> web.Response:
        held = assignment.loads(tables.open_tickets())
        return web.json_response({"agents": [agent_view(a, tables.agents.get(a.id) or {}, held.get(a.id, 0)) for a in roster]})

    @action
    async def queue(act: Action) -> web.Response:
        """The caller's own open tickets, and the queued tickets they could be given, in
        the order the dispatcher serves them (a supervisor sees the whole queue)."""
        return web.json_response(queue_of(act.agent, tables, targets))

    @action
    async def supervisor(act: Action) -> web.Response:
        if not act.agent.supervises:
            raise Refused(403, "for supervisors only")
        return web.json_response(supervision(roster, tables.open_tickets(), tables.agents, datetime.now(timezone.utc), targets))

    @action
    async def ticket(act: Action) -> web.Response:
        return web.json_response(tables.seen_by(act.agent, act.ticket_id))

    @action
    async def conversation(act: Action) -> web.Response:
        found = tables.seen_by(act.agent, act.ticket_id)
        return web.json_response(conversation_view(act.agent, found, tables.conversations, tables.tickets))

    @action
    async def note(act: Action) -> web.Response:
        """An internal note on the ticket, for agents only: `ticket.note_added`, which no
        service ever sends to the customer."""
        tables.seen_by(act.agent, act.ticket_id)
        return await written(act, "ticket.note_added", "note", "added_at", act.event_suffix(str(act.ticket_id), "note"))

    @action
    async def reassign(act: Action) -> web.Response:
        """The ticket to a named agent, with a reason: the holder hands it over, or a
        supervisor moves it (`dispatch.reassign_requested`; the dispatcher grants it
        with `ticket.assigned` if the agent is online and able to take it)."""
        ticket_id = act.ticket_id
        found = tables.ticket(ticket_id)
        held_by(act.agent, found)
        target = next((a for a in roster if a.id == act.body.get("agent_id")), None)
        if target is None or target.id == found.get("agent_id"):
            raise Refused(400, "agent_id must name another agent of the roster")
        if not routing.may_take(target, found):
            raise Refused(409, f"{target.id} lacks the skill, tier or language for this ticket")
        if not routing.available((target,), tables.agents):
            raise Refused(409, f"{target.id} is not online")
        data = {"ticket_id": ticket_id, "agent_id": target.id, "requested_by": act.agent.id,
                "reason": act.text("reason", MAX_REASON_CHARS)}
        event = pipeline.event("dispatch.reassign_requested", f"{ticket_id}.reassign.{act.event_suffix()}", data, ticket_id)
        return await accepted(pipeline.publish(ROUTER_DISPATCH, dispatch_key, event), event)

    @action
    async def resolve(act: Action) -> web.Response:
        """The ticket is resolved: `ticket.resolved`; its capacity goes to the queue."""
        ticket_id = act.ticket_id
        held_by(act.agent, tables.ticket(ticket_id))
        note = act.text("note", MAX_NOTE_CHARS, required=False)
        data = {"ticket_id": ticket_id, "resolved_at": utcnow(), "resolved_by": act.agent.id, **({"note": note} if note else {})}
        event = pipeline.event("ticket.resolved", f"{ticket_id}.resolved.{act.event_suffix()}", data, ticket_id)
        return await accepted(pipeline.publish(TICKETS_EVENTS, ticket_id, event), event)

    @action
    async def reopen(act: Action) -> web.Response:
        """A resolved ticket opened again, with the reason: `ticket.reopened`; the
        dispatcher gives it back to its agent if they are free, else queues it."""
        ticket_id = act.ticket_id
        found = tables.ticket(ticket_id)
        if found["status"] in routing.OPEN:
            raise Refused(409, "the ticket is open")
        if not act.agent.supervises and found.get("agent_id") != act.agent.id:
            raise Refused(403, "only the agent who had the ticket, or a supervisor, may reopen it")
        data = {"ticket_id": ticket_id, "reopened_at": utcnow(), "reopened_by": act.agent.id,
                "reason": act.text("reason", MAX_REASON_CHARS)}
        event = pipeline.event("ticket.reopened", f"{ticket_id}.reopened.{act.event_suffix()}", data, ticket_id)
        return await accepted(pipeline.publish(TICKETS_EVENTS, ticket_id, event), event)

    @action
    async def accept(act: Action) -> web.Response:
        """The agent takes a waiting ticket ("assign to me"), even past the capacity the
        router fills automatically: `dispatch.accept_requested`, which the dispatcher
        grants (`ticket.assigned`) if the ticket is still waiting and the agent online."""
        ticket_id, agent = act.ticket_id, act.agent
        found = tables.ticket(ticket_id)
        if found["status"] != "queued":
            raise Refused(409, f"the ticket is {found['status']}, not waiting")
        if not routing.may_take(agent, found):
            raise Refused(403, "the ticket needs a skill, tier or language you do not have")
        if not routing.available((agent,), tables.agents):
            raise Refused(409, "set your presence to online first")
        data = {"ticket_id": ticket_id, "agent_id": agent.id}
        event = pipeline.event("dispatch.accept_requested", f"{ticket_id}.accept.{act.event_suffix()}", data, ticket_id)
        return await accepted(pipeline.publish(ROUTER_DISPATCH, dispatch_key, event), event)

    @action
    async def reply(act: Action) -> web.Response:
        """An answer to the customer: `ticket.reply_sent`, which the notifier delivers on
        the customer's channel. Checked for size only: every page shows it as text."""
        held_by(act.agent, tables.ticket(act.ticket_id))
        return await written(act, "ticket.reply_sent", "reply", "sent_at", act.event_suffix(str(act.ticket_id)))

    @action
    async def escalate(act: Action) -> web.Response:
        """A first-line ticket to second line, with a reason; the dispatcher decides
        where it goes (`ticket.escalated`, and a new assignment)."""
        ticket_id = act.ticket_id
        found = tables.ticket(ticket_id)
        held_by(act.agent, found)
        if found["tier"] == "L2":
            raise Refused(409, "the ticket is already with second line")
        data = {"ticket_id": ticket_id, "agent_id": act.agent.id, "reason": act.text("reason", MAX_REASON_CHARS)}
        event = pipeline.event("dispatch.escalation_requested", f"{ticket_id}.escalation.{act.event_suffix()}", data, ticket_id)
        return await accepted(pipeline.publish(ROUTER_DISPATCH, dispatch_key, event), event)

    @action
    async def set_presence(act: Action) -> web.Response:
        """The agent is online, away or offline, and optionally holds up to
        `max_concurrent` tickets: `agent.presence_changed` on agents.events, which the
        dispatcher follows (offline hands back unanswered tickets)."""
        presence, capacity = act.body.get("presence"), act.body.get("max_concurrent")
        if presence not in routing.PRESENCES:
            raise Refused(400, f"presence must be one of {', '.join(routing.PRESENCES)}")
        if capacity is not None and (not isinstance(capacity, int) or isinstance(capacity, bool) or not 0 <= capacity <= MAX_CAPACITY):
            raise Refused(400, f"max_concurrent must be a whole number from 0 to {MAX_CAPACITY}")
        agent_id = act.agent.id
        data = {"agent_id": agent_id, "presence": presence, "changed_at": utcnow(), **({"max_concurrent": capacity} if capacity is not None else {})}
        event = pipeline.event("agent.presence_changed", f"{agent_id}.presence.{act.event_suffix()}", data, agent_id)
        return await accepted(pipeline.publish(AGENTS_EVENTS, agent_id, event), event)

    async def openapi(request: web.Request) -> web.FileResponse:
        return web.FileResponse(OPENAPI, headers={"Content-Type": "application/json"})

    def setup(application: web.Application) -> None:
        application.router.add_get("/api/openapi.json", openapi)
        application.router.add_get("/api/agents", list_agents)
        application.router.add_get("/api/queue", queue)
        application.router.add_get("/api/supervisor", supervisor)
        application.router.add_get("/api/tickets/{ticket_id}", ticket)
        application.router.add_get("/api/tickets/{ticket_id}/conversation", conversation)
        application.router.add_post("/api/tickets/{ticket_id}/note", note)
        application.router.add_post("/api/tickets/{ticket_id}/reassign", reassign)
        application.router.add_post("/api/agents/me/presence", set_presence)
        application.router.add_post("/api/tickets/{ticket_id}/accept", accept)
        application.router.add_post("/api/tickets/{ticket_id}/reply", reply)
        application.router.add_post("/api/tickets/{ticket_id}/escalate", escalate)
        application.router.add_post("/api/tickets/{ticket_id}/resolve", resolve)
        application.router.add_post("/api/tickets/{ticket_id}/reopen", reopen)

    return setup
