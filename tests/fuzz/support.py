"""What the fuzz properties share: the contract check an event must pass to leave a
service, a Pipeline stand-in that records instead of sending, and an aiohttp server
on a loop of its own that many examples can call in turn.

The routes' logic is under test, not Kafka: the stand-in checks every event exactly
as `Pipeline.publish` does before it sends (the contract, then the encoding), so an
event the real pipeline would refuse fails here the same way.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import settings

from deskstream.contract import default_contract
from deskstream.events import Event
from deskstream.metrics import ServiceMetrics
from deskstream.pipeline import NotStored

NOW = "2026-12-02T10:00:00.000Z"
T = TypeVar("T")


def scaled(share: float) -> int:
    """A share of the profile's examples, for the properties that cost a request or a
    whole MIME parse per example: they keep their proportion in both profiles."""
    return max(5, int(settings.default.max_examples * share))


def publishable(event: Event) -> Event:
    """The event, if a service could send it: valid against its schema (envelope
    included) and encodable as the JSON Kafka gets (orjson refuses lone surrogates,
    which jsonschema lets through)."""
    default_contract().check(event)
    event.encode()
    return event


def ticket_events_publishable(events: list[Any], source: str = "deskstream/intake") -> None:
    """Each of normalise()'s TicketEvents, as the intake hop emits it, is publishable."""
    for ticket_event in events:
        publishable(Event(type=ticket_event.type, source=source, id=ticket_event.id, data=ticket_event.data,
                          subject=ticket_event.ticket_id))


class RecordingPipeline:
    """What the routes need of `deskstream.pipeline.Pipeline`. `publish` checks the
    event against the contract (a violation raises, as in Pipeline.publish, and the
    route answers 500), encodes it (a failure is NotStored, as there: 503), and keeps
    it instead of sending it."""

    def __init__(self, service: str = "intake") -> None:
        self.source = f"deskstream/{service}"
        self.metrics = ServiceMetrics(service)
        self.published: list[tuple[str, str, Event]] = []

    def event(self, event_type: str, event_id: str, data: dict[str, Any], subject: str | None = None) -> Event:
        return Event(type=event_type, source=self.source, id=event_id, data=data, subject=subject)

    async def publish(self, topic: str, key: str, event: Event, *, timeout: float | None = None) -> None:
        default_contract().check(event)
        try:
            event.encode()
            key.encode()
        except Exception as error:
            raise NotStored(f"{topic}: {type(error).__name__}") from error
        self.published.append((topic, key, event))


class Served:
    """An aiohttp application behind a TestServer and TestClient on an event loop of
    its own, started once and called by every example of a property (a server per
    example would cost more than the example)."""

    def __init__(self, *setups: Callable[[web.Application], None], client_max_size: int) -> None:
        self.loop = asyncio.new_event_loop()

        async def start() -> TestClient:
            application = web.Application(client_max_size=client_max_size)
            for setup in setups:
                setup(application)
            client = TestClient(TestServer(application))
            await client.start_server()
            return client

        self.client: TestClient = self.loop.run_until_complete(start())

    def run(self, call: Callable[[TestClient], Awaitable[T]]) -> T:
        async def go() -> T:
            return await call(self.client)

        return self.loop.run_until_complete(go())

    def close(self) -> None:
        closing: Coroutine[Any, Any, None] = self.client.close()
        self.loop.run_until_complete(closing)
        self.loop.close()
