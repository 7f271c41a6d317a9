"""Helpers for the broker contract tests: uniquely named topics, bounded waits and
reads, and Kafka clients run as child processes (see children.py)."""
from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

CHILDREN = Path(__file__).with_name("children.py")


def unique(prefix: str) -> str:
    return f"contract-{prefix}-{uuid.uuid4().hex[:10]}"


async def create_topic(bootstrap: str, prefix: str, partitions: int, timeout: float = 15.0) -> str:
    """A new topic with a unique name, created and answering metadata with every
    partition led, before any client uses it (the broker never auto-creates topics)."""
    name = unique(prefix)
    deadline = time.monotonic() + timeout
    while True:
        # Retried: a broker that has just (re)started answers metadata while it is
        # still fenced, and then refuses topics with error 38 "all brokers are fenced".
        errors = await _create(bootstrap, name, partitions)
        if not errors:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"could not create {name} in {timeout:.0f} s: {errors}")
        await asyncio.sleep(0.25)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        async def led() -> bool:
            await producer.client.force_metadata_update()
            metadata = producer.client.cluster
            leaders = [metadata.leader_for_partition(TopicPartition(name, p)) for p in range(partitions)]
            return all(leader is not None and leader >= 0 for leader in leaders)
        await until(led, timeout, f"{name} has a leader for each of its {partitions} partitions")
    finally:
        await producer.stop()
    return name


async def _create(bootstrap: str, name: str, partitions: int) -> list:
    """create_topics reports errors in its response rather than raising: return them
    (36, already exists, is fine: an earlier attempt of ours created it)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="contract-admin", request_timeout_ms=5000)
    try:
        await admin.start()
        response = await admin.create_topics([NewTopic(name, partitions, 1)], timeout_ms=4000)
        return [error for error in response.topic_errors if error[1] not in (0, 36)]
    except KafkaError as error:
        return [repr(error)]
    finally:
        await admin.close()


async def until(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.1) -> float:
    """Wait until condition() (sync or async) is true; return the seconds it took."""
    start = time.monotonic()
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        await asyncio.sleep(interval)


async def produce(bootstrap: str, topic: str, values: dict[int, list[str]], **producer_options) -> dict[int, list[int]]:
    """Send values to their partitions, batched (all sends in flight at once), and
    return the offset the broker acknowledged for each, partition by partition."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **producer_options)
    await producer.start()
    try:
        sends = {p: [await producer.send(topic, v.encode(), partition=p) for v in vs] for p, vs in values.items()}
        acked = {p: await asyncio.gather(*futures) for p, futures in sends.items()}
    finally:
        await producer.stop()
    return {p: [metadata.offset for metadata in metadatas] for p, metadatas in acked.items()}


def by_partition(records: Iterable) -> dict[int, list[str]]:
    values: dict[int, list[str]] = defaultdict(list)
    for record in records:
        values[record.partition].append(record.value.decode())
    return dict(values)


async def read_partitions(
    bootstrap: str, topic: str, partitions: int, want: int, timeout: float = 20.0, settle: float = 1.0,
    isolation_level: str = "read_uncommitted",
) -> dict[int, list[str]]:
    """Every value on the topic from the beginning, partition by partition, read with
    no consumer group: at least `want` records, then `settle` seconds more so that
    extra records would show. Retries starting the consumer while the broker does
    not answer yet (after a restart)."""
    deadline = time.monotonic() + timeout
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    while True:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level=isolation_level,
            request_timeout_ms=5000, client_id="contract-reader",
        )
        try:
            await consumer.start()
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            records: list = []
            settled_at: float | None = None
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=200)
                for part in batch.values():
                    records += part
                if len(records) >= want:
                    settled_at = settled_at or time.monotonic() + settle
                    if time.monotonic() >= settled_at:
                        break
            return by_partition(records)
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
        finally:
            await consumer.stop()


class Child:
    """A Kafka client from children.py in its own process, its stdout read by a thread
    so that async waits never block the test's event loop (and its heartbeats)."""

    def __init__(self, *arguments: str) -> None:
        self.arguments = arguments
        self.lines: list[str] = []
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> "Child":
        self.process = subprocess.Popen(
            [sys.executable, str(CHILDREN), *self.arguments],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    async def wait_for(self, predicate: Callable[[str], bool], timeout: float, what: str) -> str:
        def found() -> str | None:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"child exited with {self.process.returncode} before {what}:\n{self.output()}")
            return next((line for line in self.lines if predicate(line)), None)
        try:
            await until(found, timeout, what)
        except AssertionError as error:
            raise AssertionError(f"{error}\nchild output:\n{self.output()}") from None
        return found()  # type: ignore[return-value]

    def last(self, prefix: str) -> str | None:
        return next((line for line in reversed(self.lines) if line.startswith(prefix)), None)

    def output(self, lines: int = 40) -> str:
        return "\n".join(self.lines[-lines:])

    def kill(self) -> None:
        """SIGKILL: no LeaveGroup, no abort, no close; the broker finds out by itself."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def __enter__(self) -> "Child":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.kill()
