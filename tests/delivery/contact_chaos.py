"""Customers write through the real entry points while each service in turn is
SIGKILLed and started again and the broker is restarted once; then every end is
counted, contact by contact.

    PYTHONPATH=. .venv/bin/python -m tests.delivery.contact_chaos --contacts 10000

Every contact comes from a customer of its own (a chat session, a phone number, a
mailbox), so each must become exactly one ticket, with exactly one `ticket.created`,
`ticket.classified` and `ticket.assigned` on `tickets.events`, and exactly one
acknowledgement where the customer sees it: the chat page's WebSocket (read from the
first message), the Twilio stand-in's messages, the SMTP server's mails.

A contact an entry point did not take (intake killed, the broker away) is retried the
way its real client retries: the chat page repeats the same message in the same
session, Twilio the same MessageSid; a mail waits in the mailbox until intake reads it.
`make chaos` runs the long version; tests/delivery/test_delivery.py a short one.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from email.utils import make_msgid
from pathlib import Path
from typing import Any, Awaitable, Callable

import aiohttp

from deskstream.events import Event, EventDecodeError
from deskstream.localkafka import LocalKafka, free_port
from deskstream.settings import KafkaSettings
from deskstream.topics import DEADLETTER, TICKETS_EVENTS, ensure_topics
from tests.channels import ChatSession, Customers, Refused, channel_env
from tests.delivery.pipeline_chaos import conclude, read_records
from tests.harness import SERVICES, ServiceProcess
from tests.mailserver import Archive, SmtpCapture, temporary_dovecot
from tests.twilio_api import TwilioApi, message_sid

TEXTS = ("Hola, no tengo internet desde esta mañana", "My invoice shows the same charge twice",
         "El router parpadea en rojo y no navega", "I cannot log in since the password reset",
         "La fibra va muy lenta por las tardes", "The app closes as soon as I open it")
CHANNELS = ("chat", "sms", "email")
ARCHIVE_ADDRESS = "archivo@deskstream.test"  # the relay files a copy of each mail sent here: a crash's sends are looked up
TICKET_EVENTS = ("ticket.created", "ticket.classified", "ticket.assigned")
UNREACHABLE_AT_START = "Unable to bootstrap"
GIVE_UP_SECONDS = 300.0  # a contact no entry point took in this long is reported, not retried forever


@dataclass
class Contact:
    channel: str
    address: str  # where the customer is answered: chat session id, phone number, mail address
    text: str
    message_id: str  # the client's own id: client_message_id, MessageSid, Message-ID
    session: ChatSession | None = None
    attempts: int = 0
    taken: bool = False


def contacts_for(run: str, count: int) -> list[Contact]:
    """`count` contacts, the channels in turn, each from a customer of its own."""
    contacts = []
    for n in range(count):
        channel, text = CHANNELS[n % len(CHANNELS)], TEXTS[n % len(TEXTS)]
        if channel == "chat":
            contacts.append(Contact("chat", "", text, uuid.uuid4().hex))
        elif channel == "sms":
            contacts.append(Contact("sms", f"+3469{n:07d}", text, message_sid()))
        else:
            contacts.append(Contact("email", f"chaos-{run}-{n}@example.net", text, make_msgid(domain="example.net")))
    return contacts


@dataclass
class Report:
    contacts: int
    disruptions: list[tuple[str, float]] = field(default_factory=list)  # what, seconds it took
    retried: int = 0  # attempts an entry point did not take, repeated
    not_taken: list[str] = field(default_factory=list)
    tickets: dict[str, list[str]] = field(default_factory=dict)  # contact address -> ticket ids created
    event_problems: list[str] = field(default_factory=list)
    ack_problems: list[str] = field(default_factory=list)
    deadletters: list[str] = field(default_factory=list)
    exited: list[str] = field(default_factory=list)  # services that stopped without being told to, and why
    seconds: float = 0.0

    @property
    def ticket_problems(self) -> list[str]:
        return [f"{address}: {len(ids)} tickets {ids[:3]}" for address, ids in self.tickets.items() if len(ids) != 1]

    @property
    def crashes(self) -> list[str]:
        """Exits other than the one a supervisor expects: a worker started while the
        broker is away stops with "Unable to bootstrap" and is started again."""
        return [exit for exit in self.exited if UNREACHABLE_AT_START not in exit]

    @property
    def clean(self) -> bool:
        return not (self.not_taken or self.ticket_problems or self.event_problems or self.ack_problems
                    or self.deadletters or self.crashes)

    def summary(self) -> dict[str, Any]:
        return {
            "contacts": self.contacts, "tickets": sum(len(ids) for ids in self.tickets.values()),
            "disruptions": [f"{what} ({took:.1f} s)" for what, took in self.disruptions],
            "retried_attempts": self.retried, "not_taken": len(self.not_taken),
            "contacts_not_exactly_one_ticket": len(self.ticket_problems), "event_problems": len(self.event_problems),
            "acknowledgement_problems": len(self.ack_problems), "deadletters": len(self.deadletters),
            "exited_and_started_again": self.exited, "seconds": round(self.seconds), "clean": self.clean,
            "first_problems": {name: problems[:5] for name, problems in (
                ("not_taken", self.not_taken), ("tickets", self.ticket_problems), ("events", self.event_problems),
                ("acknowledgements", self.ack_problems), ("deadletters", self.deadletters), ("crashes", self.crashes))
                if problems},
        }


# --- the customers ---------------------------------------------------------------------


async def until_taken(attempt: Callable[[], Awaitable[Any]], report: Report) -> Any:
    """Repeat `attempt` (the same request each time) until its entry point takes it."""
    deadline = time.monotonic() + GIVE_UP_SECONDS
    while True:
        try:
            return await attempt()
        except (Refused, aiohttp.ClientError, asyncio.TimeoutError, OSError):
            if time.monotonic() > deadline:
                raise
            report.retried += 1
            await asyncio.sleep(0.5)


async def send(customers: Customers, contact: Contact, report: Report) -> None:
    try:
        if contact.channel == "chat":
            if contact.session is None:
                contact.session = await until_taken(customers.open_chat, report)
                contact.address = contact.session.session_id
            session = contact.session
            await until_taken(lambda: customers.chat(session, contact.text, contact.message_id), report)
        elif contact.channel == "sms":
            await until_taken(lambda: customers.sms(contact.address, contact.text, contact.message_id), report)
        else:
            await until_taken(lambda: customers.email(contact.address, contact.text, contact.message_id), report)
        contact.taken = True
    except Exception as error:  # noqa: BLE001 - reported with the contact
        report.not_taken.append(f"{contact.channel} {contact.address or contact.message_id}: {error!r}")


async def feed(customers: Customers, contacts: list[Contact], rate: float, report: Report) -> None:
    """Send the contacts at `rate` a second; a contact being retried does not hold back
    the ones after it (customers do not wait for each other)."""
    started = time.monotonic()
    sending: set[asyncio.Task[None]] = set()
    for n, contact in enumerate(contacts):
        await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
        task = asyncio.create_task(send(customers, contact, report))
        sending.add(task)
        task.add_done_callback(sending.discard)
        if n % 50 == 0:
            sys.stderr.write(f"\r  sent {n:6d} of {len(contacts)}, {report.retried} attempts retried   ")
    await asyncio.gather(*sending)
    sys.stderr.write("\n")


# --- the faults --------------------------------------------------------------------------


class Supervisor:
    """Starts again a service that stopped without being told to, as Compose's restart
    policy and Kubernetes do, and notes why it stopped (`why_it_stopped`)."""

    def __init__(self, services: dict[str, ServiceProcess], report: Report) -> None:
        self.services = services
        self.report = report
        self.busy: set[str] = set()  # being stopped and started by the chaos itself

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            for name, service in self.services.items():
                if name in self.busy or service.process is None or service.process.poll() is None:
                    continue
                self.report.exited.append(f"{name} exited {service.process.returncode}: {why_it_stopped(service)}")
                service.start()


def why_it_stopped(service: ServiceProcess) -> str:
    """The worker's own error from its last run's log (what it stopped on), else the
    first error logged; what asyncio logs at exit (unclosed clients) comes after both."""
    last_run = service.log_path.read_text(errors="replace").rsplit("--- start ", 1)[-1]
    errors = [json.loads(line).get("msg", "") for line in last_run.splitlines()
              if line.startswith("{") and '"level":"error"' in line]
    stopped_on = [message for message in errors if message.startswith("[^Worker]: Error")]
    return (stopped_on or errors or ["no error logged"])[0][:300]


async def ready(service: ServiceProcess, timeout: float = 120.0) -> None:
    """Wait for the service to answer /readyz, across a start again by the supervisor."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await asyncio.to_thread(service.wait_ready, 5)
        except (RuntimeError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)


