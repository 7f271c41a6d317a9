"""A single-node Apache Kafka in KRaft mode, run from the artifacts `kafka/pom.xml`
fetches from Maven Central, for local runs and tests.

The broker is a child process: started with its storage formatted, awaited until it
answers metadata requests, and stopped (SIGTERM, then SIGKILL after a grace period)
when the context exits, so no broker outlives the run that started it.
"""
from __future__ import annotations

import asyncio
import base64
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Mapping, Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from deskstream.settings import PROJECT_ROOT

KAFKA_DIR = PROJECT_ROOT / "kafka"
LIB_DIR = KAFKA_DIR / "lib"


class LocalKafkaError(RuntimeError):
    """The local broker could not be fetched, formatted or started."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch_artifacts() -> None:
    """Copy the broker's jars into kafka/lib with Maven, unless they are there."""
    if any(LIB_DIR.glob("kafka_2.13-*.jar")):
        return
    if shutil.which("mvn") is None:
        raise LocalKafkaError("Maven (mvn) is not installed: run `make kafka-fetch`")
    result = subprocess.run(  # nosec B603, B607  # Maven from PATH (make kafka-fetch installs it), fixed arguments
        ["mvn", "-q", "-B", "-f", str(KAFKA_DIR / "pom.xml"), "dependency:copy-dependencies"],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise LocalKafkaError(f"mvn could not fetch Kafka: {result.stdout[-2000:]}{result.stderr[-2000:]}")


def die_with_parent() -> None:
    """Run in a child before exec: the kernel sends it SIGTERM if its parent dies, so a
    killed `deskstream up` or test run leaves no broker or worker behind (Linux only).
    The kernel watches the parent *thread*: start children from the main thread, never
    from `asyncio.to_thread` or an executor, whose threads end."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    PR_SET_PDEATHSIG = 1
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def cluster_id() -> str:
    """A KRaft cluster id as Kafka's own Uuid.randomUuid() makes one: URL-safe base64 of
    16 random bytes, never starting with '-' (the storage tool would read it as an
    option and refuse to format: one start in 64 failed so)."""
    while True:
        encoded = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not encoded.startswith("-"):
            return encoded


class LocalKafka:
    """One broker+controller on loopback. Use as a context manager, or start()/stop().

    The PLAINTEXT listener on `port` is always there (readiness is probed on it, and
    brokers and controller talk over PLAINTEXT loopback). A test of client security
    adds listeners of its own beside it: `extra_listeners` maps a listener name to
    its security protocol and port, `extra_properties` adds or overrides
    server.properties lines (the listener's SASL/TLS settings), and `format_args`
    go to `kafka-storage format` (SCRAM users: ``--add-scram``). Without them the
    broker is exactly the plain one.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int = 9092,
        controller_port: int = 9093,
        heap_mb: int = 384,
        *,
        extra_listeners: Mapping[str, tuple[str, int]] | None = None,
        extra_properties: Mapping[str, str] | None = None,
        format_args: Sequence[str] = (),
    ) -> None:
        self.data_dir = data_dir
        self.port = port
        self.controller_port = controller_port
        self.heap_mb = heap_mb
        self.extra_listeners = dict(extra_listeners or {})
        self.extra_properties = dict(extra_properties or {})
        self.format_args = tuple(format_args)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "broker.log"

    def _write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "server.properties"
        extra = "".join(f",{name}://127.0.0.1:{port}" for name, (_, port) in self.extra_listeners.items())
        protocols = "".join(f",{name}:{protocol}" for name, (protocol, _) in self.extra_listeners.items())
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}{extra}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}{extra}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": f"PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT{protocols}",
            "log.dirs": str(self.data_dir / "logs"),
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "group.initial.rebalance.delay.ms": "0",
            "group.consumer.min.session.timeout.ms": "1000",
            "group.min.session.timeout.ms": "1000",
            "log.segment.bytes": "16777216",
            **self.extra_properties,
        }
        config.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))
        (self.data_dir / "log4j2.properties").write_text(
            "rootLogger.level=WARN\n"
            "rootLogger.appenderRef.stdout.ref=STDOUT\n"
            "appender.stdout.type=Console\n"
            "appender.stdout.name=STDOUT\n"
            "appender.stdout.layout.type=PatternLayout\n"
            "appender.stdout.layout.pattern=[%d] %p %m (%c)%n\n"
        )
        return config

    def _java(self, main_class: str, *args: str, heap: bool = False) -> list[str]:
        command = ["java"]
        if heap:
            command += [f"-Xms{self.heap_mb}m", f"-Xmx{self.heap_mb}m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"]
        command += [
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "-cp", str(LIB_DIR / "*"), main_class, *args,
        ]
        return command

    def format_storage(self, config: Path) -> None:
        """Format the log directory once; a formatted one is kept, with its data."""
        if (self.data_dir / "logs" / "meta.properties").exists():
            return
        encoded = cluster_id()
        result = subprocess.run(  # nosec B603  # the JDK's java with an argument list built here, no shell
            self._java("kafka.tools.StorageTool", "format", "-t", encoded, "-c", str(config), *self.format_args),
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise LocalKafkaError(f"kafka-storage format failed: {result.stdout}{result.stderr}")

    def start(self, timeout: float = 60.0) -> "LocalKafka":
        fetch_artifacts()
        if _port_open(self.port):
            raise LocalKafkaError(f"port {self.port} is already in use; is another Kafka running?")
        config = self._write_config()
        self.format_storage(config)
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(  # nosec B603  # the JDK's java with an argument list built here, no shell
                self._java("kafka.Kafka", str(config), heap=True),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=die_with_parent,
            )
        self._await_ready(timeout)
        return self

    def _await_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise LocalKafkaError(f"Kafka exited with {self._process.returncode}; see {self.log_path}")
            if _port_open(self.port) and self._accepts_topics():
                return
            time.sleep(0.25)
        self.stop()
        raise LocalKafkaError(f"Kafka did not become ready in {timeout:.0f} s; see {self.log_path}")

    def _accepts_topics(self) -> bool:
        """Ready means able to place a topic: a restarted broker answers metadata some
        seconds before its controller unfences it (error 38 until then)."""
        async def probe() -> bool:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=2000)
            try:
                await admin.start()
                response = await admin.create_topics([NewTopic("deskstream-readiness-probe", 1, 1)], validate_only=True)
                return all(error[1] == 0 for error in response.topic_errors)
            except Exception:
                return False
            finally:
                await admin.close()

        return asyncio.run(probe())

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would (tests of durability use this)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def stop(self, grace: float = 20.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> "LocalKafka":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
