"""The agent-facing API: the roster with its load, the queue, one ticket's routing, and
the actions an agent takes (authenticated by the agent's bearer token). Described in
`openapi.json`, served at `/api/openapi.json`.

Every action is published as an event before the answer, which is 202 with the event
id (503 if Kafka did not take it); an `Idempotency-Key` header makes a retried request
the same event, so that consumers drop the repeat.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

import orjson
from aiohttp import web

from deskstream.bearer import bearer_token
from deskstream.events import Event, stable_id, utcnow
from deskstream.pipeline import Pipeline
from deskstream.processor import Processor
from deskstream.topics import AGENTS_EVENTS, ROUTER_DISPATCH, TICKETS_EVENTS

from services.router import assignment, routing
from services.router.roster import Agent, agent_with_token

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

    def event_suffix(self, *parts: str) -> str:
        return stable_id(self.agent.id, *parts, self.key, length=12)

    def text(self, name: str, limit: int, *, required: bool = True) -> str | None:
        value = self.body.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            raise Refused(400, f"{name} must be text of 1 to {limit} characters")
        return value.strip()


async def read_action(request: web.Request, roster: tuple[Agent, ...]) -> Action:
    agent = agent_with_token(roster, bearer_token(request.headers.get("Authorization")))
    if agent is None:
        raise Refused(401, "a valid agent token is required (Authorization: Bearer ...)")
    ticket_id = request.match_info.get("ticket_id")
    if ticket_id is not None and not TICKET_ID.match(ticket_id):
        raise Refused(404, "not a ticket id")
    body: Any = {}
    if request.can_read_body:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            raise Refused(400, "the body must be JSON") from None
    if not isinstance(body, dict):
        raise Refused(400, "the body must be a JSON object")
    return Action(agent, ticket_id, body, request.headers.get("Idempotency-Key") or uuid.uuid4().hex)


def agent_routes(roster: tuple[Agent, ...], router: Processor, pipeline: Pipeline, dispatch_key: str):
    def open_tickets() -> list[dict]:
        return routing.open_tickets(router.values("tickets"))

    def action(handler: Callable[[Action], Awaitable[web.Response]]) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def view(request: web.Request) -> web.Response:
            try:
                return await handler(await read_action(request, roster))
            except Refused as refused:
                return web.json_response({"error": refused.reason}, status=refused.status)

        return view

    async def accepted(publication: Awaitable[None], event: Event, **extra: str) -> web.Response:
        try:
            await publication
        except Exception:
            return web.json_response({"error": "not stored; retry with the same Idempotency-Key"}, status=503)
        return web.json_response({"event_id": event.id, **extra}, status=202)

    async def list_agents(request: web.Request) -> web.Response:
        held = assignment.loads(open_tickets())
        return web.json_response({"agents": [
            {"id": a.id, "name": a.name, "skills": sorted(a.skills), "tier": a.tier, "languages": sorted(a.languages),
             "presence": state.get("presence", "online"), "max_concurrent": state.get("max_concurrent", a.max_concurrent),
             "open_tickets": held.get(a.id, 0)}
            for a in roster
            for state in [router.lookup("agents", a.id) or {}]
        ]})

    async def queue(request: web.Request) -> web.Response:
        return web.json_response({"queued": assignment.next_in_queue(open_tickets())})

    async def ticket(request: web.Request) -> web.Response:
        found = router.lookup("tickets", request.match_info["ticket_id"])
        if found is None:
            return web.json_response({"error": "no such ticket"}, status=404)
        return web.json_response(found)

    @action
    async def resolve(act: Action) -> web.Response:
        """The ticket is resolved: `ticket.resolved`; its capacity goes to the queue."""
        ticket_id = act.ticket_id
        note = act.text("note", MAX_NOTE_CHARS, required=False)
        data = {"ticket_id": ticket_id, "resolved_at": utcnow(), "resolved_by": act.agent.id, **({"note": note} if note else {})}
        event = pipeline.event("ticket.resolved", f"{ticket_id}.resolved.{act.event_suffix()}", data, ticket_id)
        return await accepted(pipeline.publish(TICKETS_EVENTS, ticket_id, event), event)

    @action
    async def reply(act: Action) -> web.Response:
        """An answer to the customer: `ticket.reply_sent`, which the notifier delivers on
        the customer's channel. Checked for size only: every page shows it as text."""
        ticket_id = act.ticket_id
        reply_id = act.event_suffix(str(ticket_id))
        data = {"ticket_id": ticket_id, "reply_id": reply_id, "agent_id": act.agent.id, "agent_name": act.agent.name,
                "text": act.text("text", MAX_REPLY_CHARS), "sent_at": utcnow()}
        event = pipeline.event("ticket.reply_sent", f"{ticket_id}.reply.{reply_id}", data, ticket_id)
        return await accepted(pipeline.publish(TICKETS_EVENTS, ticket_id, event), event, reply_id=reply_id)

    @action
    async def escalate(act: Action) -> web.Response:
        """A first-line ticket to second line, with a reason; the dispatcher decides
        where it goes (`ticket.escalated`, and a new assignment)."""
        ticket_id = act.ticket_id
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
        application.router.add_get("/api/tickets/{ticket_id}", ticket)
        application.router.add_post("/api/agents/me/presence", set_presence)
        application.router.add_post("/api/tickets/{ticket_id}/reply", reply)
        application.router.add_post("/api/tickets/{ticket_id}/escalate", escalate)
        application.router.add_post("/api/tickets/{ticket_id}/resolve", resolve)

    return setup
