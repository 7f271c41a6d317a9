"""The topics deskstream reads and writes, and their creation.

Faust creates its own changelog topics but not its source topics, and a topic that a
producer auto-creates gets one partition, which breaks co-partitioning: so every
topic here is created, with its partition count and configs, before any service runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from deskstream.settings import KafkaSettings

TOPIC_ALREADY_EXISTS = 36
WEEK_MS = 7 * 24 * 3600 * 1000


class TopicCreationError(RuntimeError):
    """The cluster refused to create a topic for a reason other than its existence."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    key: str
    carries: str
    configs: dict[str, str] = field(default_factory=dict)


INTAKE_RAW = "intake.raw"
TICKETS_EVENTS = "tickets.events"
AGENTS_EVENTS = "agents.events"
INCIDENTS_EVENTS = "incidents.events"
NOTIFY_REQUESTS = "notify.requests"
NOTIFY_RECEIPTS = "notify.receipts"
CHAT_OUTBOUND = "chat.outbound"
ROUTER_DISPATCH = "router.dispatch"
SURGE_WATCH = "notifier.surge_watch"
FEEDBACK_SURVEYS = "feedback.surveys"
DEADLETTER = "deadletter"

_KEEP_WEEKS = {"retention.ms": str(4 * WEEK_MS)}

TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(INTAKE_RAW, "channel thread key", "contact.received, and survey.opened from feedback", _KEEP_WEEKS),
    TopicSpec(TICKETS_EVENTS, "ticket id", "the public ticket lifecycle", _KEEP_WEEKS),
    TopicSpec(AGENTS_EVENTS, "agent id", "agent presence and capacity", _KEEP_WEEKS),
    TopicSpec(INCIDENTS_EVENTS, "incident id", "incident lifecycle", _KEEP_WEEKS),
    TopicSpec(NOTIFY_REQUESTS, "recipient", "outbound messages to send, and recipients' consent", _KEEP_WEEKS),
    TopicSpec(NOTIFY_RECEIPTS, "recipient", "what each send attempt did", _KEEP_WEEKS),
    TopicSpec(CHAT_OUTBOUND, "chat session id", "messages for chat sessions, pushed by intake", _KEEP_WEEKS),
    TopicSpec(ROUTER_DISPATCH, "the constant `dispatch`", "the router's own queue of decisions: one partition, one decider", _KEEP_WEEKS),
    TopicSpec(SURGE_WATCH, "the constant `surges`", "every new ticket's skill and region, counted by one surge watcher", _KEEP_WEEKS),
    TopicSpec(FEEDBACK_SURVEYS, "customer id", "surveys that are due, decided per customer (one per period)", _KEEP_WEEKS),
    TopicSpec(DEADLETTER, "origin", "rejected input, its origin and the reason", {"retention.ms": str(8 * WEEK_MS)}),
)


# Each service's tables, whose compacted changelog topics are created here too: a hop
# writes a table's changes to the changelog partition numbered like the input
# partition, so the changelog must exist, with the same partition count, beforehand.
TABLES: dict[str, tuple[str, ...]] = {
    "intake": ("threads", "chat_outboxes"),
    "router": ("tickets", "agents", "customers", "handling", "conversations"),
    "notifier": ("contacts", "deliveries", "consents", "incidents", "audience", "subscriptions", "surges"),
    "feedback": ("ticket_facts", "surveys", "customers", "incidents"),
}


@dataclass(frozen=True, slots=True)
class Access:
    """The topics a service reads and writes, besides its own tables' changelogs."""

    reads: tuple[str, ...]
    writes: tuple[str, ...]


