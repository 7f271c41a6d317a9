"""The incident API (notifier, port 8082): ops declare, update and resolve outages, and
say who wants to hear about which service. A thin aiohttp shell over
`incident_requests`, which checks every body; this module authenticates, reads the
incidents table, publishes, and answers.

    POST   /api/incidents                       declare           201 {"incident_id", "update_id"}
    POST   /api/incidents/{incident_id}/updates news              202 {"incident_id", "update_id"}
    POST   /api/incidents/{incident_id}/resolve resolution        202 {"incident_id", "update_id"} (409 if resolved)
    GET    /api/incidents                       every incident, newest first: {"incidents": [...]}
    GET    /api/incidents/{incident_id}         one incident, as the incidents table holds it
    POST   /api/subscriptions                   one subscription, or {"subscriptions": [...]} (up to 5000): 202 {"count"}
    DELETE /api/subscriptions                   {"service", "recipient"}: 202 {"count": 1}

Every route wants `Authorization: Bearer <ops token>` (NOTIFIER_OPS_TOKEN); with no
token configured the API answers 503 rather than run open. Events name their author
by a hash of the token (`ops:` and 8 hex digits): tokens are not names, and neither a
token nor its full hash is ever logged or published.

Reads come from this worker's replica of the incidents table, which trails the
notifier's incidents hop by a transaction: an incident declared a moment ago may
answer 404 for a second. An `Idempotency-Key` header makes a retried declare or update
(after a 503, when the first attempt may have been stored after all) the same
incident and update ids, so consumers drop the repeat.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from typing import Any, Awaitable, Callable

import orjson
from aiohttp import web

from deskstream.bearer import bearer_token
from deskstream.events import Event, utcnow
from deskstream.http import RouteSetup
from deskstream.pipeline import NotStored, Pipeline
from deskstream.replica import TableReplica
from deskstream.topics import INCIDENTS_EVENTS

from services.notifier import incident_requests
from services.notifier.incident_requests import InvalidIncidentRequest

log = logging.getLogger(__name__)

# A 5000-subscription body is about 1 MB; this route reads up to this much whatever
# the server-wide limit (HttpService's client_max_size) is, which stays small for the rest.
MAX_SUBSCRIPTIONS_BODY_BYTES = 2 * 1024 * 1024
PUBLISH_CHUNK = 500  # subscription events in flight at once
MAX_IDEMPOTENCY_KEY_CHARS = 200
NO_TOKEN_CONFIGURED = "no NOTIFIER_OPS_TOKEN is configured"  # nosec B105  # an error message, not a token


class Refused(Exception):
    """A request the API answers with `{"error": reason}` and `status`."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def operator(token: str) -> str:
    """Who made a change, as events record it: `ops:` and the first 8 hex digits of the
    token's sha256. Enough to tell operators apart in an incident's history, far too
    little to help guess the token."""
    return "ops:" + hashlib.sha256(token.encode()).hexdigest()[:8]


def authenticated(request: web.Request, ops_tokens: frozenset[str]) -> str:
    """The caller's `by`; every token is compared in constant time, so the answer's
    timing says nothing about how close a guess was."""
    if not ops_tokens:
        raise Refused(503, NO_TOKEN_CONFIGURED)
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        raise Refused(401, "an ops token is required (Authorization: Bearer ...)")
    given = token.encode()
    matches = [hmac.compare_digest(given, known.encode()) for known in ops_tokens]
    if not any(matches):
        raise Refused(401, "the ops token is not valid")
    return operator(token)


async def json_body(request: web.Request, max_bytes: int | None = None) -> Any:
    """The request's JSON; `max_bytes` raises this route's size limit above the server's."""
    reader = request.clone(client_max_size=max_bytes) if max_bytes is not None else request
    try:
        raw = await reader.read()
    except web.HTTPRequestEntityTooLarge:
        limit = max_bytes or request.client_max_size
        raise Refused(413, f"the body is larger than {limit} bytes") from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Refused(400, "the body must be JSON") from None


