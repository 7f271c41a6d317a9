"""A local HTTP server playing Twilio's Messages API, and signed webhooks as Twilio sends them.

Twilio's cloud is not reachable from here, so this server answers what the official
client sends, with the documented request and response shapes
(https://www.twilio.com/docs/messaging/api/message-resource): `POST
/2010-04-01/Accounts/{AccountSid}/Messages.json` with Basic auth, a form with `To`,
`From` or `MessagingServiceSid`, `Body`, `StatusCallback`; `201` and the message
resource as JSON; errors as Twilio's JSON error body (`code`, `message`, `more_info`,
`status`). Tests script failures per recipient (429, 5xx, 21610), and every accepted
message gets the status callbacks Twilio would post (`sent`, then `delivered` or the
scripted final status), signed with the account's auth token.

It runs its own event loop in a thread, so sync and async tests can both use it.
"""
from __future__ import annotations

import asyncio
import base64
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, Iterable, Mapping
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from deskstream.localkafka import free_port

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token-" + "5" * 16
SUPPORT_NUMBER = "+34910000000"
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_ERROR_MESSAGES = {
    20003: "Authenticate",
    20429: "Too Many Requests",
    21211: "The 'To' number is not a valid phone number.",
    21602: "Message body is required.",
    21603: "The 'From' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21617: "The concatenated message body exceeds the 1600 character limit.",
}


def sign(url: str, params: Mapping[str, str] | Iterable[tuple[str, str]], auth_token: str = AUTH_TOKEN) -> str:
    """The X-Twilio-Signature Twilio puts on a request to `url` with this form."""
    return RequestValidator(auth_token).compute_signature(url, dict(params))


def inbound_sms(to: str = SUPPORT_NUMBER, *, sender: str, body: str, sid: str | None = None,
                media: list[tuple[str, str]] = (), profile_name: str | None = None) -> dict[str, str]:
    """The form Twilio posts to a messaging webhook for one inbound SMS/MMS/WhatsApp."""
    form = {
        "MessageSid": sid or message_sid(), "AccountSid": ACCOUNT_SID, "From": sender, "To": to, "Body": body,
        "NumMedia": str(len(media)), "NumSegments": "1", "ApiVersion": "2010-04-01", "SmsStatus": "received",
    }
    form["SmsSid"] = form["SmsMessageSid"] = form["MessageSid"]
    for index, (url, content_type) in enumerate(media):
        form[f"MediaUrl{index}"] = url
        form[f"MediaContentType{index}"] = content_type
    if profile_name:
        form["ProfileName"] = profile_name
    return form


def message_sid() -> str:
    return "SM" + secrets.token_hex(16)


async def post_signed(url: str, form: Mapping[str, str], *, signature: str | None = None,
                      auth_token: str = AUTH_TOKEN) -> tuple[int, str]:
    """POST `form` to `url` as Twilio does (signed unless `signature` is given)."""
    headers = {"X-Twilio-Signature": signature if signature is not None else sign(url, form, auth_token)}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=dict(form), headers=headers) as response:
            return response.status, await response.text()


@dataclass
class Sent:
    sid: str
    to: str
    sender: str
    body: str
    status_callback: str | None
    form: dict[str, str]
    callbacks: list[tuple[str, int]] = field(default_factory=list)  # (status, HTTP answer of the callback)


