"""Twilio's SMS/WhatsApp webhook, `POST /webhooks/twilio/sms`, a thin shell over `sms.py`.

Twilio waits at most 15 s for the answer and, when it gets none or a 5xx, may post
the same message again. So the answer goes back only once Kafka has the event (an
answered message is a stored one), a broker that does not take it within
`publish_timeout_seconds` gets a 503, and the retry, with the same MessageSid, is
the same contact and is dropped by intake's thread state.
"""
from __future__ import annotations

from typing import Awaitable
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy
from twilio.twiml.messaging_response import MessagingResponse

from deskstream.customers import customer_id
from deskstream.events import utcnow
from deskstream.http import RouteSetup, over_limit, request_client
from deskstream.limits import KeyedLimiter
from deskstream.pipeline import NotStored, Pipeline, deadletter_event
from deskstream.recipients import recipient_key
from deskstream.topics import DEADLETTER, INTAKE_RAW, NOTIFY_REQUESTS
from deskstream.twilio_webhooks import TwilioWebhook, signed_view

from services.intake import sms
from services.intake.masking import as_published
from services.intake.settings import IntakeSettings

PATH = "/webhooks/twilio/sms"
DEADLETTER_ORIGIN = "twilio:sms"
CONSENT_EVENTS = {sms.Keyword.OPT_OUT: "consent.opted_out", sms.Keyword.OPT_IN: "consent.opted_in"}


EMPTY_TWIML = str(MessagingResponse())


def twiml(reply: str | None = None) -> web.Response:
    """Twilio's answer: an empty `<Response/>`, or one that texts `reply` back."""
    if not reply:
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")
    response = MessagingResponse()
    response.message(reply)
    return web.Response(text=str(response), content_type="text/xml")


def sms_routes(pipeline: Pipeline, settings: IntakeSettings) -> RouteSetup:
    twilio = settings.twilio
    webhook = TwilioWebhook(twilio.auth_token, twilio.public_base_url) if twilio is not None else None
    timeout = twilio.publish_timeout_seconds if twilio is not None else None
    # HELP is answered by an SMS we pay for and opens no contact for the tickets hop to
    # count: its replies are limited per number here, per worker (INTAKE_SMS_PER_SENDER).
    help_replies = KeyedLimiter(settings.limits.sms_per_sender, settings.limits.max_keys)

    async def stored_then(publication: Awaitable[None], answer: web.Response) -> web.Response:
        """`answer` once Kafka has the event; 503 if it does not take it in time, so that
        Twilio (which waits 15 s) tries again with the same ids."""
        try:
            await publication
        except NotStored:
            return web.Response(status=503, text="the message could not be stored; retry")
        return answer

    async def receive(request: web.Request, form: MultiDictProxy[str]) -> web.Response:
        try:
            message = sms.parse_inbound(form, settings.phone_region)
        except sms.SmsRejected as error:
            pipeline.metrics.failed("sms rejected")
            original = urlencode(list(form.items())).encode()
            letter = deadletter_event(pipeline.source, DEADLETTER_ORIGIN, str(error), original)
            return await stored_then(pipeline.publish(DEADLETTER, DEADLETTER_ORIGIN, letter, timeout=timeout), twiml())

        keyword = message.keyword()
        if keyword is None:
            data = as_published(sms.contact_data(message, customer_id(phone=message.number, fallback=message.thread_key), utcnow()),
                                settings.keep_original_text)
            event = pipeline.event("contact.received", data["contact_id"], data, data["thread_key"])
            return await stored_then(pipeline.publish(INTAKE_RAW, message.thread_key, event, timeout=timeout), twiml())

        kind, language = keyword
        reply = sms.DEFAULT_REPLIES[kind][language]
        if kind is sms.Keyword.HELP:
            if help_replies.take(message.number) > 0:
                pipeline.metrics.failed("sender over limit: help")
                return twiml()  # Twilio is answered; the number gets no more help texts for now
            return twiml(reply)
        consent = sms.consent_data(message, kind, utcnow())
        event = pipeline.event(CONSENT_EVENTS[kind], f"consent.{message.message_sid}", consent)
        return await stored_then(pipeline.publish(NOTIFY_REQUESTS, recipient_key(consent["recipient"]), event, timeout=timeout), twiml(reply))

    signed = signed_view(webhook, pipeline.metrics, receive, configured_by="TWILIO_AUTH_TOKEN")
    # Before the signature check, so a flood of forged posts costs no more than a lookup.
    # High: Twilio posts every customer's messages from a pool of its own addresses; one
    # customer's flood is held back per sender, in the tickets hop (services/intake/senders.py).
    by_address = KeyedLimiter(settings.limits.twilio_requests_per_address, settings.limits.max_keys)

    async def view(request: web.Request) -> web.StreamResponse:
        client = request_client(request, settings.limits.trusted_proxies)
        if (refused := over_limit(by_address, client, "twilio webhooks per address", pipeline.metrics)) is not None:
            return refused
        return await signed(request)

    def setup(application: web.Application) -> None:
        application.router.add_post(PATH, view)

    return setup