async def disrupt(services: dict[str, ServiceProcess], broker: LocalKafka, seconds: float, report: Report,
                  rng: random.Random, supervisor: Supervisor) -> None:
    """Over `seconds`: SIGKILL each service in turn (started again at once) and restart
    the broker once, at evenly spread moments with a little jitter, in a random order."""
    faults = [*SERVICES, "broker"]
    rng.shuffle(faults)
    gap = seconds / (len(faults) + 1)
    for fault in faults:
        await asyncio.sleep(gap * rng.uniform(0.7, 1.3))
        started = time.monotonic()
        if fault == "broker":
            await asyncio.to_thread(broker.stop)
            await asyncio.sleep(2)
            await asyncio.to_thread(broker.start, 120)
            report.disruptions.append(("broker stopped and started", time.monotonic() - started))
        else:
            supervisor.busy.add(fault)
            await asyncio.to_thread(services[fault].signal, signal.SIGKILL)
            services[fault].start()
            supervisor.busy.discard(fault)
            report.disruptions.append((f"{fault} SIGKILLed and started", time.monotonic() - started))


# --- what came out -------------------------------------------------------------------------


async def ticket_events(bootstrap: str) -> list[Event]:
    events = []
    for _, value in await read_records(bootstrap, TICKETS_EVENTS):
        try:
            events.append(Event.decode(value or b""))
        except EventDecodeError:
            continue
    return events


