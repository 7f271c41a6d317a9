"""Kafka wiring shared by the four Faust services.

`Pipeline` is what an agent body needs around its pure logic: decode and validate
what comes in (dead-lettering what cannot be used, with the reason), validate and
send what goes out, and count both. `create_app` holds the Faust settings that were
measured to matter for stopping and recovering (STACK-NOTES.md).
"""
from __future__ import annotations

import base64
import hashlib
import logging
import os
import signal
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator

import faust
from faust.types import TP

from deskstream.contract import Contract, SchemaViolation, default_contract
from deskstream.events import Event, EventDecodeError, stable_id, utcnow
from deskstream.faust_transport import broker_url
from deskstream.logs import logging_config
from deskstream.metrics import ServiceMetrics
from deskstream.settings import ServiceSettings
from deskstream.topics import DEADLETTER, TABLES, app_id

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 9.0


def create_app(settings: ServiceSettings, **overrides: Any) -> faust.App:
    """A Faust app with deskstream's defaults; keyword arguments override them."""
    options: dict[str, Any] = dict(
        broker=broker_url(settings.kafka.faust_broker),  # seek-safe consumer, see faust_transport
        store="memory://",
        datadir=str(settings.data_dir),
        processing_guarantee="at_least_once",
        topic_partitions=settings.kafka.partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        consumer_auto_offset_reset="earliest",
        # Bounded waits so that a SIGTERM during a rebalance stops in seconds, not minutes.
        broker_session_timeout=10,
        broker_rebalance_timeout=10,
        broker_heartbeat_interval=2,
        broker_request_timeout=30,
        broker_commit_interval=0.5,
        producer_linger=0.002,
        producer_acks=-1,
        stream_wait_empty=False,
        web_enabled=True,
        web_bind=settings.http_host,
        web_port=settings.http_port,
        logging_config=logging_config(settings.log_level, settings.name),
    )
    options.update(overrides)
    return faust.App(app_id(settings.name), **options)


@dataclass(frozen=True, slots=True)
class Incoming:
    """One consumed record and the event it carries."""

    topic: str
    key: bytes | None
    raw: bytes
    event: Event


