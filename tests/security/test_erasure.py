"""A customer's erasure through the real services (issue 12, item 4; docs/SECURITY.md).

Customer X writes by chat (leaving an e-mail address and a phone number), by SMS and by
e-mail with an attachment; customer Y does the same. Once their tickets are held by the
router and their acknowledgements delivered, X is erased with `deskstream erase-customer`
while the router and feedback are stopped (the erasure waits in Kafka, in the hops'
transactions, and is carried out when they come back). Then every store is searched:
every table (each compacted changelog read to its end, latest value per key: what any
worker restores), the attachment store, the agent API that the console pages show, and
the chat page's WebSocket. None may hold X's name, address, phone number or words;
Y's data must be whole; `customer.erased` must be on tickets.events. The event topics,
append-only, keep X's records until their retention (README, "Erasure and retention"):
the test names which ones and requires that no compacted topic is among them.

On a broker of its own, with its own mail, SMTP and Twilio stand-ins: an erasure is
broadcast to every partition, and the shared services of the session must not see it.
Its topics are created by `ensure_topics` with KAFKA_CHANGELOG_COMPACTION_HOURS of a few
seconds, so that the test can also watch the log cleaner remove the erased values from
the changelogs themselves, not only from their latest state.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Iterator

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from deskstream.localkafka import LocalKafka, free_port
from deskstream.settings import KafkaSettings
from deskstream.topics import CHANGELOGS, TICKETS_EVENTS, TOPICS, ensure_topics
from deskstream.customers import customer_id
from tests.agent_api import AgentApi
from tests.channels import SUPPORT_ADDRESS, ChatSession, Customers, channel_env
from tests.harness import ServiceProcess, read_topic, wait_for_events
from tests.mailserver import Dovecot, SmtpCapture, temporary_dovecot
from tests.twilio_api import TwilioApi

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
OPS_TOKEN = "erasure-ops-token-0123456789abcdef"
SUPERVISOR = "integration-token-sam-0123456789abcdef"


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    phone: str  # E.164, as Twilio writes the sender
    typed_phone: str  # as the customer typed it on the chat page
    marker: str  # in every word they write

    @property
    def needles(self) -> list[str]:
        """What must not be found anywhere once they are erased (compared in lower case)."""
        digits = self.phone.removeprefix("+34")
        return [self.name.split()[0], self.name.split()[1], self.email, self.email.split("@")[0], digits,
                self.typed_phone, self.marker]


def person(first: str, last: str, number: str) -> Person:
    tag = uuid.uuid4().hex[:6]
    return Person(f"{first} {last}{tag}", f"{first.lower()}.{last.lower()}{tag}@example.org", f"+34{number}",
                  f"{number[:3]} {number[3:5]} {number[5:7]} {number[7:]}", f"MARK{first.upper()}{tag}")


X = person("Ximena", "Quintanilla", "611" + str(uuid.uuid4().int)[:6])
Y = person("Yolanda", "Perennia", "622" + str(uuid.uuid4().int)[:6])


def found_in(text: str, who: Person) -> list[str]:
    lowered = text.lower()
    return [needle for needle in who.needles if needle.lower() in lowered]


class Stack:
    """A broker, the channels' far ends and the four services, all the test's own."""

    def __init__(self, kafka, dovecot: Dovecot, smtp: SmtpCapture, twilio: TwilioApi, work: Path) -> None:
        self.kafka, self.dovecot, self.smtp, self.twilio, self.work = kafka, dovecot, smtp, twilio, work
        self.env = channel_env(kafka.bootstrap, work, dovecot, smtp, twilio, IMAP_POLL_SECONDS="1",
                               NOTIFIER_OPS_TOKEN=OPS_TOKEN, NOTIFIER_BACKOFF_SECONDS="0.05", FEEDBACK_SURVEY_DELAY_SECONDS="1",
                               FEEDBACK_SURVEY_SECRET="erasure-survey-secret-0123456789abcdef")
        self.env.update(LOG_LEVEL="info", ROUTER_ROSTER_PATH=str(ROOT / "tests" / "integration" / "roster.json"))
        self.services = {name: ServiceProcess(name, self.env, work) for name in ("intake", "router", "notifier", "feedback")}

    @property
    def attachments(self) -> Path:
        return self.work / "intake" / "attachments"


COMPACTION_HOURS = 3 / 3600  # the changelogs' max.compaction.lag.ms and delete.retention.ms: 3 s


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    broker_dir = tmp_path_factory.mktemp("erasure-kafka")
    kafka = LocalKafka(broker_dir, port=free_port(), controller_port=free_port()).start()
    try:
        asyncio.run(ensure_topics(KafkaSettings.from_env({"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
                                                          "KAFKA_CHANGELOG_COMPACTION_HOURS": str(COMPACTION_HOURS)})))
        yield from services_on(kafka, tmp_path_factory)
    finally:
        kafka.stop()


def services_on(kafka: LocalKafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with temporary_dovecot() as dovecot, SmtpCapture() as smtp, TwilioApi() as twilio:
        built = Stack(kafka, dovecot, smtp, twilio, tmp_path_factory.mktemp("erasure"))
        try:
            for service in built.services.values():
                service.start()
            for service in built.services.values():
                service.wait_ready()
            yield built
        finally:
            for service in built.services.values():
                service.stop()


def mail_with_attachment(who: Person, text: str, attachment: bytes) -> bytes:
    message = EmailMessage()
    message["From"] = f"{who.name} <{who.email}>"
    message["To"] = SUPPORT_ADDRESS
    message["Subject"] = f"Factura {who.marker}"
    message["Message-ID"] = f"<{uuid.uuid4().hex}@example.org>"
    message.set_content(text)
    message.add_attachment(attachment, maintype="application", subtype="pdf", filename=f"factura-{who.marker}.pdf")
    return message.as_bytes(policy=policy.SMTP)


async def chat_as(customers: Customers, session: ChatSession, who: Person, text: str) -> None:
    """The chat page's message, with the name, address and number the customer left."""
    assert customers.http is not None
    body = {"session_id": session.session_id, "client_message_id": uuid.uuid4().hex, "text": text,
            "customer": {"name": who.name, "email": who.email, "phone": who.typed_phone, "language": "es"}}
    async with customers.http.post(f"{customers.intake_url}/api/chat/messages", json=body,
                                   headers={"Authorization": f"Bearer {session.token}"}) as response:
        assert response.status == 202, await response.text()


