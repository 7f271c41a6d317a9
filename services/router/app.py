"""Router: every new ticket triaged, then given to an agent who can take it.

    tickets.events (ticket.created) ──triage──> ticket.classified
                                    ──assign──> ticket.assigned, or queued until an agent is free
    tickets.events (ticket.resolved/closed) ──> capacity freed, next queued ticket assigned
"""
from __future__ import annotations

import logging

from deskstream.events import Event
from deskstream.faustapp import create_app
from deskstream.http import HttpService, health_routes
from deskstream.pipeline import Pipeline
from deskstream.processor import Step
from deskstream.topics import TICKETS_EVENTS

from services.router import routing
from services.router.roster import load_roster
from services.router.settings import RouterSettings
from services.router.triage import RuleBook, RulesError
from services.router.web import agent_routes

log = logging.getLogger(__name__)

settings = RouterSettings.from_env()
app = create_app(settings.service)
pipeline = Pipeline(app, settings.service)
rulebook = RuleBook(settings.rules_path)
roster = load_roster(settings.roster_path)

FREES_CAPACITY = {"ticket.resolved", "ticket.closed"}


def emit_assignment(step: Step, given: routing.Assignment) -> None:
    ticket_id = given.data["ticket_id"]
    step.emit(TICKETS_EVENTS, ticket_id, pipeline.event("ticket.assigned", given.event_id, given.data, ticket_id))
    step.table("tickets")[ticket_id] = given.ticket


@pipeline.processor("routing", source=TICKETS_EVENTS, tables=("tickets",))
def route_tickets(event: Event, step: Step) -> None:
    tickets = step.table("tickets")
    ticket_id = event.data["ticket_id"]
    if event.type == "ticket.created" and tickets.get(ticket_id) is None:
        routed = routing.route_new_ticket(rulebook.rules, roster, event.data, tickets.values())
        step.emit(TICKETS_EVENTS, ticket_id, pipeline.event("ticket.classified", f"{ticket_id}.classified", routed.classified, ticket_id))
        tickets[ticket_id] = routed.ticket
        if routed.assignment is not None:
            emit_assignment(step, routed.assignment)
    elif event.type in FREES_CAPACITY and tickets.get(ticket_id, {}).get("status") in routing.OPEN:
        closed, given = routing.close_and_refill(roster, tickets.values(), tickets.get(ticket_id), event.type.removeprefix("ticket."))
        tickets[ticket_id] = closed
        for assigned in given:
            emit_assignment(step, assigned)


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
        agent_routes(roster, route_tickets),
    )
)
