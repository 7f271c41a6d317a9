"""The chat page and the chat API (HTTP and WebSocket), a thin shell over `chat.py`."""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import WSMsgType, web
from mode import Service

from deskstream.bearer import bearer_token
from deskstream.customers import customer_id
from deskstream.events import utcnow
from deskstream.http import over_limit, request_client, too_many_requests
from deskstream.limits import Concurrency, KeyedLimiter
from deskstream.pipeline import NotStored, Pipeline
from deskstream.logs import redact
from deskstream.phones import InvalidPhoneNumber, e164
from deskstream.replica import TableReplica, watching
from deskstream.topics import INTAKE_RAW

from services.intake import chat, outbox
from services.intake.masking import as_published
from services.intake.settings import IntakeSettings

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
# A session with all its sockets open is told to try again after this long (a page's
# socket closes within a heartbeat, 20 s, of the page going away).
SOCKET_RETRY_SECONDS = 10.0
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self'; object-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class ChatSockets(Service):
    """The open chat pages of this worker, by session, woken when their session's outbox
    changes in this worker's replica of `chat_outboxes`.

    The hop that stores a message runs on the worker that owns the session's partition,
    which need not be the one the page is connected to: every worker follows the whole
    table through the replica (committed records only), so a page gets its messages
    wherever it is connected. One watch serves every page of the worker and wakes only
    the pages of the sessions that changed, so a change costs one wake-up per page of
    that session, not one per open page.
    """

    def __init__(self, outboxes: TableReplica, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.outboxes = outboxes
        self._wakes: dict[str, set[asyncio.Event]] = defaultdict(set)

    def outbox(self, session_id: str) -> list[dict[str, Any]] | None:
        """The session's outbox as committed and read back so far (None: nothing yet)."""
        return self.outboxes.get(session_id)

    def open(self, session_id: str) -> asyncio.Event:
        """A page's wake-up, set whenever its session's outbox changes. Open it before
        the first look at the outbox, so that no change falls between the two."""
        wake = asyncio.Event()
        self._wakes[session_id].add(wake)
        return wake

    def close(self, session_id: str, wake: asyncio.Event) -> None:
        self._wakes[session_id].discard(wake)
        if not self._wakes[session_id]:
            del self._wakes[session_id]

    def changed(self, session_ids: Iterable[str]) -> None:
        """Wake the open pages of these sessions (sessions without a page cost nothing)."""
        for session_id in session_ids:
            for wake in self._wakes.get(session_id, ()):
                wake.set()

    async def on_start(self) -> None:
        self.add_future(self._follow())

    async def _follow(self) -> None:
        with watching(self.outboxes) as watch:
            while not self.should_stop:
                self.changed(await watch.changed())


async def relay(
    outbox_of: Callable[[], list[dict[str, Any]] | None],
    wake: asyncio.Event,
    send: Callable[[dict[str, Any]], Awaitable[None]],
    after: int,
) -> None:
    """Send a page every message of its session after `after`, then each new one as the
    outbox changes, until cancelled.

    Each look sends only what has a higher `seq` than the last one sent, so the page
    gets the messages in order and none twice, however the wake-ups and the replica's
    reads fall: a look that finds nothing new sends nothing. The wake-up is cleared
    before each look, so a change during a send brings another look.
    """
    while True:
        wake.clear()
        for message in outbox.unseen(outbox_of(), after):
            await send(message)
            after = message["seq"]
        await wake.wait()


def rejection(reason: str, status: int) -> web.Response:
    return web.json_response({"error": reason}, status=status)


def contact_event_data(message: chat.ChatMessage, session_id: str, phone_region: str) -> dict[str, Any]:
    given = dict(message.customer)
    if "phone" in given:  # the same number is the same customer on every channel: E.164
        try:
            given["phone"] = e164(given["phone"], phone_region)
        except InvalidPhoneNumber:
            pass
    identity = customer_id(email=given.get("email"), phone=given.get("phone"), fallback=session_id)
    customer = {"id": identity, **given}
    return {
        "contact_id": chat.contact_id(session_id, message.client_message_id),
        "channel": "chat",
        "thread_key": chat.thread_key(session_id),
        "received_at": utcnow(),
        "customer": customer,
        "subject": None,
        "body_text": message.text,
        "reply_to": {"channel": "chat", "address": session_id},
    }


def chat_routes(pipeline: Pipeline, settings: IntakeSettings, sockets: ChatSockets) -> Callable[[web.Application], None]:
    secret = settings.chat_session_secret
    # Abuse limits (services/intake/settings.py AbuseLimits), per worker: over one, 429 with
    # Retry-After. A session's own limits are taken only once its token has matched, so
    # that someone who knows a session id cannot use up that customer's allowance.
    limits = settings.limits
    sessions_by_address = KeyedLimiter(limits.chat_sessions_per_address, limits.max_keys)
    messages_by_address = KeyedLimiter(limits.chat_messages_per_address, limits.max_keys)
    messages_by_session = KeyedLimiter(limits.chat_messages_per_session, limits.max_keys)
    sockets_by_address = KeyedLimiter(limits.chat_sockets_per_address, limits.max_keys)
    sockets_by_session = Concurrency(limits.chat_sockets_per_session)

    def client(request: web.Request) -> str:
        return request_client(request, limits.trusted_proxies)

    def origin_allowed(request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        allowed = settings.allowed_origins or (f"{request.scheme}://{request.host}",)
        return origin in allowed

    async def page(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "chat.html", headers=SECURITY_HEADERS)

    async def post_message(request: web.Request) -> web.Response:
        if not origin_allowed(request):
            return rejection("origin not allowed", 403)
        if (refused := over_limit(messages_by_address, client(request), "chat messages per address", pipeline.metrics)) is not None:
            return refused
        if request.content_type != "application/json":
            return rejection("the body must be application/json", 415)
        if (request.content_length or 0) > chat.MAX_BODY_BYTES:
            return rejection(f"the body is larger than {chat.MAX_BODY_BYTES} bytes", 413)
        try:
            body = orjson.loads(await request.read())
        except web.HTTPRequestEntityTooLarge:
            return rejection(f"the body is larger than {chat.MAX_BODY_BYTES} bytes", 413)
        except orjson.JSONDecodeError as error:
            return rejection(f"malformed JSON: {error}", 400)
        try:
            message = chat.parse_message(body)
        except chat.ChatRejected as error:
            pipeline.metrics.failed("chat rejected")
            return rejection(error.reason, error.status)
        if message.session_id is None:
            if (refused := over_limit(sessions_by_address, client(request), "chat sessions per address", pipeline.metrics)) is not None:
                return refused
            session_id = chat.new_session_id()
        elif chat.token_matches(secret, message.session_id, bearer_token(request.headers.get("Authorization"))):
            session_id = message.session_id
        else:
            return rejection("this session needs its session token as a Bearer token", 401)
        if (refused := over_limit(messages_by_session, session_id, "chat messages per session", pipeline.metrics)) is not None:
            return refused
        data = as_published(contact_event_data(message, session_id, settings.phone_region), settings.keep_original_text)
        event = pipeline.event("contact.received", data["contact_id"], data, data["thread_key"])
        try:
            await pipeline.publish(INTAKE_RAW, data["thread_key"], event)
        except NotStored:  # the client retries with the same client_message_id
            log.warning("chat message not stored", extra={"text": redact(message.text)})
            return rejection("the message could not be stored; retry with the same client_message_id", 503)
        return web.json_response(
            {"session_id": session_id, "session_token": chat.session_token(secret, session_id), "message_id": data["contact_id"]},
            status=202,
        )

    async def open_session(request: web.Request) -> web.Response:
        """A new session and its token, before the first message: the page sends even its
        first message with a session, so a retry after a lost answer repeats that message
        rather than opening a second conversation (and ticket). Nothing is stored: the
        token is the session id signed, and an unused session costs nothing."""
        if not origin_allowed(request):
            return rejection("origin not allowed", 403)
        if (refused := over_limit(sessions_by_address, client(request), "chat sessions per address", pipeline.metrics)) is not None:
            return refused
        session_id = chat.new_session_id()
        return web.json_response({"session_id": session_id, "session_token": chat.session_token(secret, session_id)},
                                 status=201)

    async def session_socket(request: web.Request) -> web.StreamResponse:
        if (refused := over_limit(sockets_by_address, client(request), "chat sockets per address", pipeline.metrics)) is not None:
            return refused
        session_id = request.match_info["session_id"]
        if not chat.token_matches(secret, session_id, request.query.get("token")):
            return rejection("unknown session or wrong token", 403)
        if not origin_allowed(request):
            return rejection("origin not allowed", 403)
        try:
            after = int(request.query.get("after", "0"))
        except ValueError:
            return rejection("after must be a sequence number", 400)
        if not sockets_by_session.enter(session_id):
            pipeline.metrics.failed("rate limited: open chat sockets per session")
            return too_many_requests("open chat sockets per session", SOCKET_RETRY_SECONDS)
        try:
            return await serve_socket(request, session_id, after)
        finally:
            sockets_by_session.leave(session_id)

    async def serve_socket(request: web.Request, session_id: str, after: int) -> web.StreamResponse:
        socket = web.WebSocketResponse(heartbeat=20, max_msg_size=4096)
        await socket.prepare(request)

        async def send(message: dict[str, Any]) -> None:
            await socket.send_str(orjson.dumps({"type": "message", **message}).decode())

        async def push() -> None:
            try:
                await relay(lambda: sockets.outbox(session_id), wake, send, after)
            except ConnectionError:
                pass  # the page went away mid-send; the reading loop below ends too
            except Exception:
                log.exception("chat push failed; the page reconnects and asks again")
                await socket.close(code=1011)

        wake = sockets.open(session_id)
        pusher = asyncio.create_task(push())
        try:
            async for frame in socket:
                if frame.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            sockets.close(session_id, wake)
            pusher.cancel()
            await asyncio.wait([pusher])
        return socket

    def setup(application: web.Application) -> None:
        application.router.add_get("/", page)
        application.router.add_get("/chat", page)
        application.router.add_static("/static/", STATIC)
        application.router.add_post("/api/chat/sessions", open_session)
        application.router.add_post("/api/chat/messages", post_message)
        application.router.add_get("/api/chat/sessions/{session_id}/ws", session_socket)

    return setup