def retry_key(request: web.Request, by: str, *scope: str) -> str | None:
    """The Idempotency-Key, bound to the caller and what it is about, or None."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_CHARS:
        raise Refused(400, f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters")
    return "\x1f".join((by, *scope, key))


Handler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]
View = Callable[[web.Request], Awaitable[web.StreamResponse]]


def incident_routes(pipeline: Pipeline, incidents: TableReplica, ops_tokens: frozenset[str]) -> RouteSetup:
    """The routes above; `incidents` is this worker's replica of the notifier's incidents
    table, `ops_tokens` the accepted bearer tokens (none: every request gets 503)."""

    def ops_only(handler: Handler) -> View:
        async def view(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request, authenticated(request, ops_tokens))
            except InvalidIncidentRequest as invalid:
                return web.json_response({"error": str(invalid)}, status=invalid.status)
            except Refused as refused:
                return web.json_response({"error": refused.reason}, status=refused.status)

        return view

    def incident_named(request: web.Request) -> dict[str, Any]:
        incident_id = request.match_info["incident_id"]
        found = incidents.get(incident_id) if incident_requests.INCIDENT_ID.match(incident_id) else None
        if found is None:
            raise Refused(404, "no such incident (a new one may take a second to show)")
        return found

    async def publish(key: str, event: Event) -> None:
        try:
            await pipeline.publish(INCIDENTS_EVENTS, key, event)
        except NotStored:
            raise Refused(503, "not stored; retry (with the same Idempotency-Key, if you sent one)") from None

    async def publish_all(events: list[tuple[str, Event]]) -> None:
        """Many records, PUBLISH_CHUNK at a time: the producer batches what is in flight
        together, so 5000 subscriptions take a few round trips rather than 5000."""
        for start in range(0, len(events), PUBLISH_CHUNK):
            chunk = events[start:start + PUBLISH_CHUNK]
            results = await asyncio.gather(
                *(pipeline.publish(INCIDENTS_EVENTS, key, event) for key, event in chunk), return_exceptions=True)
            failures = [result for result in results if isinstance(result, BaseException)]
            if any(not isinstance(failure, NotStored) for failure in failures):
                raise next(failure for failure in failures if not isinstance(failure, NotStored))
            if failures:
                raise Refused(503, f"{start + len(chunk) - len(failures)} of {len(events)} subscriptions were stored; "
                                   "send the whole request again (a repeat changes nothing)")

    @ops_only
    async def declare(request: web.Request, by: str) -> web.Response:
        body = await json_body(request)
        key = retry_key(request, by, "declare")
        incident_id = incident_requests.new_incident_id(key)
        data = incident_requests.declared(body, by=by, at=utcnow(), incident_id=incident_id,
                                          update_id=incident_requests.new_update_id(key))
        await publish(incident_id, pipeline.event("incident.declared", f"{incident_id}.declared", data, incident_id))
        log.info("incident declared", extra={"incident_id": incident_id, "service": data["service"], "by": by})
        return web.json_response({"incident_id": incident_id, "update_id": data["update_id"]}, status=201)

    @ops_only
    async def post_update(request: web.Request, by: str) -> web.Response:
        incident = incident_named(request)
        body = await json_body(request)
        incident_id = incident["incident_id"]
        update_id = incident_requests.new_update_id(retry_key(request, by, "update", incident_id))
        data = incident_requests.updated(body, incident=incident, by=by, at=utcnow(), update_id=update_id)
        await publish(incident_id, pipeline.event("incident.updated", f"{incident_id}.{update_id}", data, incident_id))
        log.info("incident updated", extra={"incident_id": incident_id, "update_id": update_id, "by": by})
        return web.json_response({"incident_id": incident_id, "update_id": update_id}, status=202)

    @ops_only
    async def resolve(request: web.Request, by: str) -> web.Response:
        incident = incident_named(request)
        body = await json_body(request)
        incident_id = incident["incident_id"]
        update_id = incident_requests.new_update_id(retry_key(request, by, "resolve", incident_id))
        data = incident_requests.resolved(body, incident=incident, by=by, at=utcnow(), update_id=update_id)
        # One resolution per incident: the event id has no update id, so a second resolve
        # that raced this one past the table check is a duplicate consumers drop.
        await publish(incident_id, pipeline.event("incident.resolved", f"{incident_id}.resolved", data, incident_id))
        log.info("incident resolved", extra={"incident_id": incident_id, "by": by})
        return web.json_response({"incident_id": incident_id, "update_id": update_id}, status=202)

    @ops_only
    async def list_incidents(request: web.Request, by: str) -> web.Response:
        newest_first = sorted(incidents.values(), key=lambda incident: str(incident.get("declared_at", "")), reverse=True)
        return web.json_response({"incidents": newest_first})

    @ops_only
    async def show_incident(request: web.Request, by: str) -> web.Response:
        return web.json_response(incident_named(request))

    @ops_only
    async def subscribe(request: web.Request, by: str) -> web.Response:
        body = await json_body(request, MAX_SUBSCRIPTIONS_BODY_BYTES)
        added = incident_requests.subscriptions(body, at=utcnow())
        await publish_all([
            (incident_requests.subscription_key(data),
             pipeline.event("subscription.added", incident_requests.subscription_event_id("subscription.added", data),
                            data, data["service"]))
            for data in added
        ])
        log.info("subscriptions added", extra={"count": len(added), "by": by})
        return web.json_response({"count": len(added)}, status=202)

    @ops_only
    async def unsubscribe(request: web.Request, by: str) -> web.Response:
        data = incident_requests.unsubscription(await json_body(request), at=utcnow())
        event_id = incident_requests.subscription_event_id("subscription.removed", data)
        await publish(incident_requests.subscription_key(data), pipeline.event("subscription.removed", event_id, data, data["service"]))
        log.info("subscription removed", extra={"service": data["service"], "by": by})
        return web.json_response({"count": 1}, status=202)

    def setup(application: web.Application) -> None:
        application.router.add_post("/api/incidents", declare)
        application.router.add_get("/api/incidents", list_incidents)
        application.router.add_get("/api/incidents/{incident_id}", show_incident)
        application.router.add_post("/api/incidents/{incident_id}/updates", post_update)
        application.router.add_post("/api/incidents/{incident_id}/resolve", resolve)
        application.router.add_post("/api/subscriptions", subscribe)
        application.router.add_delete("/api/subscriptions", unsubscribe)

    return setup
