"""Each service runs as its own Kafka user with only the ACLs the prod overlay gives it
(`deskstream.topic_manifests.acl_rules`, rendered into deploy/overlays/prod/kafka-users.yaml),
on a broker that authorises every request (Kafka's StandardAuthorizer, nothing allowed
without an ACL): a chat contact still goes all the way from intake through the router
and the notifier back to the customer's page, and each user is refused what its
service never does, so that a compromised service can read no other's data
(docs/SECURITY.md).

A broker of this module's own: its PLAINTEXT listener (controller, readiness probe,
topic and ACL creation, the test's own reads) is the super user; the services connect
to a SASL_PLAINTEXT listener as SCRAM-SHA-512 users written into the metadata log at
format time. TLS is tested elsewhere (test_kafka_security_broker.py); here only who
may do what matters.
"""
from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError, TransactionalIdAuthorizationFailed
from aiokafka.protocol.admin import CreateAclsRequest

from deskstream.localkafka import LIB_DIR, LocalKafka, free_port
from deskstream.settings import KafkaSettings
from deskstream.topic_manifests import AclRule, acl_rules, kafka_user_name, topic_operations
from deskstream.topics import ACCESS, CHAT_OUTBOUND, NOTIFY_RECEIPTS, NOTIFY_REQUESTS, ROUTER_DISPATCH, TICKETS_EVENTS, changelog_topic, ensure_topics
from tests.harness import SERVICES, ServiceProcess, running, service_env, wait_for_events
from tests.integration.chat_client import ChatCustomer

pytestmark = pytest.mark.integration

ROSTER = Path(__file__).parent / "roster.json"
REFUSED_WITHIN = 30.0
# Kafka's wire codes (org.apache.kafka.common.acl and .resource).
RESOURCE_TYPES = {"topic": 2, "group": 3, "cluster": 4, "transactionalId": 5}
PATTERN_LITERAL, PATTERN_PREFIXED = 3, 4
OPERATIONS = {"Read": 3, "Write": 4, "Describe": 8, "IdempotentWrite": 12}
ALLOW = 3


class AclBroker:
    def __init__(self, broker: LocalKafka, services_port: int, passwords: dict[str, str]) -> None:
        self.broker = broker
        self.admin_bootstrap = broker.bootstrap
        self.services_bootstrap = f"127.0.0.1:{services_port}"
        self.passwords = passwords

    def env(self, service: str) -> dict[str, str]:
        user = kafka_user_name(service)
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.services_bootstrap,
            "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": user,
            "KAFKA_SASL_PASSWORD": self.passwords[user],
        }

    def settings(self, service: str) -> KafkaSettings:
        return KafkaSettings.from_env(self.env(service))


async def create_acls(bootstrap: str, principal: str, rules: list[AclRule]) -> None:
    """Each rule's operations for `principal`, with Kafka's CreateAcls request (the
    admin API `kafka-acls.sh` uses; aiokafka's admin client has no method for it)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for rule in rules:
            name = "kafka-cluster" if rule.resource == "cluster" else rule.name
            for operation in rule.operations:
                request = CreateAclsRequest(RESOURCE_TYPES[rule.resource], name,
                                            PATTERN_PREFIXED if rule.prefix else PATTERN_LITERAL,
                                            f"User:{principal}", "*", OPERATIONS[operation], ALLOW)
                response = await admin._send_request(request)
                for error_code, error_message in response.creation_responses:
                    assert error_code == 0, f"{rule}: {operation}: {error_message}"
    finally:
        await admin.close()


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclBroker]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and not any(LIB_DIR.glob("kafka_2.13-*.jar")):
        pytest.skip("needs the local Kafka's jars (make kafka-fetch) for a broker of its own with an authorizer")
    folder = tmp_path_factory.mktemp("acl-kafka")
    passwords = {kafka_user_name(service): secrets.token_urlsafe(24) for service in ACCESS}
    services_port = free_port()
    broker = LocalKafka(
        folder / "kafka", port=free_port(), controller_port=free_port(),
        extra_listeners={"SERVICES": ("SASL_PLAINTEXT", services_port)},
        extra_properties={
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            # The plaintext listener and the controller (this test, the broker itself).
            "super.users": "User:ANONYMOUS",
            "allow.everyone.if.no.acl.found": "false",
            "listener.name.services.sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "listener.name.services.scram-sha-512.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        },
        format_args=tuple(argument for user, password in passwords.items()
                          for argument in ("--add-scram", f"SCRAM-SHA-512=[name={user},password={password}]")),
    )
    broker.start(timeout=90)
    try:
        asyncio.run(ensure_topics(KafkaSettings.from_env({"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap})))
        for service in ACCESS:
            asyncio.run(create_acls(broker.bootstrap, kafka_user_name(service), acl_rules(service)))
        yield AclBroker(broker, services_port, passwords)
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def services_as_their_own_users(acl_broker: AclBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServiceProcess]]:
    data_dir = tmp_path_factory.mktemp("acl-services")
    env = service_env(acl_broker.services_bootstrap, data_dir, ROUTER_ROSTER_PATH=str(ROSTER), NOTIFIER_QUIET_HOURS="off",
                      NOTIFIER_RATES="off", IMAP_HOST="", SMTP_HOST="", TWILIO_AUTH_TOKEN="")
    processes = {name: ServiceProcess(name, {**env, **acl_broker.env(name)}, data_dir) for name in SERVICES}
    with running(*processes.values()):
        yield processes


async def test_a_chat_contact_goes_round_with_each_service_as_its_own_user(acl_broker, services_as_their_own_users):
    intake = services_as_their_own_users["intake"]
    async with aiohttp.ClientSession() as http:
        customer = ChatCustomer(http, intake.url, name="Lucía", language="es")
        await customer.open()
        answer = await customer.say("No tengo internet desde esta mañana en casa")
        ticket = answer["message_id"]
        (acknowledgement,) = await customer.messages(1, timeout=60)
    assert acknowledgement["text"], "the notifier's acknowledgement reached the page through chat.outbound"
    created = await wait_for_events(acl_broker.admin_bootstrap, TICKETS_EVENTS,
                                    lambda event: event.type == "ticket.created" and event.data["contact_id"] == ticket, 1)
    ticket_id = created[0].data["ticket_id"]
    await wait_for_events(acl_broker.admin_bootstrap, TICKETS_EVENTS,
                          lambda event: event.type == "ticket.classified" and event.data["ticket_id"] == ticket_id, 1)
    for process in services_as_their_own_users.values():
        log = process.log_path.read_text()
        assert "AuthorizationFailed" not in log and "not authorized" not in log.lower(), f"{process.name}:\n{process.log_tail()}"


async def visible(settings: KafkaSettings) -> set[str]:
    """The topics these credentials may describe: the broker leaves the others out of
    its metadata answers (Read and Write each imply Describe, so a topic missing here
    can be neither read nor written)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, **settings.client_options(), enable_auto_commit=False)
    await consumer.start()
    try:
        return await consumer.topics()
    finally:
        await consumer.stop()


