"""How fast mail becomes tickets: a mailbox of N messages read by intake, to the last
`ticket.created`, against the ceiling, the same server handing the same messages to
a bare aioimaplib fetch loop, in the same run.

    PYTHONPATH=. .venv/bin/python -m bench.mail_intake [--messages 2000]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

import aioimaplib
from aiokafka import AIOKafkaConsumer

from deskstream.events import Event
from deskstream.localkafka import LocalKafka, free_port
from deskstream.settings import KafkaSettings
from deskstream.topics import TICKETS_EVENTS, ensure_topics
from tests.harness import ServiceProcess, service_env
from tests.mailserver import Dovecot

TEXTS = ("No tengo internet desde ayer.", "My invoice is wrong.", "La app se cierra al abrirla.", "Cannot log in.")


def messages(count: int, run: str) -> list[bytes]:
    out = []
    for n in range(count):
        message = EmailMessage()
        message["From"] = f"Cliente {n} <cliente{n}.{run}@example.es>"
        message["To"] = "soporte@deskstream.test"
        message["Subject"] = f"Consulta {n}"
        message["Message-ID"] = f"<bench-{run}-{n}@example.es>"
        message.set_content(TEXTS[n % len(TEXTS)] + "\n\nGracias,\nCliente")
        out.append(message.as_bytes())
    return out


async def bare_fetch_rate(dovecot: Dovecot, count: int) -> float:
    """Messages per second a bare aioimaplib loop gets: UID SEARCH, then one UID FETCH each."""
    imap = aioimaplib.IMAP4(host=dovecot.host, port=dovecot.port)
    await imap.wait_hello_from_server()
    await imap.login(dovecot.user, dovecot.password)
    await imap.select("INBOX")
    started = time.monotonic()
    found = await imap.uid_search("ALL")
    uids = [int(u) for line in found.lines[:-1] for u in bytes(line).split() if u.isdigit()]
    for uid in uids[:count]:
        await imap.uid("fetch", str(uid), "(BODY.PEEK[])")
    took = time.monotonic() - started
    await imap.logout()
    return min(count, len(uids)) / took


async def tickets_rate(bootstrap: str, run: str, count: int, started: float) -> tuple[float, float]:
    """(tickets per second from intake's start, tickets per second from the first ticket)."""
    consumer = AIOKafkaConsumer(TICKETS_EVENTS, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    seen: set[str] = set()
    first = 0.0
    try:
        while len(seen) < count and time.monotonic() - started < 600:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    event = Event.decode(record.value)
                    if event.type == "ticket.created" and f"bench-{run}-" in ((event.data.get("email") or {}).get("message_id") or ""):
                        seen.add(event.id)
                        first = first or time.monotonic()
    finally:
        await consumer.stop()
    now = time.monotonic()
    return len(seen) / (now - started), len(seen) / max(now - first, 1e-3)


async def measure(count: int, work: Path, broker: LocalKafka, dovecot: Dovecot) -> dict[str, object]:
    await ensure_topics(KafkaSettings.from_env({"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap}))
    run_id = str(int(time.time()))
    for raw in messages(count, run_id):
        dovecot.append(raw)
    ceiling = await bare_fetch_rate(dovecot, count)
    env = service_env(broker.bootstrap, work, LOG_LEVEL="warning", IMAP_HOST=dovecot.host, IMAP_PORT=str(dovecot.port),
                      IMAP_SSL="false", IMAP_USER=dovecot.user, IMAP_PASSWORD=dovecot.password, IMAP_POLL_SECONDS="2")
    intake = ServiceProcess("intake", env, work)
    started = time.monotonic()
    intake.start()
    try:
        rate, steady = await tickets_rate(broker.bootstrap, run_id, count, started)
    finally:
        intake.stop()
    return {"messages": count, "bare_fetch_per_s": round(ceiling),
            "mail_to_ticket_created_per_s": round(steady, 1), "ratio_to_ceiling": round(steady / ceiling, 3),
            "including_intake_start_per_s": round(rate, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="deskstream-bench-mail-"))
    work.chmod(0o755)  # Dovecot's unprivileged processes must reach its folder
    broker = LocalKafka(work / "kafka", port=free_port(), controller_port=free_port())
    dovecot = Dovecot(work / "dovecot")
    try:
        broker.start()
        dovecot.start()
        print(json.dumps(asyncio.run(measure(args.messages, work, broker, dovecot)), indent=2))
    finally:
        dovecot.stop()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
