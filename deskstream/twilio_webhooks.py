"""Checking that a webhook request really comes from Twilio.

Twilio signs each request with the account's auth token over the exact URL it
called and the posted form (twilio's `RequestValidator` computes the same). Behind
a proxy or a tunnel the server sees another host than Twilio used, so the URL is
rebuilt from the configured public base URL, never from the request's Host header,
which a caller controls.
"""
from __future__ import annotations

import logging
from typing import Awaitable, Callable

from aiohttp import web
from multidict import MultiDictProxy
from twilio.request_validator import SIGNATURE_HEADER, SIGNATURE_SETTINGS_HEADER, RequestValidator, get_signature_algorithm

from deskstream.metrics import ServiceMetrics

log = logging.getLogger(__name__)

FormHandler = Callable[[web.Request, MultiDictProxy[str]], Awaitable[web.StreamResponse]]
View = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ForgedWebhook(Exception):
    """A webhook request without a valid Twilio signature."""


class TwilioWebhook:
    """The signature check for the webhooks Twilio calls on one public base URL."""

    def __init__(self, auth_token: str, public_base_url: str) -> None:
        self._validator = RequestValidator(auth_token)
        self.public_base_url = public_base_url.rstrip("/")

    def url_called(self, request: web.BaseRequest) -> str:
        return self.public_base_url + request.rel_url.path_qs

    async def verified_form(self, request: web.BaseRequest) -> MultiDictProxy[str]:
        """The posted form, once its signature checks out; else `ForgedWebhook`."""
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            raise ForgedWebhook(f"no {SIGNATURE_HEADER} header")
        try:
            form = await request.post()
        except (ValueError, LookupError) as error:
            # A body aiohttp cannot read as a form (bytes that are not its charset, a charset
            # that does not exist, a broken multipart) is no form Twilio signed: refused like
            # a forgery, not failed with a 500 that Twilio would retry for nothing.
            raise ForgedWebhook(f"the body is not a readable form ({type(error).__name__})") from None
        if any(not isinstance(value, str) for value in form.values()):
            raise ForgedWebhook("Twilio posts form fields, not files")
        algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
        if not self._validator.validate(self.url_called(request), form, signature, algorithm):
            raise ForgedWebhook("the signature does not match the request")
        return form  # type: ignore[return-value]


def signed_view(webhook: TwilioWebhook | None, metrics: ServiceMetrics, handle: FormHandler, *, configured_by: str) -> View:
    """An aiohttp view that hands `handle` only the forms Twilio signed: anything else
    gets 403 and goes no further; without an auth token (`configured_by` unset) 503."""

    async def view(request: web.Request) -> web.StreamResponse:
        if webhook is None:
            return web.Response(status=503, text=f"the SMS channel is not configured ({configured_by})")
        try:
            form = await webhook.verified_form(request)
        except ForgedWebhook as error:
            metrics.failed("twilio webhook forged")
            log.warning("twilio webhook refused", extra={"path": request.path, "reason": str(error)})
            return web.Response(status=403, text="invalid Twilio signature")
        return await handle(request, form)

    return view
