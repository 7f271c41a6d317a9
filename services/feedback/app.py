"""Feedback: after resolution, ask the customer how it went; keep the figures.

    tickets.events ──> ticket facts (times, agent, skill, channel, priority, survey) ──> /api/metrics, /metrics
    ticket.resolved ──(after FEEDBACK_SURVEY_DELAY_SECONDS, unless reopened)──> feedback.surveys (keyed by customer)
    feedback.surveys ──(at most one per customer per period)──> notify.requests (the survey, on the ticket's channel)
                     ──> tickets.events (survey.sent) and intake.raw (survey.opened: the next SMS/chat may answer it)
    survey links in the mail ──> /survey/{token} ──> tickets.events (survey.answered)
    incidents.events ──> what the ops dashboard shows of incidents and suspicions ──> /dashboard
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

import orjson
from aiohttp import web

from deskstream.erasure import Erasure, event_id
from deskstream.events import Event, parse_timestamp, stable_id, timestamp, utcnow
from deskstream.faustapp import create_app
from deskstream.http import HttpService, health_routes
from deskstream.pipeline import NotStored, Pipeline
from deskstream.processor import Step
from deskstream.recipients import recipient_key
from deskstream.replica import watching
from deskstream.topics import FEEDBACK_SURVEYS, INCIDENTS_EVENTS, INTAKE_RAW, NOTIFY_REQUESTS, TICKETS_EVENTS

from services.feedback import dashboard, erasure, figures, metrics, surveys
from services.feedback.dashboard_page import dashboard_page_routes
from services.feedback.exported import SupportFigures
from services.feedback.links import SurveyLinks
from services.feedback.settings import FeedbackSettings
from services.feedback.survey_clock import SurveyClock
from services.feedback.survey_pages import ALREADY_ANSWERED, CLOSED, RECORDED, survey_routes

log = logging.getLogger(__name__)

settings = FeedbackSettings.from_env()
app = create_app(settings.service)
pipeline = Pipeline(app, settings.service)
links = SurveyLinks(settings.link_secret, settings.surveys.answer_window_hours * 3600, settings.public_base_url)
facts_replica = pipeline.replica("ticket_facts")
pipeline.metrics.registry.register(SupportFigures(facts_replica.values))
incidents_replica = pipeline.replica("incidents")
DASHBOARD_EVERY_SECONDS = 1.0  # the live page gets at most one update a second
LOW_SCORE = 2


@pipeline.processor("facts", source=TICKETS_EVENTS, tables=("ticket_facts", "surveys"))
def keep_ticket_facts(event: Event, step: Step) -> None:
    facts = step.table("ticket_facts")
    if event.type == "customer.erased":
        forget_customer(Erasure.from_data(event.data), step, event)
        return
    ticket_id = event.data["ticket_id"]
    before = facts.get(ticket_id)
    if event.type == "survey.answered" and not answer_in_time(before, event.data):
        return  # none after the survey's window, for a survey this ticket no longer holds, or a link used before
    updated = metrics.record(before, event.type, event.data, event.time)
    if updated is not None:
        if event.type == "survey.answered":
            updated = remember_answer(step, updated, event.data)
        facts[ticket_id] = updated
    schedule_surveys(event, step)


def forget_customer(asked: Erasure, step: Step, erased: Event) -> None:
    """Surveys of the customer's tickets go; their facts keep the figures, not the words;
    the surveys hop forgets when it last surveyed each of the customer's ids."""
    surveys_table, facts = step.table("surveys"), step.table("ticket_facts")
    gone = erasure.surveys_to_delete(surveys_table.items(), asked)
    ids = erasure.customer_ids_of(surveys_table.items(), gone) | asked.customer_ids
    for ticket_id in gone:
        del surveys_table[ticket_id]
    for ticket_id, scrubbed in erasure.facts_to_scrub(facts.items(), {*asked.ticket_ids, *gone}).items():
        facts[ticket_id] = scrubbed
    told = asked.with_found(customer_ids=ids).to_data()
    for customer_id in sorted(ids):
        step.emit(FEEDBACK_SURVEYS, customer_id, pipeline.event(
            "survey.customer_erased", event_id(asked, "survey", erased.id, customer_id), told))


