"""The agent-facing API: the roster with its load, the queue, one ticket's routing, and
the actions an agent takes on a ticket (authenticated by the agent's bearer token)."""
from __future__ import annotations

import re
import uuid

import orjson
from aiohttp import web

from deskstream.events import stable_id, utcnow
from deskstream.pipeline import Pipeline
from deskstream.processor import Processor
from deskstream.topics import AGENTS_EVENTS, ROUTER_DISPATCH, TICKETS_EVENTS

from services.router import assignment, routing
from services.router.roster import Agent, agent_with_token

TICKET_ID = re.compile(r"^T-[A-Z2-7]{8}$")
MAX_NOTE_CHARS = 2000
MAX_CAPACITY = 50
MAX_REPLY_CHARS = 8000
MAX_REASON_CHARS = 500


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return (header[len("Bearer "):].strip() or None) if header.startswith("Bearer ") else None


def agent_routes(roster: tuple[Agent, ...], router: Processor, pipeline: Pipeline, dispatch_key: str):
    def open_tickets() -> list[dict]:
        return routing.open_tickets(router.values("tickets"))

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

    async def resolve(request: web.Request) -> web.Response:
        """An agent resolved the ticket: `ticket.resolved`, published before the answer.
        An `Idempotency-Key` header makes a retried request the same event."""
        agent = agent_with_token(roster, bearer(request))
        if agent is None:
            return web.json_response({"error": "a valid agent token is required (Authorization: Bearer ...)"}, status=401)
        ticket_id = request.match_info["ticket_id"]
        if not TICKET_ID.match(ticket_id):
            return web.json_response({"error": "not a ticket id"}, status=404)
        note = None
        if request.can_read_body:
            try:
                body = orjson.loads(await request.read())
            except orjson.JSONDecodeError:
                return web.json_response({"error": "the body must be JSON"}, status=400)
            note = body.get("note") if isinstance(body, dict) else None
            if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE_CHARS):
                return web.json_response({"error": f"note must be text of at most {MAX_NOTE_CHARS} characters"}, status=400)
        key = request.headers.get("Idempotency-Key") or uuid.uuid4().hex
        data = {"ticket_id": ticket_id, "resolved_at": utcnow(), "resolved_by": agent.id, **({"note": note} if note else {})}
        event = pipeline.event("ticket.resolved", f"{ticket_id}.resolved.{stable_id(agent.id, key, length=12)}", data, ticket_id)
        try:
            await pipeline.publish(TICKETS_EVENTS, ticket_id, event)
        except Exception:
            return web.json_response({"error": "not stored; retry with the same Idempotency-Key"}, status=503)
        return web.json_response({"event_id": event.id}, status=202)

    async def set_presence(request: web.Request) -> web.Response:
        """The agent says they are online, away or offline, and optionally how many
        tickets they can hold: `agent.presence_changed` on agents.events, which the
        dispatcher follows (offline hands back unanswered tickets)."""
        agent = agent_with_token(roster, bearer(request))
        if agent is None:
            return web.json_response({"error": "a valid agent token is required (Authorization: Bearer ...)"}, status=401)
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return web.json_response({"error": "the body must be JSON"}, status=400)
        presence = body.get("presence") if isinstance(body, dict) else None
        capacity = body.get("max_concurrent") if isinstance(body, dict) else None
        if presence not in routing.PRESENCES:
            return web.json_response({"error": f"presence must be one of {', '.join(routing.PRESENCES)}"}, status=400)
        if capacity is not None and (not isinstance(capacity, int) or isinstance(capacity, bool) or not 0 <= capacity <= MAX_CAPACITY):
            return web.json_response({"error": f"max_concurrent must be a whole number from 0 to {MAX_CAPACITY}"}, status=400)
        key = request.headers.get("Idempotency-Key") or uuid.uuid4().hex
        data = {"agent_id": agent.id, "presence": presence, "changed_at": utcnow(),
                **({"max_concurrent": capacity} if capacity is not None else {})}
        event = pipeline.event("agent.presence_changed", f"{agent.id}.presence.{stable_id(agent.id, key, length=12)}", data, agent.id)
        try:
            await pipeline.publish(AGENTS_EVENTS, agent.id, event)
        except Exception:
            return web.json_response({"error": "not stored; retry with the same Idempotency-Key"}, status=503)
        return web.json_response({"event_id": event.id}, status=202)

    async def reply(request: web.Request) -> web.Response:
        """An agent answers the customer: `ticket.reply_sent`, which the notifier delivers
        on the customer's channel. The text is the customer's to read, so it is checked
        for size only; every page shows it as text."""
        agent = agent_with_token(roster, bearer(request))
        if agent is None:
            return web.json_response({"error": "a valid agent token is required (Authorization: Bearer ...)"}, status=401)
        ticket_id = request.match_info["ticket_id"]
        if not TICKET_ID.match(ticket_id):
            return web.json_response({"error": "not a ticket id"}, status=404)
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return web.json_response({"error": "the body must be JSON"}, status=400)
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_REPLY_CHARS:
            return web.json_response({"error": f"text must be 1 to {MAX_REPLY_CHARS} characters"}, status=400)
        reply_id = stable_id(agent.id, ticket_id, request.headers.get("Idempotency-Key") or uuid.uuid4().hex, length=12)
        data = {"ticket_id": ticket_id, "reply_id": reply_id, "agent_id": agent.id, "agent_name": agent.name,
                "text": text.strip(), "sent_at": utcnow()}
        event = pipeline.event("ticket.reply_sent", f"{ticket_id}.reply.{reply_id}", data, ticket_id)
        try:
            await pipeline.publish(TICKETS_EVENTS, ticket_id, event)
        except Exception:
            return web.json_response({"error": "not stored; retry with the same Idempotency-Key"}, status=503)
        return web.json_response({"event_id": event.id, "reply_id": reply_id}, status=202)

    async def escalate(request: web.Request) -> web.Response:
        """An agent sends a first-line ticket to second line, with a reason; the
        dispatcher decides where it goes (ticket.escalated, and a new assignment)."""
        agent = agent_with_token(roster, bearer(request))
        if agent is None:
            return web.json_response({"error": "a valid agent token is required (Authorization: Bearer ...)"}, status=401)
        ticket_id = request.match_info["ticket_id"]
        if not TICKET_ID.match(ticket_id):
            return web.json_response({"error": "not a ticket id"}, status=404)
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return web.json_response({"error": "the body must be JSON"}, status=400)
        reason = body.get("reason") if isinstance(body, dict) else None
        if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON_CHARS:
            return web.json_response({"error": f"reason must be 1 to {MAX_REASON_CHARS} characters"}, status=400)
        key = request.headers.get("Idempotency-Key") or uuid.uuid4().hex
        data = {"ticket_id": ticket_id, "agent_id": agent.id, "reason": reason.strip()}
        event = pipeline.event("dispatch.escalation_requested", f"{ticket_id}.escalation.{stable_id(agent.id, key, length=12)}", data, ticket_id)
        try:
            await pipeline.publish(ROUTER_DISPATCH, dispatch_key, event)
        except Exception:
            return web.json_response({"error": "not stored; retry with the same Idempotency-Key"}, status=503)
        return web.json_response({"event_id": event.id}, status=202)

    def setup(application: web.Application) -> None:
        application.router.add_post("/api/tickets/{ticket_id}/escalate", escalate)
        application.router.add_post("/api/tickets/{ticket_id}/reply", reply)
        application.router.add_post("/api/agents/me/presence", set_presence)
        application.router.add_post("/api/tickets/{ticket_id}/resolve", resolve)
        application.router.add_get("/api/agents", list_agents)
        application.router.add_get("/api/queue", queue)
        application.router.add_get("/api/tickets/{ticket_id}", ticket)

    return setup