def acknowledgements(twilio: TwilioApi, smtp: SmtpCapture) -> collections.Counter[str]:
    """Messages that reached each SMS and e-mail customer, by address."""
    arrived: collections.Counter[str] = collections.Counter(message.to for message in list(twilio.messages))
    for _, recipients, _ in list(smtp.messages):
        arrived.update(recipient for recipient in recipients if recipient != ARCHIVE_ADDRESS)
    return arrived


async def settled(bootstrap: str, contacts: list[Contact], twilio: TwilioApi, smtp: SmtpCapture, timeout: float) -> None:
    """Wait until every contact has its ticket and every SMS and mail customer a message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        created = {e.data["reply_to"]["address"] for e in await ticket_events(bootstrap) if e.type == "ticket.created"}
        arrived = acknowledgements(twilio, smtp)
        waiting = [c for c in contacts if c.taken and (c.address not in created or (c.channel != "chat" and not arrived[c.address.lower()]))]
        sys.stderr.write(f"\r  waiting for {len(waiting):6d} contacts' tickets and acknowledgements   ")
        if not waiting:
            break
        await asyncio.sleep(3)
    sys.stderr.write("\n")


async def count(bootstrap: str, customers: Customers, contacts: list[Contact], twilio: TwilioApi, smtp: SmtpCapture,
                report: Report) -> None:
    """Each contact's tickets, each ticket's events, each customer's messages."""
    by_address = {contact.address: contact for contact in contacts}
    events = await ticket_events(bootstrap)
    ticket_of: dict[str, str] = {}
    for event in events:
        if event.type == "ticket.created" and event.data["reply_to"]["address"] in by_address:
            ticket_of[event.data["ticket_id"]] = event.data["reply_to"]["address"]
    report.tickets = {contact.address: [] for contact in contacts if contact.taken}
    for ticket_id, address in ticket_of.items():
        report.tickets.setdefault(address, []).append(ticket_id)
    seen: collections.Counter[str] = collections.Counter()
    types: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for event in events:
        ticket_id = event.data.get("ticket_id") or event.subject
        if ticket_id in ticket_of:
            seen[event.id] += 1
            types[ticket_id][event.type] += 1
    report.event_problems += [f"event {event_id} {times} times" for event_id, times in seen.items() if times > 1]
    for ticket_id in ticket_of:
        if sorted(types[ticket_id].elements()) != sorted(TICKET_EVENTS):
            report.event_problems.append(f"{ticket_id}: {dict(types[ticket_id])} on {TICKETS_EVENTS}")

    arrived = acknowledgements(twilio, smtp)
    for contact in contacts:
        if contact.channel != "chat" and contact.taken and arrived[contact.address.lower()] != 1:
            report.ack_problems.append(f"{contact.channel} {contact.address}: {arrived[contact.address.lower()]} messages")
    limit = asyncio.Semaphore(32)

    async def page(contact: Contact) -> None:
        assert contact.session is not None
        async with limit:
            messages = await customers.chat_messages(contact.session, quiet=0.5)
        wanted = [f"{ticket_id}.ack" for ticket_id in report.tickets.get(contact.address, [])]
        if [message.get("message_id") for message in messages] != wanted:
            report.ack_problems.append(f"chat {contact.address}: page got {[m.get('message_id') for m in messages]}, "
                                       f"wanted {wanted}")

    await asyncio.gather(*(page(contact) for contact in contacts if contact.channel == "chat" and contact.session))
    addresses = set(by_address) | {address.lower() for address in by_address}
    for _, value in await read_records(bootstrap, DEADLETTER):
        text = (value or b"").decode(errors="replace")
        if any(address in text for address in addresses if address):
            report.deadletters.append(text[:300])