def answer_in_time(facts: dict | None, answered: dict) -> bool:
    survey = (facts or {}).get("survey") or {}
    if answered["via"] == "email_link" and answered["score"] in survey.get("links_used", []):
        return False  # each link once
    return survey.get("survey_id") == answered["survey_id"] and surveys.answer_open(survey["sent_at"], answered["answered_at"], settings.surveys)


def remember_answer(step: Step, facts: dict, answered: dict) -> dict:
    """The facts after an answer, with the links used so far, and the low score taken
    back to support once per survey."""
    survey = dict(facts["survey"])
    if answered["via"] == "email_link":
        survey["links_used"] = [*survey.get("links_used", []), answered["score"]]
    if answered["score"] <= LOW_SCORE and not survey.get("low_score_at"):
        close_the_loop(step, facts["ticket_id"], survey)
        survey["low_score_at"] = answered["answered_at"]
    return {**facts, "survey": survey}


def close_the_loop(step: Step, ticket_id: str, said: dict) -> None:
    """A survey's first score of 1 or 2 goes back to support, with the customer's
    comment: the ticket is reopened, or a note asks supervisors to follow up."""
    comment = f': "{said["comment"]}"' if said.get("comment") else " (no comment)"
    text = f"The customer scored the support {said['score']} of 5{comment}"
    event_id = f"{said['survey_id']}.low-score"
    if settings.low_score_action == "reopen":
        reopened = {"ticket_id": ticket_id, "reopened_at": utcnow(), "reopened_by": "feedback", "reason": text[:500]}
        step.emit(TICKETS_EVENTS, ticket_id, pipeline.event("ticket.reopened", event_id, reopened, ticket_id))
    else:
        note = {"ticket_id": ticket_id, "note_id": stable_id(event_id, length=12).lower(), "agent_id": "feedback",
                "agent_name": "Customer feedback", "text": f"Follow up, supervisors: {text}", "added_at": utcnow()}
        step.emit(TICKETS_EVENTS, ticket_id, pipeline.event("ticket.note_added", event_id, note, ticket_id))


def schedule_surveys(event: Event, step: Step) -> None:
    """A resolution schedules its survey; a reopening before it is due cancels it."""
    table = step.table("surveys")
    ticket_id = event.data["ticket_id"]
    if event.type == "ticket.created":
        if table.get(ticket_id) is not None:
            return  # a repeated creation changes nothing
        data = event.data
        table[ticket_id] = {"state": "open", "contact": {
            "customer_id": data["customer"].get("id") or recipient_key(data["reply_to"]), "channel": data["channel"],
            "recipient": data["reply_to"], "language": data["customer"].get("language", "en"),
            "name": data["customer"].get("name"), "thread_key": data.get("thread_key")}}
        return
    survey = table.get(ticket_id)
    if survey is None:
        return
    if event.type == "ticket.assigned":
        table[ticket_id] = {**survey, "agent_id": event.data["agent_id"]}
    elif event.type == "ticket.resolved" and survey["state"] != "scheduled" and newer(event.data["resolved_at"], survey):
        due_at = surveys.due_at(event.data["resolved_at"], settings.surveys)
        table[ticket_id] = {**survey, "state": "scheduled", "due_at": due_at, "resolved_at": event.data["resolved_at"],
                            "survey_id": surveys.survey_id(ticket_id, event.data["resolved_at"])}
        step.after_commit(lambda: clock.scheduled(step.partition, ticket_id, due_at))
    elif event.type == "ticket.reopened":
        cancelled = {"state": "cancelled"} if survey["state"] == "scheduled" else {}
        table[ticket_id] = {**survey, **cancelled, "reopened_at": event.data["reopened_at"]}


