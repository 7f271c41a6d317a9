"""Router: every new ticket triaged, then given to an agent who can take it.

    tickets.events (ticket.created) ──triage──> router.dispatch ──place──> ticket.classified
                                                                      ──> ticket.assigned, or queued until an agent is free
    tickets.events (ticket.resolved) ──> router.dispatch ──> capacity freed, next queued ticket assigned
    tickets.events (ticket.reopened) ──> router.dispatch ──> back to its agent if free, else queued
    tickets.events (ticket.reply_sent) ──> router.dispatch ──> first response recorded
    agents.events (presence, capacity) ──> router.dispatch ──> offline hands back unanswered tickets; free capacity to the queue
    a tick every ROUTER_SLA_TICK_SECONDS ──> router.dispatch ──> ticket.sla_breached, and first line escalated to second
    tickets.events (every message, reply, note and change) ──> conversations table ──> the agent console's timeline

The agent console (/console) and the agent API (/api) are served by every worker.
"""
from __future__ import annotations

import logging
from datetime import datetime

from deskstream.erasure import Erasure, event_id
from deskstream.events import Event, utcnow
from deskstream.faustapp import create_app
from deskstream.http import HttpService, health_routes
from deskstream.pipeline import NotStored, Pipeline
from deskstream.processor import Step
from deskstream.topics import AGENTS_EVENTS, ROUTER_DISPATCH, TICKETS_EVENTS

from services.router import conversations, erasure, routing
from services.router.console import Console, console_routes
from services.router.guides import load_guides
from services.router.knowledge import KnowledgeBase
from services.router.macros import load_macros
from services.router.roster import load_roster
from services.router.settings import RouterSettings
from services.router.signin import Sessions
from services.router.triage import RuleBook, RulesError
from services.router.web import Tables, agent_routes

log = logging.getLogger(__name__)

settings = RouterSettings.from_env()
app = create_app(settings.service)
pipeline = Pipeline(app, settings.service)
rulebook = RuleBook(settings.rules_path)
roster = load_roster(settings.roster_path)

# Every decision about agents and queues is taken by one hop on one partition: the
# records of router.dispatch all carry this key. Triage, which needs only the ticket,
# runs in parallel on every worker; placing tickets, which needs every agent's load,
# runs where that one partition is, so two workers can never give an agent more
# tickets than it can hold or a ticket to two agents (KIP-98 fencing keeps a deposed
# owner from committing). One decider handles thousands of tickets a second; support
# traffic is far below that.
DISPATCH_KEY = "dispatch"


def at(event: Event) -> datetime:
    return datetime.fromisoformat(event.time.replace("Z", "+00:00"))


@pipeline.processor("triage", source=TICKETS_EVENTS)
def triage_new_tickets(event: Event, step: Step) -> None:
    if event.type == "customer.erased":  # the dispatcher's tables are on its one partition
        forgotten = pipeline.event("dispatch.customer_erased", event_id(Erasure.from_data(event.data), "dispatch", event.id), event.data)
        step.emit(ROUTER_DISPATCH, DISPATCH_KEY, forgotten)
        return
    ticket_id = event.data["ticket_id"]
    if event.type == "ticket.created":
        triaged = routing.triage(rulebook.rules, event.data)
        step.emit(ROUTER_DISPATCH, DISPATCH_KEY, pipeline.event("dispatch.ticket_triaged", f"{ticket_id}.triaged", triaged, ticket_id))
    elif event.type == "ticket.resolved":
        closed = {"ticket_id": ticket_id, "status": "resolved"}
        step.emit(ROUTER_DISPATCH, DISPATCH_KEY, pipeline.event("dispatch.ticket_closed", f"{event.id}.closed", closed, ticket_id))
    elif event.type == "ticket.reopened":
        again = {"ticket_id": ticket_id, "reopened_at": event.data["reopened_at"]}
        step.emit(ROUTER_DISPATCH, DISPATCH_KEY, pipeline.event("dispatch.ticket_reopened", f"{event.id}.reopened", again, ticket_id))
    elif event.type == "ticket.reply_sent":
        answered = {"ticket_id": ticket_id, "answered_at": event.data["sent_at"]}
        step.emit(ROUTER_DISPATCH, DISPATCH_KEY, pipeline.event("dispatch.ticket_answered", f"{event.id}.answered", answered, ticket_id))


@pipeline.processor("conversations", source=TICKETS_EVENTS, tables=("conversations",))
def keep_conversations(event: Event, step: Step) -> None:
    if event.type == "customer.erased":
        table = step.table("conversations")
        for key in erasure.conversations_to_delete(table.items(), Erasure.from_data(event.data)):
            del table[key]
        return
    ticket_id = event.data.get("ticket_id")
    if not ticket_id:
        return
    table = step.table("conversations")
    updated = conversations.record(table.get(ticket_id), event.type, event.id, event.time, event.data)
    if updated is not None:
        table[ticket_id] = updated


