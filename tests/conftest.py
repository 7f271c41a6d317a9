"""Fixtures shared by the whole suite.

`kafka` is the cluster the integration tests use: the one named by
KAFKA_BOOTSTRAP_SERVERS, or else a local Apache Kafka started once per run on free
ports and stopped (with its data removed) when the run ends.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from deskstream.localkafka import LocalKafka, free_port


class KafkaCluster:
    """What a test needs to know about the cluster, and (locally) how to crash it."""

    def __init__(self, bootstrap: str, local: LocalKafka | None) -> None:
        self.bootstrap = bootstrap
        self.local = local


@pytest.fixture(scope="session")
def kafka() -> Iterator[KafkaCluster]:
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        yield KafkaCluster(given, None)
        return
    data_dir = Path(tempfile.mkdtemp(prefix="deskstream-kafka-"))
    broker = LocalKafka(data_dir, port=free_port(), controller_port=free_port())
    broker.start()
    try:
        yield KafkaCluster(broker.bootstrap, broker)
    finally:
        broker.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def topics(kafka: KafkaCluster) -> None:
    """deskstream's topics, created on the test cluster before any service runs."""
    import asyncio

    from deskstream.settings import KafkaSettings
    from deskstream.topics import ensure_topics

    asyncio.run(ensure_topics(KafkaSettings.from_env({"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap})))


@pytest.fixture(scope="session")
def dovecot():
    """A real IMAP server (Debian's Dovecot) on loopback: the support mailbox. In a
    folder of its own, not pytest's (0700 under root, which Dovecot's unprivileged
    processes cannot enter)."""
    from tests.mailserver import temporary_dovecot

    with temporary_dovecot() as server:
        yield server


@pytest.fixture(scope="session")
def smtp_server():
    """A real SMTP server on loopback that keeps every mail the notifier sends."""
    from tests.mailserver import SmtpCapture

    with SmtpCapture() as server:
        yield server


@pytest.fixture(scope="session")
def twilio_api():
    """A local server playing Twilio's Messages API (tests/twilio_api.py): what the
    notifier sends by SMS or WhatsApp lands there, and it posts the status callbacks."""
    from tests.twilio_api import TwilioApi

    with TwilioApi() as server:
        yield server


SUPPORT_ADDRESS = "soporte@deskstream.test"
OPS_TOKEN = "integration-ops-token-0123456789abcdef"


@pytest.fixture(scope="session")
def pipeline_services(kafka: KafkaCluster, topics: None, dovecot, smtp_server, twilio_api, tmp_path_factory: pytest.TempPathFactory):
    """All four services running against the test cluster, for the whole session,
    intake reading the Dovecot mailbox and taking Twilio's webhooks, the notifier
    sending through the SMTP server and the Twilio stand-in."""
    from tests.harness import SERVICES, ServiceProcess, service_env
    from tests.twilio_api import SUPPORT_NUMBER

    data_dir = tmp_path_factory.mktemp("services")
    env = service_env(
        kafka.bootstrap, data_dir, ROUTER_ROSTER_PATH=str(Path(__file__).parent / "integration" / "roster.json"),
        IMAP_HOST=dovecot.host, IMAP_PORT=str(dovecot.port), IMAP_SSL="false", IMAP_USER=dovecot.user,
        IMAP_PASSWORD=dovecot.password, IMAP_POLL_SECONDS="5", MAIL_OWN_ADDRESSES=SUPPORT_ADDRESS,
        SMTP_HOST=smtp_server.host, SMTP_PORT=str(smtp_server.port), SMTP_STARTTLS="false", MAIL_FROM=SUPPORT_ADDRESS,
        MAIL_FROM_NAME="Soporte", MAIL_MESSAGE_ID_DOMAIN="deskstream.test",
        TWILIO_ACCOUNT_SID=twilio_api.account_sid, TWILIO_AUTH_TOKEN=twilio_api.auth_token, TWILIO_SMS_FROM=SUPPORT_NUMBER,
        TWILIO_API_URL=twilio_api.url, NOTIFIER_BACKOFF_SECONDS="0.05", NOTIFIER_QUIET_HOURS="off", NOTIFIER_RATES="off",
        NOTIFIER_OPS_TOKEN=OPS_TOKEN, FEEDBACK_SURVEY_DELAY_SECONDS="2", FEEDBACK_SURVEY_SECRET="integration-survey-secret-0123456789abcdef",
    )
    env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{env['INTAKE_HTTP_PORT']}"
    env["NOTIFIER_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{env['NOTIFIER_HTTP_PORT']}"
    env["FEEDBACK_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{env['FEEDBACK_HTTP_PORT']}"
    running = {name: ServiceProcess(name, env, data_dir).start() for name in SERVICES}
    try:
        for service in running.values():
            service.wait_ready()
        yield running
    finally:
        for service in running.values():
            service.stop()