class TwilioApi:
    """The stand-in. `messages` are the accepted ones; `requests` every create call."""

    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.host = "127.0.0.1"
        self.port = free_port()
        self.messages: list[Sent] = []
        self.requests: list[dict[str, str]] = []
        self._scripts: dict[str, list[tuple[int, int | None]]] = {}
        self._final_status: dict[str, tuple[str, int | None]] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="twilio-api", daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._reports: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- scripting -------------------------------------------------------------------

    def fail_next(self, to: str, *answers: tuple[int, int | None]) -> None:
        """The next create calls to `to` answer these (HTTP status, Twilio error code)."""
        with self._lock:
            self._scripts.setdefault(to, []).extend(answers)

    def finally_report(self, to: str, status: str, error_code: int | None = None) -> None:
        """Messages to `to` end in `status` (e.g. undelivered, 30003) instead of delivered."""
        self._final_status[to] = (status, error_code)

    def sent_to(self, to: str) -> list[Sent]:
        with self._lock:
            return [message for message in self.messages if message.to == to]

    def wait_for_message(self, to: str, count: int = 1, timeout: float = 60.0) -> list[Sent]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.sent_to(to)
            if len(found) >= count:
                return found
            time.sleep(0.2)
        raise AssertionError(f"{len(self.sent_to(to))} of {count} messages to {to} after {timeout:.0f} s")

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> "TwilioApi":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> "TwilioApi":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    async def _start(self) -> None:
        application = web.Application()
        application.router.add_post("/2010-04-01/Accounts/{account_sid}/Messages.json", self._create_message)
        self._runner = web.AppRunner(application, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self._session = aiohttp.ClientSession()

    async def _stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- the API ---------------------------------------------------------------------

    def _error(self, status: int, code: int, message: str | None = None) -> web.Response:
        return web.json_response(
            {"code": code, "message": message or _ERROR_MESSAGES.get(code, "Error"),
             "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
            status=status,
        )

    def _authorised(self, request: web.Request) -> bool:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("Authorization") == expected

    async def _create_message(self, request: web.Request) -> web.Response:
        if not self._authorised(request) or request.match_info["account_sid"] != self.account_sid:
            return self._error(401, 20003)
        form = {key: value for key, value in (await request.post()).items() if isinstance(value, str)}
        to = form.get("To", "")
        with self._lock:
            self.requests.append(form)
            script = self._scripts.get(to)
            scripted = script.pop(0) if script else None
        if scripted is not None:
            status, code = scripted
            if code is None:
                return web.Response(status=status, text="Service Unavailable")
            return self._error(status, code)
        number = to.removeprefix("whatsapp:")
        if not _E164.match(number):
            return self._error(400, 21211)
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return self._error(400, 21603)
        body = form.get("Body", "")
        if not body and not form.get("MediaUrl"):
            return self._error(400, 21602)
        if len(body) > 1600:
            return self._error(400, 21617)
        sent = Sent(message_sid(), to, form.get("From") or form["MessagingServiceSid"], body, form.get("StatusCallback"), form)
        with self._lock:
            self.messages.append(sent)
        if sent.status_callback:
            task = asyncio.ensure_future(self._report(sent))
            self._reports.add(task)
            task.add_done_callback(self._reports.discard)
        now = formatdate(usegmt=True)
        return web.json_response(
            {
                "account_sid": self.account_sid, "api_version": "2010-04-01", "body": body,
                "date_created": now, "date_sent": None, "date_updated": now, "direction": "outbound-api",
                "error_code": None, "error_message": None, "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"), "num_media": "0",
                "num_segments": str(1 if len(body) <= 160 else -(-len(body) // 153)), "price": None, "price_unit": "USD",
                "sid": sent.sid, "status": "queued", "to": to,
                "subresource_uris": {"media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sent.sid}/Media.json"},
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sent.sid}.json",
            },
            status=201,
        )

    async def _report(self, sent: Sent) -> None:
        """Post the status callbacks Twilio would, signed; record how each was answered."""
        final, error_code = self._final_status.get(sent.to, ("delivered", None))
        for status in ("sent", final):
            await asyncio.sleep(0.05)
            form = {"MessageSid": sent.sid, "SmsSid": sent.sid, "AccountSid": self.account_sid, "From": sent.sender,
                    "To": sent.to, "MessageStatus": status, "SmsStatus": status, "ApiVersion": "2010-04-01"}
            if status != "delivered" and status != "sent" and error_code is not None:
                form["ErrorCode"] = str(error_code)
            assert self._session is not None and sent.status_callback is not None
            headers = {"X-Twilio-Signature": sign(sent.status_callback, form, self.auth_token)}
            try:
                async with self._session.post(sent.status_callback, data=form, headers=headers) as response:
                    sent.callbacks.append((status, response.status))
            except aiohttp.ClientError:
                sent.callbacks.append((status, 0))


def form_body(form: Mapping[str, str]) -> bytes:
    return urlencode(list(form.items())).encode()