# --- the run -----------------------------------------------------------------------------


async def chaos_run(work: Path, contact_count: int, rate: float, seed: int | None = None,
                    settle_seconds: float = 300.0, tamper: Callable[[TwilioApi, SmtpCapture], None] | None = None) -> Report:
    """Feed `contact_count` contacts at `rate` a second through the entry points while
    the services and the broker are disrupted; then count everything. `tamper`, if
    given, changes what the far ends hold just before the count (a test of the count)."""
    started, rng = time.monotonic(), random.Random(seed)
    contacts = contacts_for(uuid.uuid4().hex[:8], contact_count)
    report = Report(contacts=len(contacts))
    broker = LocalKafka(work / "kafka", port=free_port(), controller_port=free_port())
    await asyncio.to_thread(broker.start)  # it probes the broker with an event loop of its own
    try:
        await ensure_topics(KafkaSettings.from_env({"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap}))
        with temporary_dovecot() as dovecot, TwilioApi() as twilio, \
                SmtpCapture(archive=Archive(dovecot, ARCHIVE_ADDRESS)) as smtp:
            env = channel_env(broker.bootstrap, work, dovecot, smtp, twilio)
            services = {name: ServiceProcess(name, env, work) for name in SERVICES}
            watching: asyncio.Task[None] | None = None
            try:
                for service in services.values():
                    service.start()
                for service in services.values():
                    await asyncio.to_thread(service.wait_ready, 90)
                supervisor = Supervisor(services, report)
                watching = asyncio.create_task(supervisor.watch())
                async with Customers(services["intake"].url, dovecot) as customers:
                    feeding = asyncio.create_task(feed(customers, contacts, rate, report))
                    await disrupt(services, broker, len(contacts) / rate, report, rng, supervisor)
                    await feeding
                    for service in services.values():
                        await ready(service)
                    await settled(broker.bootstrap, contacts, twilio, smtp, settle_seconds)
                    await asyncio.sleep(3)  # anything doubled arrives late
                    watching.cancel()
                    if tamper is not None:
                        tamper(twilio, smtp)
                    await count(broker.bootstrap, customers, contacts, twilio, smtp, report)
            finally:
                if watching is not None:
                    watching.cancel()
                for service in services.values():
                    service.stop()
    finally:
        await asyncio.to_thread(broker.stop)
    report.seconds = time.monotonic() - started
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=10_000, help="contacts, the three channels in turn")
    parser.add_argument("--rate", type=float, default=20.0, help="contacts sent per second")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--settle-seconds", type=float, default=600.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="deskstream-contact-chaos-"))
    report = asyncio.run(chaos_run(work, args.contacts, args.rate, args.seed, args.settle_seconds))
    conclude(report.summary(), report.clean, work)


if __name__ == "__main__":
    main()
