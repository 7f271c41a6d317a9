"""Router: every new ticket triaged, then given to an agent who can take it.

    tickets.events (ticket.created) ──triage──> ticket.classified
                                    ──assign──> ticket.assigned, or queued until an agent is free
    tickets.events (ticket.resolved/closed) ──> capacity freed, next queued ticket assigned
"""
from __future__ import annotations

import logging
from typing import Any

from deskstream.faustapp import Pipeline, create_app
from deskstream.http import HttpService, health_routes
from deskstream.topics import TICKETS_EVENTS

from services.router import assignment
from services.router.roster import load_roster
from services.router.settings import RouterSettings
from services.router.triage import RuleBook, RulesError, classify
from services.router.web import agent_routes

log = logging.getLogger(__name__)

settings = RouterSettings.from_env()
app = create_app(settings.service)
pipeline = Pipeline(app, "router")
rulebook = RuleBook(settings.rules_path)
roster = load_roster(settings.roster_path)
tickets = pipeline.table("tickets")

FREES_CAPACITY = {"ticket.resolved", "ticket.closed"}


def open_tickets() -> list[dict[str, Any]]:
    return [t for t in tickets.values() if t and t["status"] in ("assigned", "queued")]


async def assign(ticket: dict[str, Any], agent_id: str, agent_name: str, wait: int) -> None:
    data = {
        "ticket_id": ticket["ticket_id"],
        "agent_id": agent_id,
        "agent_name": agent_name,
        "skill": ticket["skill"],
        "priority": ticket["priority"],
        "tier": ticket["tier"],
        "estimated_wait_minutes": wait,
    }
    event_id = f"{ticket['ticket_id']}.assigned.{ticket['assignments'] + 1}"
    await pipeline.send(TICKETS_EVENTS, ticket["ticket_id"], pipeline.event("ticket.assigned", event_id, data, ticket["ticket_id"]))
    ticket.update(status="assigned", agent_id=agent_id, assignments=ticket["assignments"] + 1)


async def triage_and_assign(created: dict[str, Any]) -> None:
    ticket_id = created["ticket_id"]
    language = created["customer"]["language"]
    verdict = classify(rulebook.rules, created.get("subject"), created["body_text"])
    decision = assignment.decide(roster, open_tickets(), verdict.skill, verdict.priority, verdict.tier, language)
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
    await pipeline.send(TICKETS_EVENTS, ticket_id, pipeline.event("ticket.classified", f"{ticket_id}.classified", classified, ticket_id))
    ticket = {
        "ticket_id": ticket_id, "status": "queued", "skill": verdict.skill, "priority": verdict.priority,
        "tier": verdict.tier, "language": language, "channel": created["channel"], "agent_id": None,
        "received_at": created["received_at"], "assignments": 0,
    }
    if decision.agent is not None:
        await assign(ticket, decision.agent.id, decision.agent.name, decision.estimated_wait_minutes)
    tickets[ticket_id] = ticket


async def free_capacity(ticket_id: str, status: str) -> None:
    ticket = tickets.get(ticket_id)
    if ticket is None or ticket["status"] not in ("assigned", "queued"):
        return
    tickets[ticket_id] = {**ticket, "status": status}
    current = open_tickets()
    held = assignment.loads(current)
    for waiting in assignment.next_in_queue(current):
        agent = assignment.choose_agent(roster, held, waiting["skill"], waiting["tier"], waiting["language"])
        if agent is None:
            continue
        queued = dict(waiting)
        await assign(queued, agent.id, agent.name, 0)
        tickets[queued["ticket_id"]] = queued
        held[agent.id] += 1


@app.agent(pipeline.topic(TICKETS_EVENTS))
async def route_tickets(stream):
    async for incoming in pipeline.events(stream, TICKETS_EVENTS):
        async with pipeline.handling(incoming) as event:
            if event.type == "ticket.created" and tickets.get(event.data["ticket_id"]) is None:
                await triage_and_assign(event.data)
            elif event.type in FREES_CAPACITY:
                await free_capacity(event.data["ticket_id"], event.type.removeprefix("ticket."))


@app.timer(settings.rules_reload_seconds)
async def reload_rules() -> None:
    try:
        if rulebook.refresh():
            log.info("triage rules reloaded", extra={"version": rulebook.rules.version})
    except RulesError as error:
        log.error("triage rules not reloaded; previous rules stay", extra={"error": str(error)})


app.web_server(
    HttpService(
        settings.service.http_host,
        settings.service.http_port,
        health_routes(pipeline),
        agent_routes(roster, tickets, open_tickets),
    )
)