async def refused_reading(settings: KafkaSettings, topic: str) -> None:
    if topic not in await visible(settings):
        return
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, **settings.client_options(), enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        with pytest.raises(TopicAuthorizationFailedError):
            deadline = time.monotonic() + REFUSED_WITHIN
            while time.monotonic() < deadline:
                await consumer.getmany(timeout_ms=500)
    finally:
        await consumer.stop()


async def refused_writing(settings: KafkaSettings, topic: str) -> None:
    if topic not in await visible(settings):
        return
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, **settings.client_options(), enable_idempotence=True)
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await asyncio.wait_for(producer.send_and_wait(topic, b"forged", key=b"forged"), REFUSED_WITHIN)
    finally:
        await producer.stop()


async def test_each_user_sees_only_its_own_service_s_topics(acl_broker, services_as_their_own_users):
    for service in ACCESS:
        assert await visible(acl_broker.settings(service)) == set(topic_operations(service)), service


async def test_no_service_reads_what_another_keeps(acl_broker, services_as_their_own_users):
    # Intake takes contacts; the addresses the notifier sends to are not its business.
    await refused_reading(acl_broker.settings("intake"), NOTIFY_REQUESTS)
    # The router never reads the notifier's deliveries, nor feedback the router's tickets.
    await refused_reading(acl_broker.settings("router"), changelog_topic("notifier", "deliveries"))
    await refused_reading(acl_broker.settings("feedback"), changelog_topic("router", "tickets"))
    await refused_reading(acl_broker.settings("feedback"), CHAT_OUTBOUND)


async def test_no_service_writes_what_it_never_writes(acl_broker, services_as_their_own_users):
    # Only the notifier records what a send did, only the router decides who takes a
    # ticket, and only intake's hop keeps the threads.
    await refused_writing(acl_broker.settings("intake"), NOTIFY_RECEIPTS)
    await refused_writing(acl_broker.settings("feedback"), CHAT_OUTBOUND)
    await refused_writing(acl_broker.settings("notifier"), ROUTER_DISPATCH)
    await refused_writing(acl_broker.settings("router"), changelog_topic("intake", "threads"))


async def test_a_service_cannot_take_another_s_consumer_group_or_transactional_id(acl_broker, services_as_their_own_users):
    settings = acl_broker.settings("feedback")
    consumer = AIOKafkaConsumer(TICKETS_EVENTS, bootstrap_servers=settings.bootstrap, **settings.client_options(),
                                group_id="deskstream-router.triage", enable_auto_commit=False)
    with pytest.raises(GroupAuthorizationFailedError):
        try:
            await asyncio.wait_for(consumer.start(), REFUSED_WITHIN)
            await asyncio.wait_for(consumer.getmany(timeout_ms=5000), REFUSED_WITHIN)
        finally:
            await consumer.stop()
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, **settings.client_options(),
                                transactional_id="deskstream-router.dispatch-router.dispatch-0")
    with pytest.raises(TransactionalIdAuthorizationFailed):
        try:
            await asyncio.wait_for(producer.start(), REFUSED_WITHIN)
        finally:
            await producer.stop()