async def write_to_support(stack: Stack, customers: Customers, who: Person) -> tuple[ChatSession, bytes]:
    session = await customers.open_chat()
    await chat_as(customers, session, who, f"Hola, soy {who.name}. Mi router no va ({who.marker} chat). Llamadme al {who.typed_phone}.")
    await customers.sms(who.phone, f"Sigo sin internet, {who.marker} sms. Soy {who.name}.")
    attachment = f"%PDF-1.4 factura de {who.name} {who.marker} {uuid.uuid4().hex}".encode()
    stack.dovecot.append(mail_with_attachment(who, f"Adjunto la factura. {who.marker} correo. {who.name}, {who.phone}", attachment))
    return session, attachment


async def tickets_of(bootstrap: str, who: Person) -> dict[str, str]:
    """channel -> ticket id of the customer's three tickets."""
    created = await wait_for_events(bootstrap, TICKETS_EVENTS,
                                    lambda e: e.type == "ticket.created" and who.marker in e.data["body_text"], 3, 90)
    return {e.data["channel"]: e.data["ticket_id"] for e in created}


async def table_rows(bootstrap: str) -> dict[str, dict[str, Any]]:
    """Every table as a worker restores it: each changelog read to its end (committed
    records), the latest value per key, tombstones removing the key."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    try:
        tps = [TopicPartition(spec.name, p) for spec in CHANGELOGS
               for p in (consumer.partitions_for_topic(spec.name) or await _partitions(consumer, spec.name))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        tables: dict[str, dict[str, Any]] = {spec.name: {} for spec in CHANGELOGS}
        deadline = time.monotonic() + 60
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]] and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for record in records:
                    key = record.key.decode()
                    if record.value is None:
                        tables[tp.topic].pop(key, None)
                    else:
                        tables[tp.topic][key] = orjson.loads(record.value)
        return tables
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # a topic nobody has read yet
    return consumer.partitions_for_topic(topic) or set()


def rows_holding(tables: dict[str, dict[str, Any]], who: Person) -> dict[str, list[str]]:
    """table -> keys of its rows (key or value) that mention `who`."""
    found: dict[str, list[str]] = {}
    for table, rows in tables.items():
        for key, value in rows.items():
            if found_in(key + json.dumps(value, ensure_ascii=False), who):
                found.setdefault(table, []).append(key)
    return found


async def agent_pages(http: aiohttp.ClientSession, router_url: str, ticket_ids: list[str]) -> str:
    """What the console shows a supervisor: the queue, the supervision board, and each
    ticket with its conversation and help, as the agent API answers them."""
    api = AgentApi(http, router_url, SUPERVISOR)
    shown = []
    for path in ["/api/queue", "/api/supervisor", "/api/agents",
                 *[f"/api/tickets/{t}{tail}" for t in ticket_ids for tail in ("", "/conversation", "/help")]]:
        status, body = await api.get(path)
        shown.append(f"{path} {status} {json.dumps(body, ensure_ascii=False)}")
    return "\n".join(shown)


def erase_with_the_cli(stack: Stack, *args: str) -> dict[str, Any]:
    env = {**os.environ, "NOTIFIER_URL": stack.services["notifier"].url, "NOTIFIER_OPS_TOKEN": OPS_TOKEN}
    done = subprocess.run([sys.executable, "-m", "deskstream.cli", "erase-customer", *args],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def eventually(check, timeout: float = 90.0, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        outcome = await check()
        if outcome or time.monotonic() > deadline:
            return outcome
        await asyncio.sleep(every)


async def test_an_erased_customer_is_found_nowhere_and_the_other_is_whole(stack: Stack):
    bootstrap = stack.kafka.bootstrap
    router = stack.services["router"]
    async with Customers(stack.services["intake"].url, stack.dovecot) as customers, aiohttp.ClientSession() as http:
        x_session, x_attachment = await write_to_support(stack, customers, X)
        y_session, y_attachment = await write_to_support(stack, customers, Y)
        x_by_channel, y_by_channel = await tickets_of(bootstrap, X), await tickets_of(bootstrap, Y)
        x_tickets, y_tickets = sorted(x_by_channel.values()), sorted(y_by_channel.values())
        supervisor = AgentApi(http, router.url, SUPERVISOR)
        for ticket_id in x_tickets + y_tickets:  # the router holds them: queued or assigned
            await supervisor.ticket_when(ticket_id, lambda t: t.get("status") in ("assigned", "queued"), timeout=90)
        # Each one's SMS ticket resolved and surveyed: feedback remembers them, intake's
        # thread awaits the answer, the notifier sent the survey.
        surveyed = [x_by_channel["sms"], y_by_channel["sms"]]
        for ticket_id in surveyed:
            await supervisor.ticket_when(ticket_id, lambda t: t.get("status") == "assigned", timeout=90)
            status, body = await supervisor.post(f"/api/tickets/{ticket_id}/resolve", {"note": "Resuelto."})
            assert status == 202, body
        await wait_for_events(bootstrap, TICKETS_EVENTS, lambda e: e.type == "survey.sent" and e.data["ticket_id"] in surveyed, 2, 90)
        # Acknowledged on every channel: the chat page, the Twilio stand-in, the SMTP server.
        for session in (x_session, y_session):
            assert await eventually(lambda s=session: _chat_has_a_message(customers, s)), "no acknowledgement on the chat page"
        for who in (X, Y):
            assert await eventually(lambda w=who: _true(stack.twilio.sent_to(w.phone))), f"no SMS acknowledgement to {who.name}"
            assert await eventually(lambda w=who: _true([m for m in stack.smtp.messages if w.email in m[1]]))
        x_sha, y_sha = (hashlib.sha256(a).hexdigest() for a in (x_attachment, y_attachment))
        assert (stack.attachments / x_sha[:2] / x_sha).is_file() and (stack.attachments / y_sha[:2] / y_sha).is_file()
        tables = await table_rows(bootstrap)
        before = rows_holding(tables, X)
        assert customer_id(phone=X.phone, fallback="") in tables["deskstream-feedback-customers-changelog"]
        assert {"deskstream-intake-threads-changelog", "deskstream-intake-chat_outboxes-changelog",
                "deskstream-router-conversations-changelog", "deskstream-notifier-contacts-changelog"} <= set(before), before
        print(f"\ntables holding X before the erasure: {sorted(before)}")

        # Not without the ops token, nor without naming anybody.
        async with http.post(f"{stack.services['notifier'].url}/api/erasures", json={"email": X.email}) as refused:
            assert refused.status == 401
        async with http.post(f"{stack.services['notifier'].url}/api/erasures", json={"name": X.name},
                             headers={"Authorization": f"Bearer {OPS_TOKEN}"}) as refused:
            assert refused.status == 400

        # The erasure waits in Kafka for services that are down, and survives their restart.
        stack.services["router"].stop()
        stack.services["feedback"].stop()
        answer = erase_with_the_cli(stack, "--email", X.email, "--phone", X.phone)
        assert answer["erasure_id"].startswith("erasure-") and X.email not in json.dumps(answer)
        await asyncio.sleep(3)
        stack.services["router"].start().wait_ready(90)
        stack.services["feedback"].start().wait_ready(90)

        assert await eventually(lambda: _none_left(bootstrap), timeout=120), rows_holding(await table_rows(bootstrap), X)

        # Every table: nothing of X, all of Y.
        still_in_the_log = _holding(await raw_changelog_records(bootstrap), X)
        print(f"changelog records of X still readable before compaction: {len(still_in_the_log)} "
              f"in {sorted({topic for topic, _ in still_in_the_log})}")
        tables = await table_rows(bootstrap)
        assert rows_holding(tables, X) == {}
        # Rows that name X only by ticket or customer id go too (the dispatcher's, the
        # notifier's contacts, feedback's surveys); the facts keep their figures.
        by_ticket = {"deskstream-router-tickets-changelog", "deskstream-router-conversations-changelog",
                     "deskstream-notifier-contacts-changelog", "deskstream-feedback-surveys-changelog"}
        assert {t: sorted(set(x_tickets) & set(tables[t])) for t in by_ticket} == {t: [] for t in by_ticket}
        assert set(answer["customer_ids"]).isdisjoint(tables["deskstream-router-customers-changelog"])
        assert set(answer["customer_ids"]).isdisjoint(tables["deskstream-feedback-customers-changelog"])
        assert customer_id(phone=Y.phone, fallback="") in tables["deskstream-feedback-customers-changelog"]
        assert set(y_tickets) <= set(tables["deskstream-router-tickets-changelog"])
        y_rows = rows_holding(tables, Y)
        print(f"tables holding Y after X's erasure: {sorted(y_rows)}")
        assert {"deskstream-intake-threads-changelog", "deskstream-intake-chat_outboxes-changelog",
                "deskstream-router-conversations-changelog", "deskstream-notifier-contacts-changelog"} <= set(y_rows), y_rows
        # The attachment store.
        assert not (stack.attachments / x_sha[:2] / x_sha).exists()
        assert (stack.attachments / y_sha[:2] / y_sha).read_bytes() == y_attachment
        stored = [p for p in stack.attachments.rglob("*") if p.is_file() and found_in(p.read_bytes().decode("latin-1"), X)]
        assert stored == []
        # The agent console's API (what its pages show), X's tickets and Y's.
        pages = await agent_pages(http, router.url, x_tickets + y_tickets)
        assert found_in(pages, X) == [], [line for line in pages.splitlines() if found_in(line, X)]
        for ticket_id in x_tickets:
            assert (await supervisor.get(f"/api/tickets/{ticket_id}/conversation"))[0] == 404
        for ticket_id in y_tickets:
            status, conversation = await supervisor.get(f"/api/tickets/{ticket_id}/conversation")
            assert status == 200 and found_in(json.dumps(conversation, ensure_ascii=False), Y)
        # The chat page: X's outbox is gone, Y's still there.
        assert await page_messages(customers, x_session) == []
        assert [m for m in await customers.chat_messages(y_session) if m.get("type") == "message"]

        # The notice for other systems: customer ids and tickets, never the address or number.
        notices = [e for e in await read_topic(bootstrap, TICKETS_EVENTS, settle_ms=500)
                   if e.type == "customer.erased" and e.data["erasure_id"] == answer["erasure_id"]]
        assert notices and set(x_tickets) <= {t for e in notices for t in e.data["ticket_ids"]}
        assert all(found_in(e.encode().decode(), X) == [] for e in notices)

        # Twice is fine: nothing more goes, Y stays whole, and X is still nowhere.
        again = erase_with_the_cli(stack, "--email", X.email.upper())
        assert again["erasure_id"] != answer["erasure_id"]
        await wait_for_events(bootstrap, TICKETS_EVENTS, lambda e: e.type == "customer.erased"
                              and e.data["erasure_id"] == again["erasure_id"], 1, 30)
        await asyncio.sleep(5)
        tables = await table_rows(bootstrap)
        assert rows_holding(tables, X) == {} and rows_holding(tables, Y).keys() == y_rows.keys()

        # The event topics are append-only: X's records stay readable there until their
        # retention. Which ones, for the record; never a compacted one.
        kept = {}
        for spec in TOPICS:
            count = sum(1 for e in await read_topic(bootstrap, spec.name, settle_ms=300) if found_in(e.encode().decode(), X))
            if count:
                kept[spec.name] = count
        print(f"\nevent topics still holding X's records until retention: {kept}")
        assert set(kept) <= {spec.name for spec in TOPICS}

        # The changelogs themselves: the values an erasure replaced are still in the log
        # until the cleaner compacts it, which it does to closed segments only; a segment
        # older than max.compaction.lag.ms is closed at the partition's next write, which
        # a probe (a tombstone for a key no table has) stands in for. Then every record,
        # not only the latest per key, must be free of X; tombstones' keys too, once
        # delete.retention.ms has passed.
        assert await eventually(lambda: _changelogs_clean(bootstrap), timeout=180, every=4), \
            _holding(await raw_changelog_records(bootstrap), X)
        assert rows_holding(await table_rows(bootstrap), Y).keys() == y_rows.keys()


async def page_messages(customers: Customers, session: ChatSession) -> list[dict[str, Any]]:
    """What the session's page is sent from the start; nothing if the page is refused."""
    try:
        return [m for m in await customers.chat_messages(session) if m.get("type") == "message"]
    except aiohttp.WSServerHandshakeError:
        return []


