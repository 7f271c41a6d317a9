"""deskstream's Kafka clients on a broker that demands TLS and SASL, configured only
through the KAFKA_* environment, as a deployment is.

A broker of this module's own (the shared one is plain): beside its PLAINTEXT
listener (readiness probe, controller) it has a SASL_SSL listener taking SASL PLAIN
(users in the listener's JAAS config) and SCRAM-SHA-512 (a user written into the
metadata log by `kafka-storage format --add-scram`), and an SSL listener that requires
a client certificate (mutual TLS). Its certificate and the clients' come from a CA made
for the run with `openssl`.

Each kind of client deskstream makes goes through the secure port: the admin client
(ensure_topics), the publisher's idempotent producer, a hop's group consumer,
transactional producers and restore reader (a Processor), and a TableReplica that
reads back what the hop committed. A wrong password, the plaintext default, a
TLS client that does not trust the broker's CA, and an SSL client without its
certificate are each turned away at once, with the reason in aiokafka's log and no
password in any log line.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator, TypeVar

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaConnectionError

from deskstream.contract import default_contract
from deskstream.events import Event
from deskstream.localkafka import LIB_DIR, LocalKafka, free_port
from deskstream.metrics import ServiceMetrics
from deskstream.pipeline import Publisher, deadletter_event
from deskstream.processor import Processor, Step
from deskstream.replica import TableReplica
from deskstream.settings import KafkaSettings
from deskstream.topics import CHANGELOGS, DEADLETTER, TOPICS, TopicSpec, ensure_topics
from tests.tls_files import Issued, TestCA, make_ca

pytestmark = pytest.mark.integration

T = TypeVar("T")

PLAIN_USER, PLAIN_PASSWORD = "deskstream", "plain-Pa55word-4-tests"
SCRAM_USER, SCRAM_PASSWORD = "deskstream-scram", "scram-Pa55word-4-tests"
WRONG_PASSWORD = "wrong-Pa55word-4-tests"
REFUSAL_SECONDS = 30  # a refused client must say so well within this
TEST_SECONDS = 120


@dataclass(frozen=True)
class SecureBroker:
    sasl_ssl: str  # bootstrap of the SASL_SSL listener
    mutual_tls: str  # bootstrap of the SSL listener that wants a client certificate
    ca: TestCA
    client: Issued
    folder: Path


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and not any(LIB_DIR.glob("kafka_2.13-*.jar")):
        pytest.skip("needs the local Kafka's jars (make kafka-fetch) for a broker with secure listeners")
    folder = tmp_path_factory.mktemp("secure-kafka")
    ca = make_ca(folder / "tls")
    broker_cert = ca.issue("broker")  # localhost and 127.0.0.1: the hostname check stays on
    sasl_port, mtls_port = free_port(), free_port()
    jaas_plain = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
                  f'user_{PLAIN_USER}="{PLAIN_PASSWORD}";')
    keystore = {"ssl.keystore.type": "PEM", "ssl.keystore.location": str(broker_cert.keystore)}
    properties = {
        "listener.name.secure.sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512",
        "listener.name.secure.plain.sasl.jaas.config": jaas_plain,
        "listener.name.secure.scram-sha-512.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        **{f"listener.name.secure.{key}": value for key, value in keystore.items()},
        **{f"listener.name.mtls.{key}": value for key, value in keystore.items()},
        "listener.name.mtls.ssl.truststore.type": "PEM",
        "listener.name.mtls.ssl.truststore.location": str(ca.certfile),
        "listener.name.mtls.ssl.client.auth": "required",
    }
    broker = LocalKafka(
        folder / "kafka", port=free_port(), controller_port=free_port(),
        extra_listeners={"SECURE": ("SASL_SSL", sasl_port), "MTLS": ("SSL", mtls_port)},
        extra_properties=properties,
        format_args=("--add-scram", f"SCRAM-SHA-512=[name={SCRAM_USER},password={SCRAM_PASSWORD}]"),
    )
    broker.start(timeout=90)
    try:
        yield SecureBroker(f"127.0.0.1:{sasl_port}", f"127.0.0.1:{mtls_port}", ca, ca.issue("client", hosts=(), ips=()), folder)
    finally:
        broker.stop()


def sasl_env(broker: SecureBroker, mechanism: str, password: str | None = None) -> dict[str, str]:
    """The environment a deployment sets for SASL over TLS; the PLAIN user's password
    comes from a mounted file (with the newline `echo` leaves), SCRAM's inline."""
    user, right = (PLAIN_USER, PLAIN_PASSWORD) if mechanism == "PLAIN" else (SCRAM_USER, SCRAM_PASSWORD)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": broker.sasl_ssl,
        "KAFKA_TOPIC_PARTITIONS": "2",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": mechanism,
        "KAFKA_SASL_USERNAME": user,
        "KAFKA_SSL_CAFILE": str(broker.ca.certfile),
    }
    if mechanism == "PLAIN" and password is None:
        secret = broker.folder / "sasl-password"
        secret.write_text(right + "\n")
        env["KAFKA_SASL_PASSWORD_FILE"] = str(secret)
    else:
        env["KAFKA_SASL_PASSWORD"] = password or right
    return env


