"""The erasure API (notifier, port 8082): ops ask for a customer's personal data to be
erased (deskstream/erasure.py), and `deskstream erase-customer` calls it.

    POST /api/erasures   {"email": ..., "phone": ..., "customer_id": ...}   202 {"erasure_id", "customer_ids"}

Each of the three may be one string or a list; at least one is needed. Same bearer ops
token as the incident API (NOTIFIER_OPS_TOKEN). The request goes to every partition of
intake.raw (`erasure.requested`: intake finds the customer's threads and tickets, and
the erasure travels on from there) and, as the public notice, to tickets.events
(`customer.erased`, keyed by the erasure id). 202: stored, and carried out by the hops
within seconds; 503 if Kafka did not take it (asking again is harmless: an erasure done
twice erases nothing more). Neither the address nor the number is published or logged:
the events carry the customer ids derived from them.
"""
from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from deskstream.erasure import Erasure, InvalidErasure, event_id, requested
from deskstream.events import utcnow
from deskstream.http import RouteSetup
from deskstream.pipeline import NotStored, Pipeline
from deskstream.topics import INTAKE_RAW, TICKETS_EVENTS

from services.notifier.incidents_api import Refused, authenticated, json_body

log = logging.getLogger(__name__)
MAX_IDENTITIES = 10


def identities(body: Any, name: str) -> list[str]:
    """One field of the body as a list of strings (a string, a list of them, or absent)."""
    value = body.get(name) if isinstance(body, dict) else None
    if value is None:
        return []
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values) or len(values) > MAX_IDENTITIES:
        raise InvalidErasure(f"{name} must be a string or a list of up to {MAX_IDENTITIES} strings")
    return [v.strip() for v in values]


def erasure_from(body: Any, requested_at: str, phone_region: str | None) -> Erasure:
    if not isinstance(body, dict) or set(body) - {"email", "phone", "customer_id"}:
        raise InvalidErasure("the body is a JSON object with email, phone and/or customer_id")
    return requested(emails=identities(body, "email"), phones=identities(body, "phone"),
                     customer_ids=identities(body, "customer_id"), requested_at=requested_at, default_region=phone_region)


async def publish_erasure(pipeline: Pipeline, erasure: Erasure, partitions: int) -> None:
    """The request on every partition of intake.raw, and the public notice on
    tickets.events: what both the API and its callers rely on."""
    data = erasure.to_data()
    for partition in range(partitions):
        await pipeline.publish(INTAKE_RAW, erasure.erasure_id, pipeline.event(
            "erasure.requested", event_id(erasure, "requested", str(partition)), data), partition=partition)
    await pipeline.publish(TICKETS_EVENTS, erasure.erasure_id, pipeline.event(
        "customer.erased", event_id(erasure, "announced"), data))


def erasure_routes(pipeline: Pipeline, ops_tokens: frozenset[str], phone_region: str | None) -> RouteSetup:
    async def erase(request: web.Request) -> web.Response:
        try:
            by = authenticated(request, ops_tokens)
            erasure = erasure_from(await json_body(request), utcnow(), phone_region)
            await publish_erasure(pipeline, erasure, pipeline.kafka.partitions)
        except Refused as refused:
            return web.json_response({"error": refused.reason}, status=refused.status)
        except InvalidErasure as invalid:
            return web.json_response({"error": str(invalid)}, status=400)
        except NotStored:
            return web.json_response({"error": "not stored; ask again (an erasure done twice erases nothing more)"}, status=503)
        log.info("erasure requested", extra={"erasure_id": erasure.erasure_id, "identities": len(erasure.customer_ids), "by": by})
        return web.json_response({"erasure_id": erasure.erasure_id, "customer_ids": sorted(erasure.customer_ids)}, status=202)

    def setup(application: web.Application) -> None:
        application.router.add_post("/api/erasures", erase)

    return setup
