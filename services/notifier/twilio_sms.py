"""Sending SMS and WhatsApp messages through Twilio's Messages API (the official client).

Twilio answers 429 when the account sends faster than its rate and 5xx when it is
having trouble: both are worth another try after a pause. Any other 4xx is about the
message itself (21610: the recipient replied STOP; 21211: not a valid number) and
will fail the same way every time, so it is reported as permanent at once.

`TwilioSender.send` retries by itself; `TwilioSender.deliver` makes one attempt and
classifies it (services.notifier.outcomes) for the outbox, which retries on its own
schedule and, after a crash, asks `TwilioSender.find_sent` whether a claimed send
went out before it sends again.
"""
from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from mode import Service

from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from deskstream.phones import twilio_address

from services.notifier.outcomes import Outcome, brief
from services.notifier.settings import TwilioSettings

TWILIO_API = "https://api.twilio.com"
UNSUBSCRIBED = 21610  # "Attempt to send to unsubscribed recipient"
AUTHENTICATE = 20003  # wrong account SID or auth token
# How far Twilio's clock (date_created) may be behind ours when find_sent compares them.
CLOCK_SKEW = timedelta(seconds=60)

# The client logs every request line at INFO; message bodies never, but numbers are
# in the URLs of some calls: keep it quiet.
_http_log = logging.getLogger("deskstream.notifier.twilio_http")
_http_log.setLevel(logging.WARNING)


