"""Feedback: the facts of every ticket, kept to answer how support is doing.

    tickets.events ──> ticket facts (channel, priority, created, assigned) ──> /api/figures/daily
"""
from __future__ import annotations

from aiohttp import web

from deskstream.events import Event
from deskstream.faustapp import create_app
from deskstream.http import HttpService, health_routes
from deskstream.pipeline import Pipeline
from deskstream.processor import Step
from deskstream.topics import TICKETS_EVENTS

from services.feedback import figures
from services.feedback.settings import FeedbackSettings

settings = FeedbackSettings.from_env()
app = create_app(settings.service)
pipeline = Pipeline(app, settings.service)


@pipeline.processor("facts", source=TICKETS_EVENTS, tables=("ticket_facts",))
def keep_ticket_facts(event: Event, step: Step) -> None:
    facts = step.table("ticket_facts")
    ticket_id = event.data["ticket_id"]
    updated = figures.record(facts.get(ticket_id), event.type, event.data, event.time)
    if updated is not None:
        facts[ticket_id] = updated


def figure_routes(application: web.Application) -> None:
    async def daily(request: web.Request) -> web.Response:
        return web.json_response({"days": figures.daily(keep_ticket_facts.values("ticket_facts"))})

    application.router.add_get("/api/figures/daily", daily)


app.web_server(HttpService(settings.service.http_host, settings.service.http_port, health_routes(pipeline), figure_routes))
