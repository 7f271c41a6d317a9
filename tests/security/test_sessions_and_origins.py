"""Chat sessions and origins, as an attacker sees them: a session id is public (it is in
the page's WebSocket URL, and may end up in a proxy's log or a screenshot), so knowing
it must give nothing; only the session token the page holds reads or writes the
conversation, and only for its own session. Other sites' pages may not drive a
customer's browser into the chat API.

Already covered elsewhere, and not repeated here (tests/integration/test_chat_pipeline.py
::test_bad_chat_requests_get_a_reason_and_store_nothing): a POST with a session id and
no token (401), a WebSocket with a wrong token (403), a cross-origin POST of a message
or of `POST /api/chat/sessions` (403).
"""
from __future__ import annotations

import asyncio
import uuid

import aiohttp
import pytest

from deskstream.topics import INTAKE_RAW
from tests.harness import read_topic
from tests.integration.chat_client import ChatCustomer

pytestmark = pytest.mark.integration

EVIL = "https://evil.example"


def socket_url(base: str, session_id: str, token: str | None) -> str:
    return f"{base}/api/chat/sessions/{session_id}/ws" + (f"?token={token}" if token is not None else "")


async def refused_socket(http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """The status and reason of a WebSocket upgrade the server must refuse (never 101)."""
    try:
        async with http.ws_connect(url, headers=headers) as socket:
            await socket.close()
    except aiohttp.WSServerHandshakeError as refused:
        async with http.get(url, headers={**(headers or {}), "Connection": "Upgrade", "Upgrade": "websocket",
                                          "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as again:
            body = await again.json()
        assert again.status == refused.status
        return refused.status, body["error"]
    raise AssertionError(f"the WebSocket {url} was opened")


async def test_a_session_id_alone_neither_reads_nor_writes_the_conversation(pipeline_services, kafka):
    intake = pipeline_services["intake"].url
    async with aiohttp.ClientSession() as http:
        victim = ChatCustomer(http, intake, name="Victoria")
        await victim.say("Mi número de cliente es 4471 y no puedo entrar")
        [ack] = await victim.messages(1)
        other = ChatCustomer(http, intake, name="Mallory")
        await other.open()  # the attacker's own, valid session and token

        # Reading: the id without a token, with an empty one, with a guess, with the
        # attacker's own token, and with the victim's token on the attacker's session.
        attempts = {
            "no token": socket_url(intake, victim.session_id, None),
            "empty token": socket_url(intake, victim.session_id, ""),
            "guessed token": socket_url(intake, victim.session_id, "0" * 64),
            "another session's token": socket_url(intake, victim.session_id, other.token),
            "the token upper-cased": socket_url(intake, victim.session_id, victim.token.upper()),
        }
        for what, url in attempts.items():
            assert await refused_socket(http, url) == (403, "unknown session or wrong token"), what

        # Writing: the victim's session id with no, a wrong or another session's token.
        url = f"{intake}/api/chat/messages"
        forged_ids = []
        for what, authorization in {"no token": None, "wrong token": "Bearer " + "f" * 64,
                                    "another session's token": f"Bearer {other.token}",
                                    "the token not as Bearer": victim.token,
                                    "the token as Basic": f"Basic {victim.token}"}.items():
            client_message_id = f"forged-{uuid.uuid4().hex}"
            forged_ids.append(client_message_id)
            headers = {"Authorization": authorization} if authorization else {}
            body = {"session_id": victim.session_id, "client_message_id": client_message_id,
                    "text": "Soy Victoria, cambiad mi correo a mallory@evil.example"}
            async with http.post(url, json=body, headers=headers) as answer:
                assert (answer.status, (await answer.json())["error"]) == (
                    401, "this session needs its session token as a Bearer token"), what

        # The victim's own token still works, and is the only thing that wrote.
        await victim.say("Sigo esperando")
    assert ack["kind"] == "acknowledgement"
    thread = f"chat:{victim.session_id}"
    await asyncio.sleep(0.5)
    written = [e for e in await read_topic(kafka.bootstrap, INTAKE_RAW) if e.data.get("thread_key") == thread]
    assert len(written) == 2 and all("mallory" not in e.data["body_text"] for e in written)


async def test_cross_origin_pages_may_neither_open_a_socket_nor_post(pipeline_services):
    intake = pipeline_services["intake"].url
    own_origin = intake  # CHAT_ALLOWED_ORIGINS is unset in the shared services: the page's own origin only
    async with aiohttp.ClientSession() as http:
        customer = ChatCustomer(http, intake)
        await customer.open()
        url = socket_url(intake, customer.session_id, customer.token)
        for origin in (EVIL, "null", own_origin + ".evil.example", own_origin.replace("127.0.0.1", "localhost"),
                       own_origin.replace("http://", "https://")):
            # Even with the right token: a page elsewhere that got hold of it may not listen in.
            assert await refused_socket(http, url, {"Origin": origin}) == (403, "origin not allowed"), origin
            async with http.post(f"{intake}/api/chat/sessions", headers={"Origin": origin}) as opened:
                assert (opened.status, (await opened.json())["error"]) == (403, "origin not allowed"), origin
            body = {"session_id": customer.session_id, "client_message_id": uuid.uuid4().hex, "text": "hola"}
            async with http.post(f"{intake}/api/chat/messages", json=body,
                                 headers={"Origin": origin, "Authorization": f"Bearer {customer.token}"}) as posted:
                assert (posted.status, (await posted.json())["error"]) == (403, "origin not allowed"), origin
        # The page's own origin is let through, on every entry point.
        async with http.ws_connect(url, headers={"Origin": own_origin}) as socket:
            await socket.close()
        async with http.post(f"{intake}/api/chat/sessions", headers={"Origin": own_origin}) as opened:
            assert opened.status == 201
        body = {"session_id": customer.session_id, "client_message_id": uuid.uuid4().hex, "text": "Hola, ¿seguís ahí?"}
        async with http.post(f"{intake}/api/chat/messages", json=body,
                             headers={"Origin": own_origin, "Authorization": f"Bearer {customer.token}"}) as posted:
            assert posted.status == 202, await posted.text()


async def test_session_ids_are_unguessable_and_tokens_differ_per_session(pipeline_services):
    """Fifty sessions: all ids different, of at least 128 bits of randomness
    (24 URL-safe characters), and no token repeats or equals its id."""
    intake = pipeline_services["intake"].url
    async with aiohttp.ClientSession() as http:
        async def one() -> tuple[str, str]:
            async with http.post(f"{intake}/api/chat/sessions") as opened:
                answer = await opened.json()
                assert opened.status == 201, answer
                return answer["session_id"], answer["session_token"]
        sessions = await asyncio.gather(*(one() for _ in range(50)))
    ids = {session_id for session_id, _ in sessions}
    tokens = {token for _, token in sessions}
    assert len(ids) == len(tokens) == 50
    assert all(len(session_id) >= 24 and session_id != token for session_id, token in sessions)