@pipeline.processor("agents", source=AGENTS_EVENTS)
def follow_agents(event: Event, step: Step) -> None:
    changed = {key: event.data[key] for key in ("agent_id", "presence", "max_concurrent") if key in event.data}
    step.emit(ROUTER_DISPATCH, DISPATCH_KEY, pipeline.event("dispatch.agent_changed", f"{event.id}.dispatch", changed, None))


@pipeline.processor("dispatch", source=ROUTER_DISPATCH, tables=("tickets", "agents", "customers", "handling"))
def place_tickets_with_agents(command: Event, step: Step) -> None:
    if command.type == "dispatch.customer_erased":
        tickets, customers = step.table("tickets"), step.table("customers")
        gone_tickets, gone_customers = erasure.dispatcher_rows_to_delete(tickets.items(), customers.items(), Erasure.from_data(command.data))
        for key in gone_tickets:
            del tickets[key]
        for key in gone_customers:
            del customers[key]
        return
    boards = routing.Boards(step.table("tickets"), step.table("agents"), step.table("customers"), step.table("handling"))
    outcome = routing.dispatch(roster, boards, command.type, command.data, at(command), settings.policy)
    if outcome.classified is not None:
        ticket_id = outcome.classified["ticket_id"]
        step.emit(TICKETS_EVENTS, ticket_id, pipeline.event("ticket.classified", f"{ticket_id}.classified", outcome.classified, ticket_id))
    for breach in outcome.breaches:
        breached = {"ticket_id": breach.ticket_id, "target": breach.target, "priority": breach.priority, "due_at": breach.due_at,
                    "breached_at": command.time, "agent_id": breach.agent_id}
        step.emit(TICKETS_EVENTS, breach.ticket_id, pipeline.event(
            "ticket.sla_breached", f"{breach.ticket_id}.sla_breached.{breach.target}", breached, breach.ticket_id))
    for raised in outcome.escalations:
        ticket_id = raised["ticket_id"]
        escalated = {**raised, "escalated_at": command.time}
        step.emit(TICKETS_EVENTS, ticket_id, pipeline.event("ticket.escalated", f"{ticket_id}.escalated.{raised['escalations']}", escalated, ticket_id))
    for back in outcome.requeued:
        ticket_id = back["ticket_id"]
        requeued = {**back, "requeued_at": command.time}
        step.emit(TICKETS_EVENTS, ticket_id, pipeline.event("ticket.requeued", f"{ticket_id}.requeued.{back['requeues']}", requeued, ticket_id))
    for given in outcome.assignments:
        ticket_id = given.data["ticket_id"]
        step.emit(TICKETS_EVENTS, ticket_id, pipeline.event("ticket.assigned", given.event_id, given.data, ticket_id))
    for table, writes in outcome.writes().items():
        for key, value in writes.items():
            step.table(table)[key] = value


@app.timer(settings.sla_tick_seconds)
async def tick() -> None:
    """Time for the dispatcher's service-level check. Every worker sends one: a tick
    more changes nothing, and one lost is made up by the next."""
    now = utcnow()
    try:
        await pipeline.publish(ROUTER_DISPATCH, DISPATCH_KEY, pipeline.event("dispatch.tick", f"tick.{settings.service.name}.{now}", {"at": now}))
    except NotStored:
        log.warning("sla tick not sent; the next one makes up for it")


@app.task
async def warn_of_a_generated_session_secret() -> None:
    """At start, once the worker logs in JSON."""
    if settings.console.session_secret_generated:
        log.warning("ROUTER_SESSION_SECRET is not set: console sessions last only as long as this worker, and only on it")


@app.timer(settings.rules_reload_seconds)
async def reload_rules() -> None:
    try:
        if rulebook.refresh():
            log.info("triage rules reloaded", extra={"version": rulebook.rules.version})
    except RulesError as error:
        log.error("triage rules not reloaded; previous rules stay", extra={"error": str(error)})


sessions = Sessions(settings.console.session_secret, settings.console.session_hours * 3600)
tables = Tables(pipeline.replica("tickets"), pipeline.replica("agents"), pipeline.replica("conversations"))
console = Console(
    roster=roster,
    sessions=sessions,
    knowledge=KnowledgeBase.load(settings.console.knowledge_path),
    macros=load_macros(settings.console.macros_path),
    guides=load_guides(settings.console.guides_path),
    secure_cookies=settings.console.cookie_secure,
    trusted_proxies=settings.console.trusted_proxies,
)

app.web_server(
    HttpService(
        settings.service.http_host,
        settings.service.http_port,
        health_routes(pipeline),
        agent_routes(roster, tables, pipeline, DISPATCH_KEY, settings.policy.targets, sessions),
        console_routes(console, tables, settings.policy.targets),
    )
)
