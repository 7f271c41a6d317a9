"""A client of the router's agent API for tests: one agent's (or supervisor's) token,
and a wait for the router's view of a ticket to reach a state (the API reads a copy of
the dispatcher's tables that trails the events by a commit)."""
from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

import aiohttp


class AgentApi:
    def __init__(self, http: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self.http = http
        self.base_url = base_url
        self.token = token

    def _headers(self, key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **({"Idempotency-Key": key} if key else {})}

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.base_url + path, headers=self._headers(None)) as answer:
            return answer.status, await answer.json()

    async def post(self, path: str, body: dict[str, Any] | None = None, key: str | None = None) -> tuple[int, Any]:
        async with self.http.post(self.base_url + path, json=body, headers=self._headers(key)) as answer:
            return answer.status, await answer.json()

    async def ticket_when(self, ticket_id: str, wanted: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status, found = await self.get(f"/api/tickets/{ticket_id}")
            if status == 200 and wanted(found):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{ticket_id} never reached the wanted state; last seen {status} {found}")
            await asyncio.sleep(0.1)
