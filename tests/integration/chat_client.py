"""A chat customer, as a test sees one: posts messages, reads the session's pushes."""
from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import orjson


class ChatCustomer:
    def __init__(self, http: aiohttp.ClientSession, base_url: str, name: str = "Marta", language: str | None = None) -> None:
        self.http = http
        self.base_url = base_url
        self.customer = {"name": name, **({"language": language} if language else {})}
        self.session_id: str | None = None
        self.token: str | None = None

    async def open(self) -> None:
        """Open a session before the first message, as the page does."""
        async with self.http.post(f"{self.base_url}/api/chat/sessions") as response:
            answer = await response.json()
            assert response.status == 201, answer
        self.session_id, self.token = answer["session_id"], answer["session_token"]

    async def say(self, text: str, client_message_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"client_message_id": client_message_id or uuid.uuid4().hex, "text": text, "customer": self.customer}
        headers = {}
        if self.session_id:
            body["session_id"] = self.session_id
            headers["Authorization"] = f"Bearer {self.token}"
        async with self.http.post(f"{self.base_url}/api/chat/messages", json=body, headers=headers) as response:
            answer = await response.json()
            assert response.status == 202, answer
        self.session_id, self.token = answer["session_id"], answer["session_token"]
        return answer

    async def messages(self, count: int, timeout: float = 20.0, after: int = 0) -> list[dict[str, Any]]:
        """The first `count` messages the session is sent (including earlier ones)."""
        url = f"{self.base_url}/api/chat/sessions/{self.session_id}/ws?token={self.token}&after={after}"
        received: list[dict[str, Any]] = []
        async with self.http.ws_connect(url) as socket:
            async with asyncio.timeout(timeout):
                while len(received) < count:
                    frame = await socket.receive()
                    if frame.type != aiohttp.WSMsgType.BINARY and frame.type != aiohttp.WSMsgType.TEXT:
                        raise AssertionError(f"socket ended: {frame}")
                    received.append(orjson.loads(frame.data))
        return received
