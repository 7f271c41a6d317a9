"""Checking that a webhook request really comes from Twilio.

Twilio signs each request with the account's auth token over the exact URL it
called and the posted form (twilio's `RequestValidator` computes the same). Behind
a proxy or a tunnel the server sees another host than Twilio used, so the URL is
rebuilt from the configured public base URL, never from the request's Host header,
which a caller controls.
"""
from __future__ import annotations

from aiohttp import web
from multidict import MultiDictProxy
from twilio.request_validator import SIGNATURE_HEADER, SIGNATURE_SETTINGS_HEADER, RequestValidator, get_signature_algorithm


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
        form = await request.post()
        fields = MultiDictProxy(form) if not isinstance(form, MultiDictProxy) else form
        if any(not isinstance(value, str) for value in fields.values()):
            raise ForgedWebhook("Twilio posts form fields, not files")
        algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
        if not self._validator.validate(self.url_called(request), fields, signature, algorithm):
            raise ForgedWebhook("the signature does not match the request")
        return fields  # type: ignore[return-value]