class TwilioLookupFailed(Exception):
    """Twilio could not be asked whether a message went out (unreachable, a timeout, an
    error answer): the send stays in doubt and the caller asks again later."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


TwilioErrorAnswer = TwilioRestException | TwilioServiceException  # the legacy and the RFC 9457 error body


def _error_code(error: TwilioErrorAnswer) -> int | None:
    """Twilio's own error code; None when the answer had none (the client then puts the
    HTTP status in `code`, as for a bare 503 from a proxy)."""
    return error.code if error.code and error.code != error.status else None


def _error_detail(error: TwilioErrorAnswer) -> str:
    code = _error_code(error)
    text = str(error.msg) if isinstance(error, TwilioRestException) else (error.detail or error.title)
    text = re.sub(r"^Unable to \w+ (record|page): ", "", text)  # the client's own words, not Twilio's
    return f"Twilio {error.status}" + (f" error {code}" if code else "") + f": {brief(text)}"


def classify_twilio_error(error: TwilioErrorAnswer) -> Outcome:
    """Twilio's error answer to a create call, as an outcome. Twilio answers before it
    creates anything, so an error answer always means the message did not go out:

    429 (the account's rate) and 5xx (Twilio's trouble) may pass, so `retry`. 401
    (error 20003) is `retry` too: wrong or rotating credentials are not the message's
    fault, and the outbox's bounded retries report it if it lasts. Any other 4xx is
    about the message itself (21610 unsubscribed, 21211 invalid number, 21617 too long)
    and will fail the same way every time: `failed`, with Twilio's error code so the
    caller can record an opt-out."""
    detail, code = _error_detail(error), _error_code(error)
    if error.status == 429 or error.status >= 500 or error.status == 401 or code == AUTHENTICATE:
        return Outcome.retry(detail, code)
    return Outcome.failed(detail, code)


def classify_transport_error(error: BaseException) -> Outcome:
    """An exception from the HTTP layer of a create call, as an outcome.

    Only a connection that was never made (refused, DNS, TLS handshake, a connect
    timeout) proves that Twilio never saw the request: `retry`. Anything after that
    (a read timeout, a dropped connection, a reset, an unreadable answer) may come
    after Twilio created the message: `in_doubt`."""
    name = type(error).__name__
    if isinstance(error, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)):
        return Outcome.retry(f"Twilio unreachable: {name}")
    return Outcome.in_doubt(f"no answer from Twilio after the request was sent: {name}")


class _ApiHttpClient(AsyncTwilioHttpClient):
    """The client's own HTTP client, sent to `api_url` instead of api.twilio.com when
    that is configured (a regional proxy, or a local stand-in in tests)."""

    def __init__(self, api_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout, logger=_http_log)
        self.api_url = api_url.rstrip("/")

    async def request(self, method: str, url: str, *args, **kwargs) -> Response:  # type: ignore[override]
        if url.startswith(TWILIO_API):
            url = self.api_url + url[len(TWILIO_API):]
        # The client never passes its own `timeout` on (the resource methods send None),
        # which would leave aiohttp's default of five minutes: apply ours.
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        # The client hands its credentials as `auth`, which it turns into aiohttp's
        # BasicAuth, deprecated in aiohttp 3.14: send them as the header aiohttp now asks for.
        if kwargs.get("auth") is not None:
            login, password = kwargs.pop("auth")
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "Authorization": aiohttp.encode_basic_auth(login, password)}
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

    async def deliver(self, channel: str, number: str, text: str, status_callback: str) -> Outcome:
        """Create the message at Twilio once, and say precisely what came of it.

        No retrying here: the outbox has recorded a claim for this send and retries
        `retry` outcomes itself, with backoff, so that every attempt is on its record.
        `sent` carries the message sid (for the receipt and the status callbacks); a
        `failed` 21610 carries the code, so the caller can record the opt-out; an
        `in_doubt` send must be looked up with `find_sent` before it is tried again."""
        client = self._require_client()
        try:
            message = await client.messages.create_async(
                to=twilio_address(channel, number), body=text, status_callback=status_callback, **self.sender_for(channel),
            )
        except (TwilioRestException, TwilioServiceException) as error:
            return classify_twilio_error(error)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
            return classify_transport_error(error)
        except (TwilioException, ValueError) as error:
            # A 2xx answer the client could not read: Twilio created something.
            return Outcome.in_doubt(f"unreadable answer from Twilio: {type(error).__name__}")
        segments = f", {message.num_segments} segment(s)" if message.num_segments else ""
        return Outcome.sent(f"Twilio accepted {message.sid} ({message.status}{segments})", message.sid)

    async def find_sent(self, channel: str, number: str, text: str, since: datetime, *,
                        limit: int = 200, page_size: int = 50) -> str | None:
        """The sid of a message Twilio has to this number with exactly this body,
        created at or after `since` (less `CLOCK_SKEW`, for Twilio's clock), or None.

        This is how the outbox settles a send that is in doubt (claimed, and then a
        crash or a lost answer): a message Twilio created has a `date_created` at once,
        whatever its status. Filtering by `DateSent` would miss exactly those that are
        still queued (their `date_sent` is null), so the list is asked for by `To`
        only and its newest `limit` messages are compared by `date_created` and body.
        `since` must be timezone-aware (Twilio's dates are UTC).

        Raises `TwilioLookupFailed` when Twilio cannot be asked: then it is still not
        known, and the send stays in doubt."""
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        client = self._require_client()
        cutoff = since - CLOCK_SKEW
        try:
            messages = await client.messages.stream_async(
                to=twilio_address(channel, number), limit=limit, page_size=min(page_size, limit),
            )
            async for message in messages:
                created = message.date_created
                # Twilio lists newest first, but does not document by which date; so no
                # early stop at the first older message, just `limit` records at most.
                if isinstance(created, datetime) and created >= cutoff and message.body == text:
                    return message.sid
        except (TwilioRestException, TwilioServiceException) as error:
            raise TwilioLookupFailed(f"could not list messages: {_error_detail(error)}") from None
        except (TwilioException, aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError) as error:
            raise TwilioLookupFailed(f"could not list messages: {type(error).__name__}") from None
        return None

    def _require_client(self) -> Client:
        if self._client is None:
            raise RuntimeError("the Twilio sender has not started")
        return self._client
