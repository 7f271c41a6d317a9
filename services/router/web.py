"""The agent-facing API: the roster with its load, the queue, and one ticket's routing."""
from __future__ import annotations

from aiohttp import web

from deskstream.processor import Processor

from services.router import assignment, routing
from services.router.roster import Agent


def agent_routes(roster: tuple[Agent, ...], router: Processor):
    def open_tickets() -> list[dict]:
        return routing.open_tickets(router.values("tickets"))

    async def list_agents(request: web.Request) -> web.Response:
        held = assignment.loads(open_tickets())
        return web.json_response({"agents": [
            {"id": a.id, "name": a.name, "skills": sorted(a.skills), "tier": a.tier, "languages": sorted(a.languages),
             "max_concurrent": a.max_concurrent, "open_tickets": held.get(a.id, 0)}
            for a in roster
        ]})

    async def queue(request: web.Request) -> web.Response:
        return web.json_response({"queued": assignment.next_in_queue(open_tickets())})

    async def ticket(request: web.Request) -> web.Response:
        found = router.lookup("tickets", request.match_info["ticket_id"])
        if found is None:
            return web.json_response({"error": "no such ticket"}, status=404)
        return web.json_response(found)

    def setup(application: web.Application) -> None:
        application.router.add_get("/api/agents", list_agents)
        application.router.add_get("/api/queue", queue)
        application.router.add_get("/api/tickets/{ticket_id}", ticket)

    return setup
