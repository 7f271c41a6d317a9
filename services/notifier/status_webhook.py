"""Twilio's status callbacks, `POST /webhooks/twilio/status`, a thin shell over `delivery.py`.

Each callback says what became of a message notifier sent (delivered, undelivered,
failed, read on WhatsApp). It is signed like every Twilio webhook; a forged one gets
403 and leaves no trace, a signed one that makes no sense goes to `deadletter`.
"""
from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy

from deskstream.events import utcnow
from deskstream.http import RouteSetup
from deskstream.pipeline import NotStored, Pipeline, deadletter_event
from deskstream.recipients import recipient_key
from deskstream.topics import DEADLETTER, NOTIFY_RECEIPTS
from deskstream.twilio_webhooks import TwilioWebhook, signed_view

from services.notifier import delivery
from services.notifier.settings import TwilioSettings

DEADLETTER_ORIGIN = "twilio:status"


def status_routes(pipeline: Pipeline, twilio: TwilioSettings | None) -> RouteSetup:
    webhook = TwilioWebhook(twilio.auth_token, twilio.public_base_url) if twilio is not None else None

    async def receive(request: web.Request, form: MultiDictProxy[str]) -> web.Response:
        try:
            report = delivery.status_report(request.query, form, utcnow())
        except delivery.InvalidStatusCallback as error:
            pipeline.metrics.failed("twilio status rejected")
            original = urlencode([*request.query.items(), *form.items()]).encode()
            letter = deadletter_event(pipeline.source, DEADLETTER_ORIGIN, str(error), original)
            publication = pipeline.publish(DEADLETTER, DEADLETTER_ORIGIN, letter)
        else:
            event = pipeline.event("notify.status_reported", f"{report['request_id']}.status.{report['status']}", report, report.get("ticket_id"))
            publication = pipeline.publish(NOTIFY_RECEIPTS, recipient_key(report["recipient"]), event)
        try:
            await publication
        except NotStored:
            return web.Response(status=503, text="not stored; retry")
        return web.Response(status=204)

    def setup(application: web.Application) -> None:
        application.router.add_post(delivery.STATUS_PATH, signed_view(webhook, pipeline.metrics, receive, configured_by="TWILIO_ACCOUNT_SID"))

    return setup
