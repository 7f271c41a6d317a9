"""Distinct contacts through the four real services while they are restarted with real
signals at random moments; then every hop checked record by record.

What the input implies is computed with the services' own pure functions (the
normaliser for ticket ids, the notifier's request ids), never counted: each expected
event id must be on its topic exactly once, no other event of the run may be there,
and every table (read back from its changelog, committed records only) must hold
exactly what the input implies.

    PYTHONPATH=. .venv/bin/python -m tests.delivery.pipeline_chaos --restarts 80 --contacts 3000

runs the long version (`make chaos`); tests/delivery/test_delivery.py a short one.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import shutil
import signal
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from deskstream.events import Event
from deskstream.localkafka import LocalKafka, free_port
from deskstream.settings import KafkaSettings
from deskstream.topics import (
    CHAT_OUTBOUND, DEADLETTER, INTAKE_RAW, NOTIFY_RECEIPTS, NOTIFY_REQUESTS, ROUTER_DISPATCH, SURGE_WATCH, TICKETS_EVENTS, changelog_topic,
    ensure_topics,
)
from services.intake import chat, web
from services.intake.normaliser import Thread, normalise
from tests.channels import roomy_roster
from tests.harness import SERVICES, ServiceProcess, service_env

TEXTS = (
    "Hola, no tengo internet desde esta mañana en casa",
    "My invoice shows a charge twice this month",
    "El router parpadea en rojo y no navega",
    "Cannot log in to my account since the password reset",
    "La fibra va muy lenta por las tardes",
)
SIGNALS = (signal.SIGTERM, signal.SIGKILL)
INTEGRATION_ROSTER = Path(__file__).resolve().parent.parent / "integration" / "roster.json"


# --- what goes in, and what it implies --------------------------------------------------


def contacts_for(run: str, threads: int, follow_up_every: int = 4) -> list[Event]:
    """One chat session per thread; every `follow_up_every`-th session writes twice."""
    contacts = []
    for n in range(threads):
        session_id = f"{run}-{n:06d}".ljust(16, "0")
        for k in range(2 if n % follow_up_every == 0 else 1):
            body = {"session_id": session_id, "client_message_id": f"m{k}", "text": TEXTS[(n + k) % len(TEXTS)],
                    "customer": {"language": "es" if n % 2 else "en"}}
            data = web.contact_event_data(chat.parse_message(body), session_id, "ES")
            contacts.append(Event(type="contact.received", source="deskstream/intake", id=data["contact_id"],
                                  data=data, subject=data["thread_key"]))
    return contacts


@dataclass
class Expected:
    """Event ids per topic, and table contents, that the contacts imply."""

    ids: dict[str, collections.Counter[str]] = field(default_factory=lambda: collections.defaultdict(collections.Counter))
    threads: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)  # session id -> ticket id
    tickets: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, contacts: list[Event]) -> "Expected":
        expected = cls()
        threads: dict[str, Thread] = collections.defaultdict(Thread)
        for contact in contacts:
            thread = threads[contact.data["thread_key"]]
            for ticket_event in normalise(contact.data, thread):
                expected.ids[TICKETS_EVENTS][ticket_event.id] += 1
        for thread_key, thread in threads.items():
            ticket_id = thread.ticket_id
            assert ticket_id is not None
            expected.tickets.add(ticket_id)
            expected.threads[thread_key] = {"ticket_id": ticket_id, "recent_contacts": thread.recent_contacts}
            expected.sessions[thread_key.removeprefix("chat:")] = ticket_id
            expected.ids[ROUTER_DISPATCH][f"{ticket_id}.triaged"] += 1
            expected.ids[TICKETS_EVENTS].update([f"{ticket_id}.classified", f"{ticket_id}.assigned.1"])
            expected.ids[NOTIFY_REQUESTS][f"{ticket_id}.ack"] += 1
            expected.ids[CHAT_OUTBOUND][f"{ticket_id}.ack"] += 1
            expected.ids[NOTIFY_RECEIPTS][f"{ticket_id}.ack.sent"] += 1
            expected.ids[SURGE_WATCH][f"{ticket_id}.counted"] += 1
        return expected


# --- what came out ----------------------------------------------------------------------


async def read_records(bootstrap: str, topic: str) -> Iterator[tuple[bytes | None, bytes | None]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    rows: list[tuple[bytes | None, bytes | None]] = []
    try:
        while batch := await consumer.getmany(timeout_ms=2000, max_records=10_000):
            for records in batch.values():
                rows += [(r.key, r.value) for r in records]
    finally:
        await consumer.stop()
    return iter(rows)


async def read_table(bootstrap: str, service: str, table: str) -> dict[str, Any]:
    """A table as its changelog says it is now (last committed value per key)."""
    state: dict[str, Any] = {}
    for key, value in await read_records(bootstrap, changelog_topic(service, table)):
        assert key is not None
        if value is None:
            state.pop(key.decode(), None)
        else:
            state[key.decode()] = orjson.loads(value)
    return state


@dataclass
class Report:
    contacts: int
    tickets: int
    restarts: list[tuple[str, str, float]] = field(default_factory=list)  # service, signal, seconds to stop
    unclean_stops: list[str] = field(default_factory=list)  # SIGTERM stops that did not exit with 0
    missing: dict[str, list[str]] = field(default_factory=dict)
    doubled: dict[str, list[str]] = field(default_factory=dict)
    unexpected: dict[str, list[str]] = field(default_factory=dict)
    table_errors: list[str] = field(default_factory=list)
    deadletters: int = 0
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return not (any(self.missing.values()) or any(self.doubled.values()) or any(self.unexpected.values())
                    or self.table_errors or self.deadletters or self.unclean_stops)

    def note_exit(self, service: ServiceProcess, signum: int) -> None:
        """A SIGTERM must end in an orderly exit (0), not the 9 s watchdog (143) or a crash."""
        assert service.process is not None
        if signum == signal.SIGTERM and service.process.returncode != 0:
            self.unclean_stops.append(f"{service.name} exited {service.process.returncode} (see {service.log_path})")

    def restarts_by_service(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {name: {"SIGTERM": 0, "SIGKILL": 0} for name in SERVICES}
        for service, signame, _ in self.restarts:
            if signame in counts[service]:
                counts[service][signame] += 1
        return counts

    def summary(self) -> dict[str, Any]:
        return {
            "contacts": self.contacts, "tickets": self.tickets, "restarts": self.restarts_by_service(),
            "slowest_sigterm_stop_s": round(max((t for _, s, t in self.restarts if s != "SIGKILL"), default=0.0), 2),
            "missing": {t: len(v) for t, v in self.missing.items()}, "doubled": {t: len(v) for t, v in self.doubled.items()},
            "unexpected": {t: len(v) for t, v in self.unexpected.items()}, "table_errors": len(self.table_errors),
            "deadletters": self.deadletters, "unclean_stops": self.unclean_stops,
            "seconds": round(self.seconds), "clean": self.clean,
            "first_problems": {k: v for k, v in (("missing", _first(self.missing)), ("doubled", _first(self.doubled)),
                                                  ("unexpected", _first(self.unexpected)),
                                                  ("tables", self.table_errors[:5])) if v},
        }


def _first(by_topic: dict[str, list[str]]) -> dict[str, list[str]]:
    return {topic: ids[:5] for topic, ids in by_topic.items() if ids}


async def compare(bootstrap: str, expected: Expected, report: Report) -> None:
    """Every hop's output against what the contacts imply, record by record."""
    for topic, wanted in expected.ids.items():
        seen: collections.Counter[str] = collections.Counter()
        for _, value in await read_records(bootstrap, topic):
            event = Event.decode(value or b"")
            if event.data.get("ticket_id") in expected.tickets:
                seen[event.id] += 1
        report.missing[topic] = sorted(i for i in wanted if seen[i] < wanted[i])
        report.doubled[topic] = sorted(i for i in seen if seen[i] > wanted.get(i, 0) and i in wanted)
        report.unexpected[topic] = sorted(i for i in seen if i not in wanted)
    run_sessions = set(expected.sessions)
    for _, value in await read_records(bootstrap, DEADLETTER):
        data = Event.decode(value or b"").data
        if any(session in (data.get("key") or "") for session in run_sessions) or data.get("key") in expected.tickets:
            report.deadletters += 1
    errors = report.table_errors
    threads = await read_table(bootstrap, "intake", "threads")
    for key, want in expected.threads.items():
        got = threads.get(key) or {}
        if got.get("ticket_id") != want["ticket_id"] or got.get("recent_contacts") != want["recent_contacts"]:
            errors.append(f"intake threads[{key}] = {got} (want {want})")
    outboxes = await read_table(bootstrap, "intake", "chat_outboxes")
    for session, ticket_id in expected.sessions.items():
        got = [(m["message_id"], m["seq"]) for m in outboxes.get(session) or []]
        if got != [(f"{ticket_id}.ack", 1)]:
            errors.append(f"intake chat_outboxes[{session}] = {got}")
    routed = await read_table(bootstrap, "router", "tickets")
    contacts = await read_table(bootstrap, "notifier", "contacts")
    deliveries = await read_table(bootstrap, "notifier", "deliveries")
    facts = await read_table(bootstrap, "feedback", "ticket_facts")
    for ticket_id in sorted(expected.tickets):
        ticket = routed.get(ticket_id) or {}
        if (ticket.get("status"), ticket.get("assignments")) != ("assigned", 1):
            errors.append(f"router tickets[{ticket_id}] = {ticket}")
        if ticket_id not in contacts:
            errors.append(f"notifier contacts[{ticket_id}] missing")
        if (deliveries.get(f"{ticket_id}.ack") or {}).get("state") != "sent":
            errors.append(f"notifier deliveries[{ticket_id}.ack] = {deliveries.get(f'{ticket_id}.ack')}")
        fact = facts.get(ticket_id) or {}
        if not {"created_at", "priority", "assigned_at"} <= set(fact):
            errors.append(f"feedback ticket_facts[{ticket_id}] = {fact}")


