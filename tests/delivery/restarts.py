"""A restart harness: distinct records in, restarts with real signals at random
moments, then input and output compared value by value (never by counts)."""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import random
import re
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from deskstream.localkafka import free_port
from deskstream.topics import changelog_topic
from tests.delivery.pipeline_chaos import contacts_for
from tests.harness import ChildProcess

PARTITIONS = 4


@dataclass
class Outcome:
    sent: int
    received: int
    missing: list[tuple[int, int]] = field(default_factory=list)
    doubled: list[tuple[int, int]] = field(default_factory=list)
    table_total: int | None = None
    stops: list[tuple[str, float]] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.received} records out for {self.sent} in; missing {len(self.missing)} {self.missing[:5]}; "
                f"doubled {len(self.doubled)} {self.doubled[:5]}; table total {self.table_total}; "
                f"stops {[(s, round(t, 1)) for s, t in self.stops]}")


# The forwarder, as a Faust agent or as a deskstream hop: the same work on the same records.
APPS = {"faust": "tests.delivery.forward_app", "processor": "tests.delivery.forward_processor_app"}


async def create_topics(bootstrap: str, *names: str, configs: dict[str, str] | None = None) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1, topic_configs=configs or {}) for name in names])
    finally:
        await admin.close()


def distinct_records(count: int) -> list[tuple[bytes, bytes]]:
    """`count` distinct (key, value) records over 100 keys; each value is a valid
    contact.received event (what a deskstream hop accepts), with its own id."""
    template = contacts_for("delivery-fill", 1)[0]
    return [
        (str(n % 100).encode(), dataclasses.replace(template, id=f"rec-{n:07d}", subject=str(n % 100)).encode())
        for n in range(count)
    ]


async def fill(bootstrap: str, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    try:
        sends = [await producer.send(topic, key=key, value=value) for key, value in distinct_records(count)]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def read_all(bootstrap: str, topic: str) -> list[tuple[int, int, bytes]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    rows: list[tuple[int, int, bytes]] = []
    try:
        while batch := await consumer.getmany(timeout_ms=1500):
            for tp, records in batch.items():
                rows += [(tp.partition, r.offset, r.value) for r in records]
    finally:
        await consumer.stop()
    return rows


class ForwardWorker(ChildProcess):
    """tests/delivery/forward_app.py as a subprocess."""

    def __init__(self, bootstrap: str, work: Path, source: str, sink: str, delay: float,
                 extra_env: dict[str, str] | None = None, app: str = "faust") -> None:
        self.app_name = f"delivery-{uuid.uuid4().hex[:8]}"
        env = {
            "PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1", "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "DESKSTREAM_DATA_DIR": str(work), "DELIVERY_APP": self.app_name,
            "DELIVERY_HTTP_PORT": str(free_port()), "DELIVERY_IN": source, "DELIVERY_OUT": sink,
            "DELIVERY_DELAY": str(delay), "KAFKA_TOPIC_PARTITIONS": str(PARTITIONS),
            **(extra_env or {}),
        }
        super().__init__("forward", [sys.executable, "-m", APPS[app]], env, work / "worker.log")

    def table_totals(self) -> list[int]:
        """What the running worker (its latest start) has reported, a second apart."""
        latest = self.log_path.read_text(errors="replace").rsplit("--- start ", 1)[-1]
        return [int(n) for n in re.findall(r"TABLE_TOTAL=(\d+)", latest)]


async def prepare(bootstrap: str, work: Path, records: int, delay: float = 0.0,
                  extra_env: dict[str, str] | None = None, app: str = "faust") -> tuple[ForwardWorker, str, str]:
    """Fresh input and output topics, the input filled; the forwarder, not started yet."""
    run = uuid.uuid4().hex[:8]
    source, sink = f"delivery.in.{run}", f"delivery.out.{run}"
    await create_topics(bootstrap, source, sink)
    await fill(bootstrap, source, records)
    worker = ForwardWorker(bootstrap, work, source, sink, delay, extra_env, app)
    if app == "processor":
        await create_topics(bootstrap, changelog_topic(worker.app_name, "counts"), configs={"cleanup.policy": "compact"})
    return worker, source, sink


async def restart_run(bootstrap: str, work: Path, records: int, restarts: int, signals: tuple[int, ...],
                      delay: float = 0.0, seed: int | None = None,
                      extra_env: dict[str, str] | None = None, app: str = "faust") -> Outcome:
    """Push `records` distinct records through the forwarder, stopping and restarting
    it `restarts` times at random moments with the given signals (cycled), and compare."""
    rng = random.Random(seed)
    worker, source, sink = await prepare(bootstrap, work, records, delay, extra_env, app)
    outcome = Outcome(sent=records, received=0)
    worker.start()
    for n in range(restarts):
        await asyncio.sleep(rng.uniform(3.0, 6.0))
        signum = signals[n % len(signals)]
        took = await asyncio.to_thread(worker.signal, signum)
        outcome.stops.append((signal.Signals(signum).name, took))
        worker.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        await asyncio.sleep(2)
        totals = worker.table_totals()
        # done when every record is counted, or when the count has not moved for 20 s
        # (a run that lost records never gets there; a worker still rejoining its
        # group after a SIGKILL, up to the 10 s session timeout, is not stalled)
        steady = len(totals) >= 3 and totals[-1] == totals[-3]
        if steady and totals[-1] >= records or len(totals) >= 20 and totals[-1] == totals[-20]:
            break
    outcome.table_total = (worker.table_totals() or [None])[-1]
    outcome.stops.append(("TERM", await asyncio.to_thread(worker.signal, signal.SIGTERM)))
    sent = {value: (p, o) for p, o, value in await read_all(bootstrap, source)}
    seen = collections.Counter(value for _, _, value in await read_all(bootstrap, sink))
    outcome.received = sum(seen.values())
    outcome.missing = sorted(pos for value, pos in sent.items() if value not in seen)
    outcome.doubled = sorted(sent[value] for value, k in seen.items() if k > 1)
    return outcome
