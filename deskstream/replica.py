"""A read-only copy of one hop's table, kept on every worker of the service.

A hop's table lives where its input partition is processed: with two router workers,
only the one that owns the dispatch partition holds the tickets and agents. The
agent API runs on both, so each follows the table's compacted changelog (committed
records only, every partition) and answers reads and authorisation from this copy.
It trails the owner by the time a transaction takes to commit and be read back: fine
for showing a queue, and the decisions themselves are still taken by the owner.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Iterator

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from mode import Service

from deskstream.settings import KafkaSettings
from deskstream.topics import changelog_topic

log = logging.getLogger(__name__)


class Watch:
    """The keys that changed since the watcher last looked: a set, so a watcher that
    falls behind gets each changed key once rather than a backlog of every change."""

    def __init__(self) -> None:
        self._changed: set[str] = set()
        self._event = asyncio.Event()

    def note(self, key: str) -> None:
        self._changed.add(key)
        self._event.set()

    async def changed(self) -> set[str]:
        await self._event.wait()
        return self.pending()

    def pending(self) -> set[str]:
        """The keys changed since the last look, without waiting (often none)."""
        self._event.clear()
        changed, self._changed = self._changed, set()
        return changed


@contextlib.contextmanager
def watching(*replicas: "TableReplica") -> Iterator[Watch]:
    """One watch over the changes of these replicas, for the duration of the block
    (a page that follows the queue live)."""
    watch = Watch()
    for replica in replicas:
        replica._watches.add(watch)
    try:
        yield watch
    finally:
        for replica in replicas:
            replica._watches.discard(watch)


class TableReplica(Service):
    """Follows `service`'s table `table` from the beginning of its changelog."""

    def __init__(self, kafka: KafkaSettings, service: str, table: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kafka = kafka
        self.topic = changelog_topic(service, table)
        self._rows: dict[str, Any] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._caught_up = False
        self._watches: set[Watch] = set()

    def get(self, key: str) -> Any:
        return self._rows.get(key)

    def values(self) -> list[Any]:
        return list(self._rows.values())

    @property
    def caught_up(self) -> bool:
        """Whether everything committed before this worker started has been read."""
        return self._caught_up

    async def synced(self, timeout: float = 10.0) -> bool:
        """Wait until every record committed before this call has been read, for a
        decision that must not miss a row written just before it (an incident's
        audience); False if that took longer than `timeout`."""
        consumer = self._consumer
        if consumer is None:
            return False
        deadline = asyncio.get_running_loop().time() + timeout
        while not consumer.assignment():
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.05)
        ends = await consumer.end_offsets(list(consumer.assignment()))
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            if asyncio.get_running_loop().time() > deadline:
                log.warning("table replica not synced in time", extra={"topic": self.topic})
                return False
            await asyncio.sleep(0.02)
        return True

    async def on_start(self) -> None:
        # No group: the consumer is given every partition of the topic, and with no
        # committed offsets it starts from the oldest record.
        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.kafka.bootstrap,
            **self.kafka.client_options(),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            client_id=f"replica-{self.topic}",
        )
        await consumer.start()
        self._consumer = consumer
        self.add_future(self._follow())

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def _follow(self) -> None:
        assert self._consumer is not None
        ends: dict[TopicPartition, int] = {}
        while not self.should_stop:
            batch = await self._consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batch.values():
                for record in records:
                    if record.key is None:
                        continue
                    key = record.key.decode()
                    if record.value is None:
                        self._rows.pop(key, None)
                    else:
                        self._rows[key] = orjson.loads(record.value)
                    for watch in self._watches:
                        watch.note(key)
            if self._caught_up or not self._consumer.assignment():
                continue
            if not ends:
                ends = await self._consumer.end_offsets(list(self._consumer.assignment()))
            if all([await self._consumer.position(tp) >= end for tp, end in ends.items()]):
                self._caught_up = True
                log.info("table replica caught up", extra={"topic": self.topic, "rows": len(self._rows)})