async def bounded(work: Awaitable[T], seconds: float = TEST_SECONDS) -> T:
    return await asyncio.wait_for(work, seconds)


async def eventually(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        await asyncio.sleep(0.1)


async def read_back(settings: KafkaSettings, topic: str, key: bytes, timeout: float = 30) -> bytes:
    """The value of the first record with `key` on `topic`, read by a consumer built
    from the settings (no group: every partition, from the start)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.bootstrap, **settings.client_options(),
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if record.key == key and record.value is not None:
                        return record.value
        raise AssertionError(f"no record {key!r} on {topic} within {timeout:.0f} s")
    finally:
        await consumer.stop()


def remember_origin(event: Event, step: Step) -> None:
    step.table("threads")[event.id] = {"origin": event.data["origin"], "reason": event.data["reason"]}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
async def test_every_kind_of_client_works_over_sasl_ssl(secure_broker, mechanism, caplog):
    settings = KafkaSettings.from_env(sasl_env(secure_broker, mechanism))
    slug = mechanism.lower().replace("-", "")

    async def scenario() -> None:
        created = await ensure_topics(settings)  # the first case creates them, the second finds them all
        assert set(created) <= {spec.name for spec in TOPICS + CHANGELOGS}
        assert await ensure_topics(settings) == []
        assert await ensure_topics(settings, (TopicSpec(f"security.{slug}", "k", "a topic of this test"),)) == [f"security.{slug}"]

        publisher = Publisher(settings, client_id=f"security-{slug}")
        hop = Processor(
            name="security", group_id=f"deskstream-intake.security-{slug}", service="intake", source=DEADLETTER,
            handler=remember_origin, tables=("threads",), kafka=settings, contract=default_contract(),
            metrics=ServiceMetrics("intake"), deadletter=functools.partial(deadletter_event, "deskstream/intake"),
        )
        replica = TableReplica(settings, "intake", "threads")
        event = deadletter_event("deskstream/intake", f"security.{slug}", f"sent over SASL_SSL with {mechanism}", slug.encode())
        try:
            await publisher.start()
            await publisher.send_and_wait(DEADLETTER, f"security.{slug}", event.encode())
            await hop.start()
            await replica.start()
            # the hop's consumer, fencing producers and restore reader all connected,
            # and what its transaction wrote is read back by the replica
            await eventually(hop.ready, "the hop joined its group and restored its partitions")
            await eventually(lambda: replica.get(event.id) is not None, "the hop's table row reached the replica")
            assert replica.get(event.id) == {"origin": f"security.{slug}", "reason": f"sent over SASL_SSL with {mechanism}"}
            assert await read_back(settings, DEADLETTER, f"security.{slug}".encode()) == event.encode()
        finally:
            for service in (replica, hop, publisher):
                await service.stop()

    with caplog.at_level(logging.DEBUG):
        await bounded(scenario())
    assert_no_password_logged(caplog)


async def refusal(settings: KafkaSettings, caplog: pytest.LogCaptureFixture) -> str:
    """Try the admin client and the publisher with `settings`: both must be refused
    within REFUSAL_SECONDS. Returns what aiokafka logged as the reason."""
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        started = time.monotonic()
        with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
            await asyncio.wait_for(ensure_topics(settings, (TopicSpec("security.refused", "k", "never created"),)), REFUSAL_SECONDS)
        publisher = Publisher(settings, client_id="security-refused")
        with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
            await asyncio.wait_for(publisher.start(), REFUSAL_SECONDS)
        await publisher.stop()
        assert time.monotonic() - started < REFUSAL_SECONDS
    assert_no_password_logged(caplog)
    return "\n".join(record.getMessage() for record in caplog.records if record.name.startswith("aiokafka"))


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
async def test_a_wrong_password_is_refused_at_once(secure_broker, mechanism, caplog):
    settings = KafkaSettings.from_env(sasl_env(secure_broker, mechanism, password=WRONG_PASSWORD))
    reason = await refusal(settings, caplog)
    assert "SaslAuthenticationFailed" in reason
    # aiokafka logged the exchange at DEBUG (caught here), with the bytes redacted
    assert re.search(r"SaslAuthenticateRequest_v\d+\(<redacted>\)", reason)


async def test_the_plaintext_default_cannot_talk_to_the_secure_port(secure_broker, caplog):
    settings = KafkaSettings.from_env({"KAFKA_BOOTSTRAP_SERVERS": secure_broker.sasl_ssl})
    assert settings.client_options() == {"security_protocol": "PLAINTEXT"}
    reason = await refusal(settings, caplog)
    assert "closed" in reason


async def test_a_broker_whose_ca_is_not_trusted_is_refused(secure_broker, caplog):
    env = sasl_env(secure_broker, "PLAIN")
    del env["KAFKA_SSL_CAFILE"]  # the system's CAs, which never signed the test broker
    reason = await refusal(KafkaSettings.from_env(env), caplog)
    assert "CERTIFICATE_VERIFY_FAILED" in reason


async def test_mutual_tls_needs_the_client_certificate(secure_broker, caplog):
    env = {"KAFKA_BOOTSTRAP_SERVERS": secure_broker.mutual_tls, "KAFKA_SECURITY_PROTOCOL": "SSL",
           "KAFKA_SSL_CAFILE": str(secure_broker.ca.certfile)}
    with_cert = KafkaSettings.from_env({**env, "KAFKA_SSL_CERTFILE": str(secure_broker.client.certfile),
                                        "KAFKA_SSL_KEYFILE": str(secure_broker.client.keyfile)})

    async def scenario() -> None:
        assert await ensure_topics(with_cert, (TopicSpec("security.mtls", "k", "a topic of this test"),)) == ["security.mtls"]
        publisher = Publisher(with_cert, client_id="security-mtls")
        await publisher.start()
        try:
            await publisher.send_and_wait("security.mtls", "k", b"over mutual TLS")
        finally:
            await publisher.stop()
        assert await read_back(with_cert, "security.mtls", b"k") == b"over mutual TLS"

    await bounded(scenario())
    await refusal(KafkaSettings.from_env(env), caplog)


def assert_no_password_logged(caplog: pytest.LogCaptureFixture) -> None:
    logged: list[Any] = [record.getMessage() for record in caplog.records]
    logged += [repr(record.__dict__) for record in caplog.records]
    for password in (PLAIN_PASSWORD, SCRAM_PASSWORD, WRONG_PASSWORD):
        assert not [line for line in logged if password in line], f"{password} was logged"
