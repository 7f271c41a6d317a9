"""Sending SMS and WhatsApp messages through Twilio's Messages API (the official client).

Twilio answers 429 when the account sends faster than its rate and 5xx when it is
having trouble: both are worth another try after a pause. Any other 4xx is about the
message itself (21610: the recipient replied STOP; 21211: not a valid number) and
will fail the same way every time, so it is reported as permanent at once.
"""
from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Any

import aiohttp
from mode import Service

from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from deskstream.phones import twilio_address

from services.notifier.settings import TwilioSettings

TWILIO_API = "https://api.twilio.com"
UNSUBSCRIBED = 21610  # "Attempt to send to unsubscribed recipient"

# The client logs every request line at INFO; message bodies never, but numbers are
# in the URLs of some calls: keep it quiet.
_http_log = logging.getLogger("deskstream.notifier.twilio_http")
_http_log.setLevel(logging.WARNING)


@dataclass(frozen=True, slots=True)
class SentMessage:
    sid: str
    status: str
    segments: int | None
    attempts: int


class TwilioSendFailed(Exception):
    """Twilio did not take the message. `permanent`: trying again cannot help."""

    def __init__(self, detail: str, *, code: int | None, permanent: bool, attempts: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.permanent = permanent
        self.attempts = attempts


def is_temporary(error: TwilioRestException) -> bool:
    return error.status == 429 or error.status >= 500


class _ApiHttpClient(AsyncTwilioHttpClient):
    """The client's own HTTP client, sent to `api_url` instead of api.twilio.com when
    that is configured (a regional proxy, or a local stand-in in tests)."""

    def __init__(self, api_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout, logger=_http_log)
        self.api_url = api_url.rstrip("/")

    async def request(self, method: str, url: str, *args, **kwargs) -> Response:  # type: ignore[override]
        if url.startswith(TWILIO_API):
            url = self.api_url + url[len(TWILIO_API):]
        return await super().request(method, url, *args, **kwargs)


class TwilioSender(Service):
    """An async Twilio client with bounded retries. A service (started and stopped
    with the worker, or `async with`), because the client's HTTP session belongs to
    the running event loop."""

    def __init__(self, settings: TwilioSettings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self._http: _ApiHttpClient | None = None
        self._client: Client | None = None

    async def on_start(self) -> None:
        self._http = _ApiHttpClient(self.settings.api_url, self.settings.timeout_seconds)
        self._client = Client(self.settings.account_sid, self.settings.auth_token, http_client=self._http)

    async def on_stop(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = self._client = None

    def sender_for(self, channel: str) -> dict[str, str]:
        s = self.settings
        if channel == "whatsapp":
            return {"from_": twilio_address("whatsapp", s.whatsapp_from)}
        if s.messaging_service_sid:
            return {"messaging_service_sid": s.messaging_service_sid}
        return {"from_": s.sms_from}

    async def send(self, channel: str, number: str, text: str, status_callback: str) -> SentMessage:
        """Create the message at Twilio, retrying 429 and 5xx with exponential backoff
        (and jitter) up to `max_attempts`; raises `TwilioSendFailed`."""
        if self._client is None:
            raise RuntimeError("the Twilio sender has not started")
        s = self.settings
        for attempt in range(1, s.max_attempts + 1):
            try:
                message = await self._client.messages.create_async(
                    to=twilio_address(channel, number), body=text, status_callback=status_callback, **self.sender_for(channel),
                )
            except TwilioRestException as error:
                detail = f"Twilio {error.status}" + (f" error {error.code}" if error.code else "") + f": {str(error.msg)[:200]}"
                if not is_temporary(error):
                    raise TwilioSendFailed(detail, code=error.code, permanent=True, attempts=attempt) from None
                if attempt == s.max_attempts:
                    raise TwilioSendFailed(detail, code=error.code, permanent=False, attempts=attempt) from None
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
                if attempt == s.max_attempts:
                    detail = f"Twilio unreachable: {type(error).__name__}"
                    raise TwilioSendFailed(detail, code=None, permanent=False, attempts=attempt) from None
            else:
                segments = int(message.num_segments) if message.num_segments else None
                return SentMessage(message.sid, str(message.status), segments, attempt)
            await asyncio.sleep(s.backoff_seconds * 2 ** (attempt - 1) * random.uniform(0.8, 1.2))
        raise AssertionError("unreachable")