# --- the run ----------------------------------------------------------------------------


async def feed(bootstrap: str, contacts: list[Event], seconds: float) -> None:
    """Publish the contacts evenly over `seconds`, each acknowledged by the broker."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        pause = seconds / max(len(contacts), 1)
        for start in range(0, len(contacts), 20):
            chunk = contacts[start:start + 20]
            await asyncio.gather(*[await producer.send(INTAKE_RAW, key=c.subject.encode(), value=c.encode()) for c in chunk])
            await asyncio.sleep(pause * len(chunk))
    finally:
        await producer.stop()


async def settled(bootstrap: str, expected: Expected, timeout: float) -> None:
    """Wait until the last hop has a receipt for every ticket (or `timeout` passes)."""
    wanted = set(expected.ids[NOTIFY_RECEIPTS])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = {Event.decode(v or b"").id for _, v in await read_records(bootstrap, NOTIFY_RECEIPTS)}
        if wanted <= got:
            return
        await asyncio.sleep(3)


async def chaos_run(bootstrap: str, work: Path, threads: int, restarts: int, seed: int | None = None,
                    feed_seconds: float | None = None) -> Report:
    """Feed `threads` chat sessions through the pipeline while `restarts` random
    services are stopped (SIGTERM and SIGKILL alternating per service) and started
    again at random moments; then compare everything."""
    rng = random.Random(seed)
    started = time.monotonic()
    run = uuid.uuid4().hex[:10]
    contacts = contacts_for(run, threads)
    expected = Expected.of(contacts)
    report = Report(contacts=len(contacts), tickets=len(expected.tickets))
    await ensure_topics(KafkaSettings.from_env({"KAFKA_BOOTSTRAP_SERVERS": bootstrap}))
    env = service_env(bootstrap, work, ROUTER_ROSTER_PATH=str(roomy_roster(work, INTEGRATION_ROSTER)), LOG_LEVEL="warning")
    services = {name: ServiceProcess(name, env, work).start() for name in SERVICES}
    try:
        for service in services.values():
            await asyncio.to_thread(service.wait_ready, 90)
        # Each service in turn, SIGTERM and SIGKILL alternating, at random moments.
        plan = [(name, SIGNALS[(n // len(SERVICES)) % 2]) for n, name in enumerate(SERVICES * (restarts // len(SERVICES) + 1))]
        plan = plan[:restarts]
        rng.shuffle(plan)
        feeding = asyncio.ensure_future(feed(bootstrap, contacts, feed_seconds or max(10.0, restarts * 3.0)))
        for name, signum in plan:
            await asyncio.sleep(rng.uniform(0.5, 4.0))
            took = await asyncio.to_thread(services[name].signal, signum)
            report.restarts.append((name, signal.Signals(signum).name, took))
            report.note_exit(services[name], signum)
            services[name].start()
            if rng.random() < 0.5:  # half the time the next stop may catch it still starting
                await asyncio.to_thread(services[name].wait_ready, 90)
        await feeding
        for service in services.values():
            await asyncio.to_thread(service.wait_ready, 90)
        await settled(bootstrap, expected, timeout=120)
    finally:
        for service in services.values():
            took = service.stop()
            if took is not None:
                report.restarts.append((service.name, "final SIGTERM", took))
                report.note_exit(service, signal.SIGTERM)
    await compare(bootstrap, expected, report)
    report.seconds = time.monotonic() - started
    return report


def conclude(summary: dict[str, Any], clean: bool, work: Path) -> None:
    """Print a chaos run's summary; keep its logs and fail if it was not clean."""
    print(json.dumps(summary, indent=2))
    if clean:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"logs kept in {work}")
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=3000, help="chat sessions (a quarter of them write twice)")
    parser.add_argument("--restarts", type=int, default=80, help="restarts in all, spread over the four services")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--bootstrap", help="an existing cluster (default: KAFKA_BOOTSTRAP_SERVERS, else a local one)")
    args = parser.parse_args()
    import os

    bootstrap = args.bootstrap or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    work = Path(tempfile.mkdtemp(prefix="deskstream-chaos-"))
    broker = None
    if not bootstrap:
        broker = LocalKafka(work / "kafka", port=free_port(), controller_port=free_port())
        broker.start()
        bootstrap = broker.bootstrap
    try:
        report = asyncio.run(chaos_run(bootstrap, work, args.contacts, args.restarts, args.seed))
    finally:
        if broker is not None:
            broker.stop()
    conclude(report.summary(), report.clean, work)


if __name__ == "__main__":
    main()
