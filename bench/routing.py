"""How fast the router places tickets: tickets per second and the latency from
`ticket.created` to `ticket.assigned`, against the ceiling, a bare aiokafka
consume-and-produce loop over the same topic on the same broker, in the same run.

    PYTHONPATH=. .venv/bin/python -m bench.routing [--tickets 3000] [--rate 100]

Two runs of the router, each on a fresh broker: flat out (every ticket published at
once: the throughput) and paced at `--rate` tickets per second (the latency a ticket
sees when the router keeps up). The roster has room for every ticket, so each is
assigned at once. Latencies come from the records' own timestamps (the producers'
clocks, on this one machine): created as our producer sent it, assigned as the
router's transaction sent it, so the reader's speed does not count.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from deskstream.events import Event
from deskstream.topics import TICKETS_EVENTS
from services.intake.normaliser import Thread, normalise
from tests.harness import ServiceProcess, own_kafka, service_env

TEXTS = [("No tengo internet desde ayer", "es"), ("The app crashes when I sync", "en"), ("Me cobraron dos veces", "es"),
         ("I cannot log in to my account", "en"), ("La pantalla no enciende", "es"), ("How do I change my plan?", "en")]
CEILING_SINK = "bench.routing-ceiling"


def created(n: int, run: str) -> Event:
    text, language = TEXTS[n % len(TEXTS)]
    contact = {"contact_id": f"bench-{run}-{n}", "channel": "chat", "thread_key": f"chat:bench-{run}-{n}",
               "received_at": "2026-12-02T10:00:00.000Z", "customer": {"id": f"cus-{n}", "language": language},
               "subject": None, "body_text": text, "reply_to": {"channel": "chat", "address": f"bench-{run}-{n}"}}
    [event] = normalise(contact, Thread())
    return Event(event.type, "deskstream/intake", event.id, event.data, event.ticket_id)


async def publish(bootstrap: str, events: list[Event], rate: float | None, topic: str = TICKETS_EVENTS) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        started = time.monotonic()
        for n, event in enumerate(events):
            if rate:
                await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
            await producer.send(topic, key=event.subject.encode(), value=event.encode())
        await producer.flush()
    finally:
        await producer.stop()


def percentiles(latencies_ms: list[float]) -> dict[str, float]:
    ordered = sorted(latencies_ms)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50_ms": round(pick(0.5), 1), "p99_ms": round(pick(0.99), 1)}


async def assignments(bootstrap: str, created_ms: dict[str, int], timeout: float) -> tuple[float, list[float]]:
    """(tickets per second from the first assignment to the last, latency per ticket in ms)."""
    consumer = AIOKafkaConsumer(TICKETS_EVENTS, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    assigned_ms: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(assigned_ms) < len(created_ms) and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                for record in records:
                    event = Event.decode(record.value)
                    if event.type == "ticket.assigned" and event.data["ticket_id"] in created_ms:
                        assigned_ms.setdefault(event.data["ticket_id"], record.timestamp)
    finally:
        await consumer.stop()
    if len(assigned_ms) < len(created_ms):
        raise RuntimeError(f"{len(assigned_ms)} of {len(created_ms)} tickets assigned in {timeout:.0f} s")
    span = (max(assigned_ms.values()) - min(assigned_ms.values())) / 1000
    return len(assigned_ms) / max(span, 1e-3), [assigned_ms[t] - created_ms[t] for t in assigned_ms]


async def created_times(bootstrap: str, tickets: set[str]) -> dict[str, int]:
    consumer = AIOKafkaConsumer(TICKETS_EVENTS, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    found: dict[str, int] = {}
    try:
        while len(found) < len(tickets):
            for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                for record in records:
                    event = Event.decode(record.value)
                    if event.type == "ticket.created" and event.subject in tickets:
                        found[event.subject] = record.timestamp
    finally:
        await consumer.stop()
    return found


async def router_run(bootstrap: str, work: Path, count: int, rate: float | None, roster: Path) -> dict[str, float]:
    work.mkdir(parents=True, exist_ok=True)
    env = service_env(bootstrap, work, LOG_LEVEL="warning", ROUTER_ROSTER_PATH=str(roster))
    router = ServiceProcess("router", env, work).start()
    try:
        await asyncio.to_thread(router.wait_ready)
        events = [created(n, f"{rate or 'max'}") for n in range(count)]
        await publish(bootstrap, events, rate)
        created_ms = await created_times(bootstrap, {e.subject for e in events})
        per_s, latencies = await assignments(bootstrap, created_ms, timeout=max(120, count / 10))
    finally:
        router.stop()
    return {"tickets_per_s": round(per_s), **percentiles(latencies)}


async def ceiling_run(bootstrap: str, count: int, source: str = TICKETS_EVENTS) -> dict[str, float]:
    """A bare loop: read each ticket.created and produce one record per ticket, acks=all,
    as fast as aiokafka goes on this broker; per second and latency as above. `source`
    other than tickets.events is created here (a run whose services read tickets.events)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(CEILING_SINK, 4, 1)] + ([NewTopic(source, 4, 1)] if source != TICKETS_EVENTS else []))
    await admin.close()
    await publish(bootstrap, [created(n, "ceiling") for n in range(count)], None, source)
    consumer = AIOKafkaConsumer(source, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id="bench-ceiling")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await consumer.start()
    await producer.start()
    latencies: list[float] = []
    first = last = 0.0
    try:
        while len(latencies) < count:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                futures = [await producer.send(CEILING_SINK, key=record.key, value=record.value) for record in records]
                for record, future in zip(records, futures):
                    written = await future
                    latencies.append(written.timestamp - record.timestamp if written.timestamp > 0 else 0)
                last = time.monotonic()
                first = first or last
    finally:
        await producer.stop()
        await consumer.stop()
    return {"records_per_s": round(count / max(last - first, 1e-3)), **percentiles(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=100.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="deskstream-bench-routing-"))
    roster = json.loads((Path(__file__).resolve().parent.parent / "services" / "router" / "roster.json").read_text())
    for agent in roster["agents"]:
        agent["max_concurrent"] = 1_000_000
    (work / "roster.json").write_text(json.dumps(roster))
    try:
        with own_kafka("bench-ceiling") as broker:
            ceiling = asyncio.run(ceiling_run(broker.bootstrap, args.tickets))
        with own_kafka("bench-routing") as broker:
            flat_out = asyncio.run(router_run(broker.bootstrap, work / "flat", args.tickets, None, work / "roster.json"))
        with own_kafka("bench-routing") as broker:
            paced = asyncio.run(router_run(broker.bootstrap, work / "paced", min(args.tickets, int(args.rate * 30)), args.rate,
                                           work / "roster.json"))
        print(json.dumps({
            "tickets": args.tickets, "ceiling_bare_loop": ceiling, "router_flat_out": flat_out,
            f"router_paced_{args.rate:g}_per_s": paced,
            "router_to_ceiling": round(flat_out["tickets_per_s"] / ceiling["records_per_s"], 3),
        }, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
