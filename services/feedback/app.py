"""Feedback: the facts of every ticket, kept to answer how support is doing.

    tickets.events ──> ticket facts (channel, priority, created, assigned) ──> /api/figures/daily
"""
from __future__ import annotations

from aiohttp import web

from deskstream.faustapp import Pipeline, create_app
from deskstream.http import HttpService, health_routes
from deskstream.topics import TICKETS_EVENTS

from services.feedback import figures
from services.feedback.settings import FeedbackSettings

settings = FeedbackSettings.from_env()
app = create_app(settings.service)
pipeline = Pipeline(app, "feedback")
ticket_facts = pipeline.table("ticket_facts")


@app.agent(pipeline.topic(TICKETS_EVENTS))
async def keep_ticket_facts(stream):
    async for incoming in pipeline.events(stream, TICKETS_EVENTS):
        async with pipeline.handling(incoming) as event:
            ticket_id = event.data["ticket_id"]
            updated = figures.record(ticket_facts.get(ticket_id), event.type, event.data, event.time)
            if updated is not None:
                ticket_facts[ticket_id] = updated


def figure_routes(application: web.Application) -> None:
    async def daily(request: web.Request) -> web.Response:
        return web.json_response({"days": figures.daily(ticket_facts.values())})

    application.router.add_get("/api/figures/daily", daily)


app.web_server(HttpService(settings.service.http_host, settings.service.http_port, health_routes(pipeline), figure_routes))