async def raw_changelog_records(bootstrap: str) -> list[tuple[str, str, bytes | None]]:
    """Every record of every changelog as the log holds it now: (topic, key, value)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_uncommitted")
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(spec.name, p) for spec in CHANGELOGS for p in consumer.partitions_for_topic(spec.name) or ()]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found: list[tuple[str, str, bytes | None]] = []
        deadline = time.monotonic() + 60
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]] and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                found += [(tp.topic, (r.key or b"").decode(), r.value) for r in records]
        return found
    finally:
        await consumer.stop()


def _holding(records: list[tuple[str, str, bytes | None]], who: Person) -> list[tuple[str, str]]:
    return [(topic, key) for topic, key, value in records if found_in(key + (value or b"").decode(errors="replace"), who)]


async def _changelogs_clean(bootstrap: str) -> bool:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for spec in CHANGELOGS:
            for partition in await producer.partitions_for(spec.name):
                await producer.send_and_wait(spec.name, key=b"__roll__", value=None, partition=partition)
    finally:
        await producer.stop()
    return _holding(await raw_changelog_records(bootstrap), X) == []


async def _none_left(bootstrap: str) -> bool:
    return rows_holding(await table_rows(bootstrap), X) == {}


async def _chat_has_a_message(customers: Customers, session: ChatSession) -> bool:
    return bool([m for m in await customers.chat_messages(session, quiet=0.5) if m.get("type") == "message"])


async def _true(value: Any) -> bool:
    return bool(value)