def newer(resolved_at: str, survey: dict) -> bool:
    """Whether a resolution is later than the last one surveyed and the last reopening:
    a replayed or late `ticket.resolved` brings no survey back."""
    seen = [survey[field] for field in ("resolved_at", "reopened_at") if survey.get(field)]
    return all(parse_timestamp(resolved_at) > parse_timestamp(stamp) for stamp in seen)


def survey_due(step: Step, ticket_id: str) -> None:
    """The clock's work, on the ticket's partition: hand the survey to the decision per customer."""
    table = step.table("surveys")
    survey = table.get(ticket_id)
    if not survey or survey["state"] != "scheduled":
        return
    contact = survey["contact"]
    due = {"survey_id": survey["survey_id"], "ticket_id": ticket_id, "customer_id": contact["customer_id"],
           "channel": contact["channel"], "recipient": contact["recipient"], "language": contact["language"],
           "name": contact.get("name"), "thread_key": contact.get("thread_key"), "agent_id": survey.get("agent_id"),
           "resolved_at": survey["resolved_at"]}
    step.emit(FEEDBACK_SURVEYS, contact["customer_id"], pipeline.event("survey.due", f"{survey['survey_id']}.due", due, ticket_id))
    table[ticket_id] = {**survey, "state": "due"}


@pipeline.processor("surveys", source=FEEDBACK_SURVEYS, tables=("customers",))
def ask_how_it_went(due: Event, step: Step) -> None:
    """One survey per customer per period: the decision is on the customer's partition."""
    data = due.data
    customers = step.table("customers")
    if due.type == "survey.customer_erased":  # keyed by one of the ids: every one found here goes
        for key in erasure.customers_to_delete(customers.items(), Erasure.from_data(data)):
            del customers[key]
        return
    customer = customers.get(data["customer_id"])
    now = utcnow()
    reason = surveys.skip_reason(customer=customer, ticket={"tags": []}, now=now, rules=settings.surveys)
    if reason is not None:
        log.info("survey skipped", extra={"ticket_id": data["ticket_id"], "survey_id": data["survey_id"], "reason": reason})
        return
    customers[data["customer_id"]] = {**(customer or {}), "last_surveyed_at": now}
    expires_at = timestamp(datetime.now(timezone.utc) + timedelta(hours=settings.surveys.answer_window_hours))
    request = survey_request(data)
    step.emit(NOTIFY_REQUESTS, recipient_key(data["recipient"]),
              pipeline.event("notify.requested", request["request_id"], request, data["ticket_id"]))
    sent = {"survey_id": data["survey_id"], "ticket_id": data["ticket_id"], "channel": data["channel"],
            "sent_at": now, "expires_at": expires_at}
    step.emit(TICKETS_EVENTS, data["ticket_id"], pipeline.event("survey.sent", f"{data['survey_id']}.sent", sent, data["ticket_id"]))
    if data["channel"] != "email" and data.get("thread_key"):
        opened = {"survey_id": data["survey_id"], "ticket_id": data["ticket_id"], "thread_key": data["thread_key"],
                  "expires_at": expires_at}
        step.emit(INTAKE_RAW, data["thread_key"], pipeline.event("survey.opened", f"{data['survey_id']}.opened", opened, data["ticket_id"]))


def survey_request(due: dict) -> dict:
    """The `notify.requested` of a survey: one-click links by e-mail, "reply 1-5" elsewhere."""
    params: dict = {"ticket_id": due["ticket_id"], "name": due.get("name")}
    template = "survey_reply"
    if due["channel"] == "email":
        template = "survey_links"
        params["links"] = {str(score): links.url(due["survey_id"], due["ticket_id"], score, due["language"]) for score in range(1, 6)}
    return {"request_id": f"{due['survey_id']}.survey", "ticket_id": due["ticket_id"], "reason": "survey",
            "recipient": due["recipient"], "language": due["language"], "template": template, "params": params}


