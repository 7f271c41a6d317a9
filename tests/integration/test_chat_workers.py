"""Two intake workers, one chat: a page gets every message of its session whichever
worker it is connected to, in order and once each.

On a broker of its own (4 partitions, so each worker owns some sessions' outboxes and
not others): sessions start through either worker's chat API; every session has a page
open on each worker before its messages come (so one of the two is always on the
worker that does not own the session's partition), `chat.message` records for all
sessions go to `chat.outbound` interleaved, with redeliveries of some; then pages open
on each worker with `after=N`, and more messages follow. Each page must get exactly
its session's messages after its `after`, in `seq` order, none twice.
"""
from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from deskstream.events import Event, utcnow
from deskstream.topics import CHAT_OUTBOUND
from tests.harness import ServiceProcess, own_kafka, running, service_env
from tests.integration.chat_client import ChatCustomer

pytestmark = pytest.mark.integration

SESSIONS = 8
FIRST = 5  # messages per session before the late pages open
LATER = 3  # messages per session after
LATE_AFTER = 2  # what the late pages have seen already


@pytest.fixture
def two_intakes(tmp_path):
    with own_kafka("intakes") as broker:
        workers = []
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            workers.append(ServiceProcess("intake", service_env(broker.bootstrap, tmp_path / name), tmp_path / name))
        with running(*workers) as intakes:
            yield broker, list(intakes)


class Page:
    """One open chat socket, keeping every frame it gets with the moment it came."""

    def __init__(self, http: aiohttp.ClientSession, worker: ServiceProcess, customer: ChatCustomer, after: int) -> None:
        self.http = http
        self.url = f"{worker.url}/api/chat/sessions/{customer.session_id}/ws?token={customer.token}&after={after}"
        self.worker = worker
        self.session_id = customer.session_id
        self.after = after
        self.received: list[tuple[float, dict[str, Any]]] = []
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> "Page":
        self._socket = await self.http.ws_connect(self.url)
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self._socket is not None
        async for frame in self._socket:
            assert frame.type == aiohttp.WSMsgType.TEXT, frame
            self.received.append((time.monotonic(), orjson.loads(frame.data)))

    async def wait_for(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} of {count} messages on {self.url}"
            assert self._reader is not None and not self._reader.done(), f"socket ended: {self.url}"
            await asyncio.sleep(0.02)

    def messages(self) -> list[tuple[int, str, str]]:
        return [(m["seq"], m["message_id"], m["text"]) for _, m in self.received]

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._reader is not None:
            await asyncio.wait([self._reader])


def chat_message(session_id: str, n: int) -> Event:
    data = {"session_id": session_id, "message_id": f"{session_id}.{n}", "kind": "agent_reply", "text": f"message {n} for {session_id}",
            "sent_at": utcnow()}
    return Event("chat.message", "deskstream/notifier", f"{session_id}.{n}", data)


def expected(session_id: str, numbers: range) -> list[tuple[int, str, str]]:
    """Message n of a session is its outbox entry n: the redeliveries take no number."""
    return [(n, f"{session_id}.{n}", f"message {n} for {session_id}") for n in numbers]


async def send_messages(bootstrap: str, sessions: list[str], numbers: range, sent_at: dict[str, float]) -> None:
    """Message by message, the sessions interleaved; every third one delivered twice (a
    notifier replay), which the outbox must keep once."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for n in numbers:
            for index, session_id in enumerate(sessions):
                event = chat_message(session_id, n)
                for _ in range(2 if (n + index) % 3 == 0 else 1):
                    await producer.send_and_wait(CHAT_OUTBOUND, key=session_id.encode(), value=event.encode())
                sent_at.setdefault(event.id, time.monotonic())
    finally:
        await producer.stop()


async def test_a_page_on_either_worker_gets_its_sessions_messages_in_order_once(two_intakes):
    broker, workers = two_intakes
    sent_at: dict[str, float] = {}
    async with aiohttp.ClientSession() as http:
        # Sessions start on either worker; each has a page open on both, before any message.
        customers = [ChatCustomer(http, workers[n % 2].url, name=f"Customer {n}") for n in range(SESSIONS)]
        await asyncio.gather(*(customer.say(f"Hello from customer {n}") for n, customer in enumerate(customers)))
        sessions = [customer.session_id for customer in customers]
        assert len(set(sessions)) == SESSIONS
        early = [await Page(http, worker, customer, 0).open() for customer in customers for worker in workers]

        await send_messages(broker.bootstrap, sessions, range(1, FIRST + 1), sent_at)
        await asyncio.gather(*(page.wait_for(FIRST) for page in early))

        # Pages that saw LATE_AFTER messages come back, on either worker, and the chat goes on.
        late = [await Page(http, worker, customer, LATE_AFTER).open() for customer in customers for worker in workers]
        await asyncio.gather(*(page.wait_for(FIRST - LATE_AFTER) for page in late))
        await send_messages(broker.bootstrap, sessions, range(FIRST + 1, FIRST + LATER + 1), sent_at)
        await asyncio.gather(*(page.wait_for(FIRST + LATER - page.after) for page in early + late))
        await asyncio.sleep(1.5)  # time for anything doubled or stray to arrive
        for page in early + late:
            await page.close()

    for page in early + late:
        assert page.messages() == expected(page.session_id, range(page.after + 1, FIRST + LATER + 1)), page.url
    # Every page of a session, on either worker, got the same messages with the same numbers.
    for session_id in sessions:
        views = {tuple(page.messages()[-LATER:]) for page in early + late if page.session_id == session_id}
        assert len(views) == 1

    # How long after Kafka had the record the page had it: the hop's transaction, then the
    # changelog read back by the worker the page is on.
    delays = sorted((at - sent_at[message["message_id"]]) * 1000 for page in early for at, message in page.received
                    if message["seq"] > FIRST)
    print(f"\nchat.outbound to page: median {statistics.median(delays):.0f} ms, max {delays[-1]:.0f} ms over {len(delays)} pushes")
    assert statistics.median(delays) < 2000