class Pipeline:
    """Decode, validate, send and count events for one service's Faust app."""

    def __init__(self, app: faust.App, service: str, contract: Contract | None = None) -> None:
        self.app = app
        self.service = service
        self.source = f"deskstream/{service}"
        self.contract = contract or default_contract()
        self.metrics = ServiceMetrics(service)
        self._topics: dict[str, faust.TopicT] = {}

    def topic(self, name: str) -> faust.TopicT:
        """A raw-bytes Faust topic; deskstream does its own (de)serialisation."""
        if name not in self._topics:
            self._topics[name] = self.app.topic(
                name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                partitions=self.app.conf.topic_partitions,
            )
        return self._topics[name]

    def table(self, name: str) -> faust.Table:
        """A table of this service; its changelog is one `deskstream topics` creates."""
        if name not in TABLES.get(self.service, ()):
            raise ValueError(f"table {name!r} of {self.service} is not in deskstream.topics.TABLES")
        return self.app.Table(name, partitions=self.app.conf.topic_partitions)

    def event(self, event_type: str, event_id: str, data: dict[str, Any], subject: str | None = None) -> Event:
        return Event(type=event_type, source=self.source, id=event_id, data=data, subject=subject)

    async def events(self, stream: faust.StreamT, topic: str) -> AsyncIterator[Incoming]:
        """The usable events of a stream; what cannot be used is dead-lettered on the way."""
        async for key, raw in stream.items():
            event = await self.decode(topic, key, raw)
            if event is not None:
                yield Incoming(topic, key, raw, event)

    @asynccontextmanager
    async def handling(self, incoming: Incoming) -> AsyncIterator[Event]:
        """Time the handling of one event; if it fails, dead-letter it with the reason
        and go on, so one bad record never stops an agent (nor hangs its worker)."""
        start = time.perf_counter()
        try:
            yield incoming.event
        except Exception as error:
            log.error("event handling failed", exc_info=True, extra={"event_id": incoming.event.id, "type": incoming.event.type})
            await self.deadletter(incoming.topic, f"processing failed: {type(error).__name__}: {error}", incoming.raw, incoming.key)
        finally:
            self.metrics.processing.labels(self.service, incoming.topic).observe(time.perf_counter() - start)

    async def decode(self, topic: str, key: bytes | None, raw: bytes) -> Event | None:
        """The event in `raw`, or None once it has been dead-lettered with the reason."""
        try:
            event = Event.decode(raw)
            self.contract.validate(event.to_dict())
        except (EventDecodeError, SchemaViolation) as error:
            await self.deadletter(f"{topic}", str(error), raw, key)
            return None
        self.metrics.consumed(topic, event.type)
        return event

    async def send(self, topic: str, key: str, event: Event) -> None:
        """Validate and send; Faust flushes the producer before it commits the input."""
        self.contract.check(event)
        await self.topic(topic).send(key=key.encode(), value=event.encode())
        self.metrics.produced(topic, event.type)

    async def publish(self, topic: str, key: str, event: Event) -> None:
        """Validate, send, and wait until the broker has acknowledged the record.

        For input that arrives outside Kafka (an HTTP request): the caller answers
        only after this returns, so an accepted message is a stored message.
        """
        self.contract.check(event)
        pending = await self.topic(topic).send(key=key.encode(), value=event.encode())
        await pending
        self.metrics.produced(topic, event.type)

    async def deadletter(self, origin: str, reason: str, raw: bytes, key: bytes | None = None) -> None:
        event = deadletter_event(self.source, origin, reason, raw, key)
        self.metrics.failed(reason.split(":", 1)[0][:60])
        log.warning("dead-lettered input", extra={"origin": origin, "reason": reason[:200], "dl_id": event.id})
        await self.send(DEADLETTER, origin, event)

    def ready(self) -> bool:
        """Connected, assigned and recovered: safe to take table-backed requests."""
        app = self.app
        try:
            assigned: set[TP] = app.consumer.assignment()
        except Exception:
            return False
        return bool(assigned) and not app.rebalancing and app.tables.recovery.completed.is_set()


def deadletter_event(source: str, origin: str, reason: str, raw: bytes, key: bytes | None = None) -> Event:
    """A `deadletter.recorded` event keeping the original bytes and why they were refused."""
    digest = hashlib.sha256(raw).hexdigest()
    return Event(
        type="deadletter.recorded",
        source=source,
        id=stable_id("deadletter", origin, digest, reason),
        subject=origin,
        data={
            "origin": origin,
            "reason": reason,
            "recorded_at": utcnow(),
            "original_base64": base64.b64encode(raw).decode(),
            "original_size": len(raw),
            "original_sha256": digest,
            "key": key.decode("utf-8", "replace") if key else None,
        },
    )


class Worker(faust.Worker):
    """Faust's worker, with a hard stop deadline and no debugger on SIGUSR2.

    A worker that is asked to stop must be gone within 10 s (a stuck rebalance can
    otherwise hold it for minutes), so the first SIGTERM or SIGINT arms a watchdog
    that ends the process if the orderly stop has not finished in time.
    """

    def install_signal_handlers(self) -> None:
        super().install_signal_handlers()
        self.loop.remove_signal_handler(signal.SIGUSR2)
        self.loop.add_signal_handler(signal.SIGTERM, self._stop_within_deadline, signal.SIGTERM)
        self.loop.add_signal_handler(signal.SIGINT, self._stop_within_deadline, signal.SIGINT)

    def _stop_within_deadline(self, signum: signal.Signals) -> None:
        watchdog = threading.Timer(STOP_GRACE_SECONDS, _exit_now, args=(signum,))
        watchdog.daemon = True
        watchdog.start()
        self._schedule_shutdown(signum)


def _exit_now(signum: signal.Signals) -> None:
    log.error("orderly stop took longer than %.0f s; exiting", STOP_GRACE_SECONDS)
    logging.shutdown()
    os._exit(128 + int(signum))
