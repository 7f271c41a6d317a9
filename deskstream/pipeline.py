"""What every service has around its logic: the contract, metrics, its hops and a publisher.

A service declares each hop as a plain handler::

    @pipeline.processor("tickets", source=INTAKE_RAW, tables=("threads",))
    def turn_contacts_into_ticket_events(contact: Event, step: Step) -> None:
        ...

and the pipeline runs it as a `deskstream.processor.Processor` (exactly once, state
included) inside the service's Faust worker. Input that arrives outside Kafka (an
HTTP request) goes in with `publish`, which returns once the broker has the record.
"""
from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import logging
from typing import Any, Callable

import faust
from aiokafka import AIOKafkaProducer
from mode import Service

from deskstream.contract import Contract, default_contract
from deskstream.events import Event, stable_id, utcnow
from deskstream.metrics import ServiceMetrics
from deskstream.processor import MAX_RECORDS_PER_TRANSACTION, Handler, Processor
from deskstream.replica import TableReplica
from deskstream.settings import KafkaSettings, ServiceSettings
from deskstream.topics import TABLES, app_id


log = logging.getLogger(__name__)


class NotStored(Exception):
    """Kafka did not acknowledge a record in time (or refused it): the caller answers
    503 and its client retries with the same ids, which consumers drop if the first
    attempt did get through after all."""


class Publisher(Service):
    """An idempotent producer for records that start outside Kafka."""

    def __init__(self, kafka: KafkaSettings, client_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kafka = kafka
        self.client_id = client_id
        self._producer: AIOKafkaProducer | None = None

    async def on_start(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.kafka.bootstrap, **self.kafka.client_options(),
            client_id=self.client_id, acks="all", enable_idempotence=True, linger_ms=2,
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()  # a refused start (wrong password) leaves no client behind
            raise
        self._producer = producer

    async def on_stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    @property
    def connected(self) -> bool:
        return self._producer is not None

    async def send_and_wait(self, topic: str, key: str, value: bytes, partition: int | None = None) -> None:
        if self._producer is None:
            raise RuntimeError("the publisher has not started")
        await self._producer.send_and_wait(topic, key=key.encode(), value=value, partition=partition)


class Pipeline:
    """One service's hops and publisher, started and stopped with its Faust app."""

    def __init__(self, app: faust.App, settings: ServiceSettings, contract: Contract | None = None) -> None:
        self.app = app
        self.service = settings.name
        self.kafka = settings.kafka
        self.source = f"deskstream/{self.service}"
        self.publish_timeout_seconds = settings.publish_timeout_seconds
        self.contract = contract or default_contract()
        self.metrics = ServiceMetrics(self.service)
        self.processors: dict[str, Processor] = {}
        self.replicas: list[TableReplica] = []
        self.publisher = Publisher(self.kafka, client_id=f"{app_id(self.service)}-publisher")
        app.add_dependency(self.publisher)

    def processor(
        self, name: str, *, source: str, tables: tuple[str, ...] = (), max_batch: int = MAX_RECORDS_PER_TRANSACTION
    ) -> Callable[[Handler], Processor]:
        """Run the decorated handler on every event of `source`, in transactions.

        `name` makes the consumer group (``deskstream-<service>.<name>``) and the
        transactional ids: renaming a hop starts it again from the oldest record.
        A hop that calls the outside world per record takes smaller batches
        (`max_batch`), so that a batch stays well within the consumer's poll interval.
        """
        unknown = set(tables) - set(TABLES.get(self.service, ()))
        if unknown:
            raise ValueError(f"tables {sorted(unknown)} of {self.service} are not in deskstream.topics.TABLES")

        def register(handler: Handler) -> Processor:
            processor = Processor(
                name=name,
                group_id=f"{app_id(self.service)}.{name}",
                service=self.service,
                source=source,
                handler=handler,
                tables=tables,
                kafka=self.kafka,
                contract=self.contract,
                metrics=self.metrics,
                deadletter=functools.partial(deadletter_event, self.source),
                max_batch=max_batch,
            )
            self.processors[name] = processor
            self.app.add_dependency(processor)
            return processor

        return register

    def replica(self, table: str) -> TableReplica:
        """A copy of one of this service's tables on this worker, whichever partitions it
        owns, for reads that every worker must answer; /readyz waits for it to catch up."""
        if table not in TABLES.get(self.service, ()):
            raise ValueError(f"{table} is not one of {self.service}'s tables in deskstream.topics.TABLES")
        replica = TableReplica(self.kafka, self.service, table)
        self.replicas.append(replica)
        self.app.add_dependency(replica)
        return replica

    def event(self, event_type: str, event_id: str, data: dict[str, Any], subject: str | None = None) -> Event:
        return Event(type=event_type, source=self.source, id=event_id, data=data, subject=subject)

    async def publish(self, topic: str, key: str, event: Event, *, timeout: float | None = None, partition: int | None = None) -> None:
        """Validate, send, and wait until the broker has acknowledged the record: the
        caller answers only after this returns, so an accepted message is a stored one.
        Raises NotStored after `timeout` seconds (PUBLISH_TIMEOUT_SECONDS by default),
        so that no request hangs on a broker that is away. `partition` overrides the
        key's partition (a broadcast to every partition: an erasure)."""
        self.contract.check(event)
        try:
            await asyncio.wait_for(self.publisher.send_and_wait(topic, key, event.encode(), partition),
                                   timeout or self.publish_timeout_seconds)
        except Exception as error:
            self.metrics.failed("not stored")
            log.warning("record not stored", extra={"topic": topic, "type": event.type, "error": type(error).__name__})
            raise NotStored(f"{topic}: {type(error).__name__}") from error
        self.metrics.produced(topic, event.type)

    def ready(self) -> bool:
        """Connected, every hop assigned with its state restored, every replica caught up."""
        return self.serving() and all(p.ready() for p in self.processors.values())

    def serving(self) -> bool:
        """What the HTTP routes need: the publisher connected (contacts and commands go to
        Kafka) and every replica caught up (reads come from them). Unlike `ready`, it
        does not wait for this worker's hops to hold partitions: during a rebalance every
        worker of the service restores its tables, and a worker beyond the partition
        count holds none, yet both can take requests."""
        return self.publisher.connected and all(r.caught_up for r in self.replicas)


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
