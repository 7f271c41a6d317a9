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

`GET /2010-04-01/Accounts/{AccountSid}/Messages.json` lists the account's messages as
Twilio does: filtered by `To`, `From`, `DateSent` (and `DateSent<`, `DateSent>`, on or
before / on or after; messages not yet sent have no `date_sent` and never match),
newest first, `PageSize` (50 by default, at most 1000) to a page, in Twilio's paging
envelope (`messages`, `page`, `page_size`, `uri`, `first_page_uri`, `next_page_uri`,
`previous_page_uri`, `start`, `end`; next pages by `PageToken`).

A test can also make a create go wrong after the message was recorded, as a lost
answer does: `drop_after_create` closes the connection instead of answering, and
`hang_after_create` answers only after a while (longer than the client waits).

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
from datetime import date, datetime, timezone
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
    20001: "Invalid parameter",
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
    status: str = "queued"
    created_at: float = field(default_factory=time.time)  # epoch seconds: date_created
    sent_at: float | None = None  # date_sent, once Twilio reports it sent
    error_code: int | None = None

    @property
    def segments(self) -> int:
        return 1 if len(self.body) <= 160 else -(-len(self.body) // 153)


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
        self._after_create: dict[str, list[float | None]] = {}  # None: drop; seconds: hang
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

    def drop_after_create(self, to: str) -> None:
        """The next create to `to` records the message (it is sent, and listed) and then
        closes the connection without answering: the client cannot know it went out."""
        with self._lock:
            self._after_create.setdefault(to, []).append(None)

    def hang_after_create(self, to: str, seconds: float) -> None:
        """The next create to `to` records the message and answers only after `seconds`."""
        with self._lock:
            self._after_create.setdefault(to, []).append(seconds)

    def add_past_message(self, to: str, body: str, *, created_at: datetime, sender: str = SUPPORT_NUMBER,
                         status: str = "delivered") -> Sent:
        """A message the account sent before the test (`created_at`, timezone-aware), as the
        list shows it; no callbacks."""
        created = created_at.timestamp()
        sent = Sent(message_sid(), to, sender, body, None, {"To": to, "From": sender, "Body": body},
                    status=status, created_at=created, sent_at=created if status in ("sent", "delivered") else None)
        with self._lock:
            self.messages.append(sent)
        return sent

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
        application.router.add_get("/2010-04-01/Accounts/{account_sid}/Messages.json", self._list_messages)
        self._runner = web.AppRunner(application, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self._session = aiohttp.ClientSession()

    async def _stop(self) -> None:
        for task in list(self._reports):  # callbacks still to come are not waited for
            task.cancel()
        await asyncio.gather(*self._reports, return_exceptions=True)
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
        answer = web.json_response(self._resource(sent), status=201)  # as created: queued
        with self._lock:
            self.messages.append(sent)
            after = self._after_create.get(to)
            trouble = after.pop(0) if after else False
        task = asyncio.ensure_future(self._report(sent))
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)
        if trouble is None:
            assert request.transport is not None
            request.transport.abort()  # the message exists; its answer never leaves
        elif trouble is not False:
            await asyncio.sleep(trouble)
        return answer

    def _resource(self, sent: Sent) -> dict[str, Any]:
        """A message as Twilio's API shows it (the create answer and each list entry)."""
        return {
            "account_sid": self.account_sid, "api_version": "2010-04-01", "body": sent.body,
            "date_created": formatdate(sent.created_at, usegmt=True),
            "date_sent": formatdate(sent.sent_at, usegmt=True) if sent.sent_at is not None else None,
            "date_updated": formatdate(sent.sent_at or sent.created_at, usegmt=True), "direction": "outbound-api",
            "error_code": sent.error_code, "error_message": None, "from": sent.form.get("From"),
            "messaging_service_sid": sent.form.get("MessagingServiceSid"), "num_media": "0",
            "num_segments": str(sent.segments), "price": None, "price_unit": "USD",
            "sid": sent.sid, "status": sent.status, "to": sent.to,
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sent.sid}/Media.json"},
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sent.sid}.json",
        }

    async def _list_messages(self, request: web.Request) -> web.Response:
        if not self._authorised(request) or request.match_info["account_sid"] != self.account_sid:
            return self._error(401, 20003)
        query = request.query
        try:
            page_size = min(max(int(query.get("PageSize", "50")), 1), 1000)
            page = max(int(query.get("Page", "0")), 0)
            date_filters = [(name, _sent_date(query[name])) for name in ("DateSent", "DateSent<", "DateSent>") if name in query]
        except ValueError:
            return self._error(400, 20001, "Invalid parameter: PageSize and Page must be numbers, DateSent a date")
        with self._lock:
            found = [m for m in self.messages
                     if ("To" not in query or m.to == query["To"])
                     and ("From" not in query or m.sender == query["From"])
                     and all(_sent_on(m, name, bound) for name, bound in date_filters)]
        # Newest first; of two created in the same instant, the later recorded first.
        ordered = [m for _, m in sorted(enumerate(found), key=lambda pair: (pair[1].created_at, pair[0]), reverse=True)]
        sids = [m.sid for m in ordered]
        token = query.get("PageToken", "")
        if token.startswith("PA") and token[2:] in sids:  # the page after the record named
            start = sids.index(token[2:]) + 1
        elif token.startswith("PB") and token[2:] in sids:  # the page before it
            start = max(sids.index(token[2:]) - page_size, 0)
        else:
            start = page * page_size
        records = ordered[start:start + page_size]
        base = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        filters = [(name, query[name]) for name in ("To", "From", "DateSent", "DateSent<", "DateSent>") if name in query]

        def page_uri(number: int, page_token: str | None = None) -> str:
            params = [*filters, ("PageSize", str(page_size)), ("Page", str(number))]
            return f"{base}?{urlencode(params + ([('PageToken', page_token)] if page_token else []))}"

        more = start + len(records) < len(ordered)
        return web.json_response({
            "messages": [self._resource(m) for m in records],
            "page": page, "page_size": page_size, "start": start, "end": start + max(len(records) - 1, 0),
            "uri": page_uri(page, token or None),
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1, "PA" + records[-1].sid) if more and records else None,
            "previous_page_uri": page_uri(page - 1, "PB" + records[0].sid) if page > 0 and records else None,
        })

    async def _report(self, sent: Sent) -> None:
        """Move the message on as Twilio would (`sent`, then its final status) and, when it
        has a status callback, post the callbacks, signed; record how each was answered."""
        final, error_code = self._final_status.get(sent.to, ("delivered", None))
        for status in ("sent", final):
            await asyncio.sleep(0.05)
            sent.status = status
            if status == "sent":
                sent.sent_at = time.time()
            elif status != "delivered":
                sent.error_code = error_code
            if not sent.status_callback:
                continue
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


def _sent_date(value: str) -> date | datetime:
    """A DateSent value: a day (YYYY-MM-DD), or an instant as the official client sends
    datetimes (YYYY-MM-DDTHH:MM:SSZ)."""
    if len(value) == 10:
        return date.fromisoformat(value)
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def _sent_on(message: Sent, name: str, bound: date | datetime) -> bool:
    """Whether `message` passes the filter `name` (DateSent, DateSent<, DateSent>): on,
    on or before, on or after `bound`; a day bound compares days. Not sent yet: never."""
    if message.sent_at is None:
        return False
    sent = datetime.fromtimestamp(message.sent_at, timezone.utc).replace(microsecond=0)
    if isinstance(bound, datetime):
        if name == "DateSent<":
            return sent <= bound
        if name == "DateSent>":
            return sent >= bound
        return sent.date() == bound.date()
    if name == "DateSent<":
        return sent.date() <= bound
    if name == "DateSent>":
        return sent.date() >= bound
    return sent.date() == bound


def form_body(form: Mapping[str, str]) -> bytes:
    return urlencode(list(form.items())).encode()