async def answer_by_link(link: dict, comment: str | None) -> str:
    """A survey page's POST: record the answer, once per link, within the window (the
    facts hop has the last word: a link used twice in quick succession counts once)."""
    if not facts_replica.caught_up:
        raise NotStored("the survey facts are still loading")  # the page asks to try again
    facts = facts_replica.get(link["ticket_id"]) or {}
    survey = facts.get("survey") or {}
    if survey.get("survey_id") != link["survey_id"] or not survey.get("sent_at"):
        return CLOSED
    now = utcnow()
    if not surveys.answer_open(survey["sent_at"], now, settings.surveys):
        return CLOSED
    if link["score"] in survey.get("links_used", []):
        return ALREADY_ANSWERED
    answered = {"survey_id": link["survey_id"], "ticket_id": link["ticket_id"], "score": link["score"], "comment": comment,
                "answered_at": now, "via": "email_link"}
    event = pipeline.event("survey.answered", f"{link['survey_id']}.answer.link.{stable_id(now, str(link['score']), length=12)}",
                           answered, link["ticket_id"])
    await pipeline.publish(TICKETS_EVENTS, link["ticket_id"], event)  # NotStored: the page asks to try again
    return RECORDED


@pipeline.processor("incidents", source=INCIDENTS_EVENTS, tables=("incidents",))
def follow_incidents(event: Event, step: Step) -> None:
    key = event.data.get("incident_id") or event.data.get("suspicion_id")
    if key is None:
        return  # subscriptions and ticket links: not the dashboard's business
    table = step.table("incidents")
    changed = dashboard.incident_fold(table.get(key), event.type, event.data)
    if changed is not None:
        table[key] = changed


# One snapshot a second, shared by every open dashboard: making one reads every ticket's facts.
dashboard_snapshot = dashboard.Fresh(
    lambda: dashboard.snapshot(facts_replica.values(), incidents_replica.values(), datetime.now(timezone.utc)),
    DASHBOARD_EVERY_SECONDS)


def dashboard_routes(application: web.Application) -> None:
    async def current(request: web.Request) -> web.Response:
        return web.json_response(dashboard_snapshot())

    async def live(request: web.Request) -> web.StreamResponse:
        """Server-sent events: the whole snapshot again whenever facts or incidents change."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        with watching(facts_replica, incidents_replica) as watch:
            while True:
                await response.write(b"event: dashboard\ndata: " + orjson.dumps(dashboard_snapshot()) + b"\n\n")
                try:
                    await asyncio.wait_for(watch.changed(), timeout=15)
                except asyncio.TimeoutError:
                    pass  # a fresh snapshot keeps the connection (and the "updated" time) alive
                await asyncio.sleep(DASHBOARD_EVERY_SECONDS)

    application.router.add_get("/api/dashboard", current)
    application.router.add_get("/api/dashboard/events", live)


def metric_routes(application: web.Application) -> None:
    async def daily(request: web.Request) -> web.Response:
        return web.json_response({"days": figures.daily(facts_replica.values())})

    async def summary(request: web.Request) -> web.Response:
        by = request.query.get("by") or None
        if by is not None and by not in metrics.DIMENSIONS:
            return web.json_response({"error": f"by must be one of {', '.join(metrics.DIMENSIONS)}"}, status=400)
        rows = metrics.summary(facts_replica.values(), by=by, since=request.query.get("since"), until=request.query.get("until"))
        if request.query.get("format") == "csv" or "text/csv" in request.headers.get("Accept", ""):
            return web.Response(text=metrics.as_csv(rows), content_type="text/csv")
        return web.json_response({"by": by, "rows": rows})

    application.router.add_get("/api/figures/daily", daily)
    application.router.add_get("/api/metrics", summary)


clock = SurveyClock(pipeline.processors["facts"], survey_due)
app.add_dependency(clock)


@app.task
async def warn_about_a_random_link_secret() -> None:
    if settings.link_secret_is_random:
        log.warning("FEEDBACK_SURVEY_SECRET is not set: survey links sent before a restart will not open after it")


app.web_server(HttpService(settings.service.http_host, settings.service.http_port, health_routes(pipeline),
                           metric_routes, dashboard_routes, dashboard_page_routes(), survey_routes(links, answer_by_link)))
