"""The chat page and the chat API (HTTP and WebSocket), a thin shell over `chat.py`."""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from deskstream.bearer import bearer_token
from deskstream.events import utcnow
from deskstream.pipeline import NotStored, Pipeline
from deskstream.processor import Processor
from deskstream.logs import redact
from deskstream.phones import InvalidPhoneNumber, e164
from deskstream.topics import INTAKE_RAW

from services.intake import chat, outbox
from services.intake.customers import customer_id
from services.intake.settings import IntakeSettings

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self'; object-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class ChatSockets:
    """The open chat pages of this worker, by session, to push new messages to."""

    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)

    def open(self, session_id: str) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        self._queues[session_id].add(queue)
        return queue

    def close(self, session_id: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._queues[session_id].discard(queue)
        if not self._queues[session_id]:
            del self._queues[session_id]

    def push(self, session_id: str, message: dict[str, Any]) -> None:
        for queue in self._queues.get(session_id, ()):
            if not queue.full():
                queue.put_nowait(message)


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


def chat_routes(pipeline: Pipeline, settings: IntakeSettings, outboxes: Processor, sockets: ChatSockets):
    secret = settings.chat_session_secret

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
            session_id = chat.new_session_id()
        elif chat.token_matches(secret, message.session_id, bearer_token(request.headers.get("Authorization"))):
            session_id = message.session_id
        else:
            return rejection("this session needs its session token as a Bearer token", 401)
        data = contact_event_data(message, session_id, settings.phone_region)
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

    async def session_socket(request: web.Request) -> web.StreamResponse:
        session_id = request.match_info["session_id"]
        if not chat.token_matches(secret, session_id, request.query.get("token")):
            return rejection("unknown session or wrong token", 403)
        if not origin_allowed(request):
            return rejection("origin not allowed", 403)
        try:
            after = int(request.query.get("after", "0"))
        except ValueError:
            return rejection("after must be a sequence number", 400)
        socket = web.WebSocketResponse(heartbeat=20, max_msg_size=4096)
        await socket.prepare(request)
        queue = sockets.open(session_id)
        try:
            for message in outbox.unseen(outboxes.lookup("chat_outboxes", session_id), after):
                await socket.send_str(orjson.dumps({"type": "message", **message}).decode())
                after = message["seq"]
            pusher = asyncio.ensure_future(_push(socket, queue, after))
            async for frame in socket:
                if frame.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
            pusher.cancel()
        finally:
            sockets.close(session_id, queue)
        return socket

    def setup(application: web.Application) -> None:
        application.router.add_get("/", page)
        application.router.add_get("/chat", page)
        application.router.add_static("/static/", STATIC)
        application.router.add_post("/api/chat/messages", post_message)
        application.router.add_get("/api/chat/sessions/{session_id}/ws", session_socket)

    return setup


async def _push(socket: web.WebSocketResponse, queue: asyncio.Queue[dict[str, Any]], after: int) -> None:
    while not socket.closed:
        message = await queue.get()
        if message["seq"] > after:
            await socket.send_str(orjson.dumps({"type": "message", **message}).decode())
            after = message["seq"]