# What each service may do on the cluster, and no more: the ACLs of its own Kafka user
# (deploy/overlays/prod/kafka-users.yaml, rendered from this), so that a compromised
# service can neither read the others' topics and tables nor write what it never
# writes. tests/deploy/test_kafka_users.py reads the services' code and requires that
# this map says exactly what the code does. Every service writes `deadletter`: its
# hops dead-letter what they cannot read (deskstream/processor.py).
ACCESS: dict[str, Access] = {
    "intake": Access(
        reads=(INTAKE_RAW, CHAT_OUTBOUND),
        writes=(INTAKE_RAW, TICKETS_EVENTS, NOTIFY_REQUESTS, DEADLETTER),
    ),
    "router": Access(
        reads=(TICKETS_EVENTS, AGENTS_EVENTS, ROUTER_DISPATCH),
        writes=(TICKETS_EVENTS, AGENTS_EVENTS, ROUTER_DISPATCH, DEADLETTER),
    ),
    "notifier": Access(
        reads=(TICKETS_EVENTS, NOTIFY_REQUESTS, INCIDENTS_EVENTS, SURGE_WATCH),
        # intake.raw and tickets.events: the erasure API's request and public notice
        # (services/notifier/erasure_api.py)
        writes=(INTAKE_RAW, TICKETS_EVENTS, NOTIFY_REQUESTS, NOTIFY_RECEIPTS, CHAT_OUTBOUND, INCIDENTS_EVENTS, SURGE_WATCH,
                DEADLETTER),
    ),
    "feedback": Access(
        reads=(TICKETS_EVENTS, FEEDBACK_SURVEYS, INCIDENTS_EVENTS),
        writes=(TICKETS_EVENTS, FEEDBACK_SURVEYS, INTAKE_RAW, NOTIFY_REQUESTS, DEADLETTER),
    ),
}


def app_id(service: str) -> str:
    """The Faust app id of a service, and the prefix of its hops' consumer groups."""
    return f"deskstream-{service}"


def changelog_topic(service: str, table: str) -> str:
    return f"{app_id(service)}-{table}-changelog"


CHANGELOGS: tuple[TopicSpec, ...] = tuple(
    TopicSpec(changelog_topic(service, table), "table key", f"changelog of {service}'s {table} table", {"cleanup.policy": "compact"})
    for service, tables in TABLES.items()
    for table in tables
)


HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS


def topic_configs(spec: TopicSpec, kafka: KafkaSettings) -> dict[str, str]:
    """A topic's configs with this deployment's retention (KAFKA_EVENT_RETENTION_DAYS,
    KAFKA_DEADLETTER_RETENTION_DAYS, KAFKA_CHANGELOG_COMPACTION_HOURS). A changelog
    keeps only the latest value per key, but Kafka compacts only closed segments:
    `max.compaction.lag.ms` bounds how long a replaced or deleted (erased) value stays
    readable, and `delete.retention.ms` how long the tombstone itself (its key) does."""
    if spec.configs.get("cleanup.policy") == "compact":
        lag = str(int(kafka.changelog_compaction_hours * HOUR_MS))
        return {**spec.configs, "max.compaction.lag.ms": lag, "delete.retention.ms": lag}
    days = kafka.deadletter_retention_days if spec.name == DEADLETTER else kafka.event_retention_days
    return {**spec.configs, "retention.ms": str(int(days * DAY_MS))}


async def ensure_topics(kafka: KafkaSettings, specs: tuple[TopicSpec, ...] = TOPICS + CHANGELOGS) -> list[str]:
    """Create the topics that do not exist yet, with this deployment's retention
    (`topic_configs`); return the names created. Existing topics keep their configs."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap, **kafka.client_options(), client_id="deskstream-topics")
    try:
        await admin.start()  # inside: a refused start (wrong password) is closed too
        response = await admin.create_topics(
            [NewTopic(spec.name, kafka.partitions, kafka.replication_factor, topic_configs=topic_configs(spec, kafka))
             for spec in specs]
        )
    finally:
        await admin.close()
    created = []
    for name, code, message in (error[:3] for error in response.topic_errors):
        if code == 0:
            created.append(name)
        elif code != TOPIC_ALREADY_EXISTS:
            raise TopicCreationError(f"{name}: error {code} {message}")
    return created
