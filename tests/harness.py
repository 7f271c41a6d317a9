"""Running deskstream's real services as subprocesses, and reading topics, for tests.

Workers run as separate processes stopped with real signals (STACK-NOTES: an
in-process Worker.stop() returns before the consumer has left its group).
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from deskstream.events import Event, EventDecodeError
from deskstream.localkafka import LocalKafka, die_with_parent, free_port
from deskstream.settings import PROJECT_ROOT, KafkaSettings
from deskstream.topics import ensure_topics

SERVICES = ("intake", "router", "notifier", "feedback")
LIMITS = ("INTAKE_CHAT_SESSIONS_PER_ADDRESS", "INTAKE_CHAT_MESSAGES_PER_ADDRESS", "INTAKE_CHAT_MESSAGES_PER_SESSION",
          "INTAKE_CHAT_SOCKETS_PER_ADDRESS", "INTAKE_TWILIO_REQUESTS_PER_ADDRESS", "INTAKE_SMS_PER_SENDER",
          "INTAKE_MAIL_PER_SENDER")
GENEROUS_LIMIT = "1000000/1"


class ChildProcess:
    """A worker run as a child process (it dies with the test), logging to a file,
    stopped with real signals."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> "ChildProcess":
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"--- start {self.starts} ---\n".encode())
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=PROJECT_ROOT, preexec_fn=die_with_parent,
            )
        return self

    def signal(self, signum: int) -> float:
        """Send a signal and wait for the process to end; return how long it took."""
        assert self.process is not None
        start = time.monotonic()
        self.process.send_signal(signum)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        return time.monotonic() - start

    def stop(self) -> float | None:
        if self.process is None or self.process.poll() is not None:
            return None
        return self.signal(signal.SIGTERM)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class ServiceProcess(ChildProcess):
    """One service's worker, started with `deskstream run NAME` on its own port."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        super().__init__(name, [sys.executable, "-m", "deskstream.cli", "run", name], env, log_dir / f"{name}.log")
        self.port = int(env[f"{name.upper()}_HTTP_PORT"])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ServiceProcess":
        super().start()
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log_path}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready in {timeout:.0f} s:\n{self.log_tail()}")


@contextlib.contextmanager
def own_kafka(prefix: str) -> Iterator[LocalKafka]:
    """A local Kafka of the test's own, on free ports, with deskstream's topics created,
    for tests that stop the broker or must not share state; removed afterwards."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"deskstream-{prefix}-kafka-"))
    broker = LocalKafka(data_dir, port=free_port(), controller_port=free_port()).start()
    try:
        asyncio.run(ensure_topics(KafkaSettings.from_env({"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap})))
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.contextmanager
def running(*services: "ServiceProcess") -> Iterator[tuple["ServiceProcess", ...]]:
    """The services started, each ready, and stopped with SIGTERM at the end."""
    try:
        for service in services:
            service.start()
        for service in services:
            service.wait_ready()
        yield services
    finally:
        for service in services:
            service.stop()


def service_env(bootstrap: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a set of services on free ports, against the given cluster."""
    env = {key: value for key, value in os.environ.items() if not key.endswith("_HTTP_PORT")}
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        DESKSTREAM_DATA_DIR=str(data_dir),
        CHAT_SESSION_SECRET="test-secret-" + "x" * 40,
        LOG_LEVEL="info",
        PYTHONUNBUFFERED="1",
    )
    # The tests, the benchmarks and the chaos runs send thousands of contacts from loopback,
    # many from one sender: limits far above what they send, which the flooding tests
    # (tests/security/test_flooding.py) lower again through `extra`.
    env.update({name: GENEROUS_LIMIT for name in LIMITS}, INTAKE_CHAT_SOCKETS_PER_SESSION="1000")
    for name in SERVICES:
        env[f"{name.upper()}_HTTP_PORT"] = str(free_port())
    env.update(extra)
    return env


async def read_topic(bootstrap: str, topic: str, settle_ms: int = 1500) -> list[Event]:
    """Every committed event on a topic, from the beginning, in partition order. Records
    that are not events (the dead-letter tests write some on purpose) are skipped."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False, isolation_level="read_committed",
    )
    await consumer.start()
    events: list[Event] = []
    try:
        while batch := await consumer.getmany(timeout_ms=settle_ms):
            for records in batch.values():
                for record in records:
                    try:
                        events.append(Event.decode(record.value))
                    except EventDecodeError:
                        continue
    finally:
        await consumer.stop()
    return events


async def wait_for_events(bootstrap: str, topic: str, predicate, count: int, timeout: float = 30.0) -> list[Event]:
    """Poll a topic until `count` events satisfy `predicate` (or fail after `timeout`)."""
    deadline = time.monotonic() + timeout
    matching: list[Event] = []
    while time.monotonic() < deadline:
        matching = [event for event in await read_topic(bootstrap, topic, settle_ms=500) if predicate(event)]
        if len(matching) >= count:
            return matching
        await asyncio.sleep(0.5)
    raise TimeoutError(f"{len(matching)} of {count} events on {topic} after {timeout:.0f} s")


def by_ticket(events: Iterable[Event], event_type: str) -> dict[str, list[Event]]:
    grouped: dict[str, list[Event]] = {}
    for event in events:
        if event.type == event_type:
            grouped.setdefault(event.data["ticket_id"], []).append(event)
    return grouped
