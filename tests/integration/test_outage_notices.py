"""Outage notices reach every affected customer once, on their channel, whatever the
notifier goes through.

The notifier runs alone here, on a Kafka of this module's own (its consumer groups
must not meet the session's notifier), sending through a real SMTP server and the
Twilio stand-in, with rate limits that keep a 2,000-recipient notice going for a few
seconds: long enough to kill the worker in the middle. Everything is checked
recipient by recipient, at the receiving end: the SMTP server's mail, the messages
the Twilio stand-in accepted, the records on `chat.outbound`.
"""
from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any, Iterator
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from deskstream.events import Event, utcnow
from deskstream.settings import KafkaSettings
from deskstream.pipeline import Publisher
from deskstream.recipients import recipient_key
from deskstream.topics import INCIDENTS_EVENTS, NOTIFY_RECEIPTS, NOTIFY_REQUESTS, TICKETS_EVENTS
from tests.contract.golden import EXAMPLES as GOLDEN
from tests.harness import ServiceProcess, own_kafka, read_topic, service_env
from tests.mailserver import Archive, SmtpCapture, temporary_dovecot
from tests.twilio_api import SUPPORT_NUMBER, TwilioApi

pytestmark = pytest.mark.integration

OPS_TOKEN = "outage-test-ops-token-0123456789abcdef"
SUPPORT = "soporte@deskstream.test"
ARCHIVE = "archivo@deskstream.test"
FAR_EAST = "Pacific/Kiritimati"  # UTC+14: quiet there while it is day in Madrid and UTC


class Outage:
    """The notifier and what it sends to, for this module."""

    def __init__(self, kafka: Any, smtp: SmtpCapture, twilio: TwilioApi, notifier: ServiceProcess, quiet_until: float) -> None:
        self.quiet_until = quiet_until  # epoch seconds when the night in Kiritimati ends
        self.kafka = kafka
        self.smtp = smtp
        self.twilio = twilio
        self.notifier = notifier

    async def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as http:
            async with http.request(method, f"{self.notifier.url}{path}", json=body,
                                    headers={"Authorization": f"Bearer {OPS_TOKEN}"}) as response:
                return response.status, await response.json(content_type=None)

    async def declare(self, service: str, **fields: Any) -> str:
        status, answer = await self.api("POST", "/api/incidents", {"service": service, "message": {
            "en": "A fibre cable was cut.", "es": "Se ha cortado un cable de fibra."}, **fields})
        assert status == 201, answer
        return answer["incident_id"]

    async def subscribe(self, service: str, recipients: list[dict[str, Any]]) -> None:
        for start in range(0, len(recipients), 1000):
            chunk = [{"service": service, **r} for r in recipients[start:start + 1000]]
            status, answer = await self.api("POST", "/api/subscriptions", {"subscriptions": chunk})
            assert status == 202, answer

    async def receipts(self, incident_id: str) -> list[Event]:
        return [e for e in await read_topic(self.kafka.bootstrap, NOTIFY_RECEIPTS, settle_ms=500)
                if e.data.get("incident_id") == incident_id]

    async def wait_receipts(self, incident_id: str, count: int, timeout: float = 90) -> list[Event]:
        deadline = time.monotonic() + timeout
        while True:
            found = await self.receipts(incident_id)
            if len({e.data["request_id"] for e in found}) >= count or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.5)

    def arrived(self) -> int:
        """How many messages the far ends have, all told (cheap enough to poll)."""
        return len(self.smtp.messages) + len(self.twilio.messages)

    def delivered(self, marker: str) -> Counter[str]:
        """Per recipient key, how many messages containing `marker` arrived at the far ends."""
        counts: Counter[str] = Counter()
        for _, rcpts, raw in list(self.smtp.messages):
            body = message_from_bytes(raw, policy=policy.default).get_body(("plain",)).get_content()
            if marker in body:
                for rcpt in rcpts:
                    if rcpt != ARCHIVE:
                        counts[f"email:{rcpt}"] += 1
        for sent in list(self.twilio.messages):
            if marker in sent.body:
                channel, number = ("whatsapp", sent.to[len("whatsapp:"):]) if sent.to.startswith("whatsapp:") else ("sms", sent.to)
                counts[f"{channel}:{number}"] += 1
        return counts


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    # The relay files a copy of each mail in an archive folder, which the notifier
    # searches for the sends a crash cut (services/notifier/sent_mail.py).
    with own_kafka("outage") as kafka, temporary_dovecot() as dovecot, \
            SmtpCapture(archive=Archive(dovecot, ARCHIVE)) as smtp, TwilioApi() as twilio:
        data_dir = tmp_path_factory.mktemp("outage")
        quiet_hours, quiet_until = quiet_window_far_east()
        env = service_env(
            kafka.bootstrap, data_dir,
            SMTP_HOST=smtp.host, SMTP_PORT=str(smtp.port), SMTP_STARTTLS="false", MAIL_FROM=SUPPORT,
            TWILIO_ACCOUNT_SID=twilio.account_sid, TWILIO_AUTH_TOKEN=twilio.auth_token, TWILIO_SMS_FROM=SUPPORT_NUMBER,
            TWILIO_API_URL=twilio.url, TWILIO_TIMEOUT_SECONDS="3", NOTIFIER_BACKOFF_SECONDS="0.05",
            NOTIFIER_RATES="email=300,sms=300,whatsapp=300", NOTIFIER_OPS_TOKEN=OPS_TOKEN,
            NOTIFIER_DEFAULT_TIMEZONE="Europe/Madrid", NOTIFIER_QUIET_HOURS=quiet_hours,
            NOTIFIER_QUIET_CHANNELS="sms,whatsapp,email", NOTIFIER_QUIET_OVERRIDES="P1,reply",
            NOTIFIER_SURGE_TICKETS="5", NOTIFIER_SURGE_WINDOW_MINUTES="10",
            SMTP_ARCHIVE_BCC=ARCHIVE, SENT_MAIL_IMAP_HOST=dovecot.host, SENT_MAIL_IMAP_PORT=str(dovecot.port),
            SENT_MAIL_IMAP_SSL="false", SENT_MAIL_IMAP_USER=dovecot.user, SENT_MAIL_IMAP_PASSWORD=dovecot.password,
            SENT_MAIL_ARRIVAL_SECONDS="1",
        )
        env["NOTIFIER_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{env['NOTIFIER_HTTP_PORT']}"
        notifier = ServiceProcess("notifier", env, Path(data_dir))
        notifier.start().wait_ready()
        try:
            yield Outage(kafka, smtp, twilio, notifier, quiet_until)
        finally:
            notifier.stop()


def quiet_window_far_east() -> tuple[str, float]:
    """Quiet hours that are on in Kiritimati for the next 75 seconds (and, 13 or 14 hours
    away from Madrid and UTC, off there): a short night for the quiet-hours test."""
    local = datetime.now(ZoneInfo(FAR_EAST)).replace(microsecond=0)
    start, end = local - timedelta(minutes=30), local + timedelta(seconds=75)
    return f"{start:%H:%M:%S}-{end:%H:%M:%S}", end.timestamp()


def customers(count: int, prefix: int) -> list[dict[str, Any]]:
    """`count` subscribers, on e-mail, SMS and WhatsApp in turn, in both languages."""
    people = []
    for n in range(count):
        channel = ("email", "sms", "whatsapp", "email", "sms")[n % 5]
        address = f"cliente{prefix}-{n}@example.test" if channel == "email" else f"+346{prefix % 10}{n:07d}"
        people.append({"recipient": {"channel": channel, "address": address}, "language": ("es", "en")[n % 2], "name": f"Cliente {n}"})
    return people


def final_receipts(receipts: list[Event]) -> dict[str, Event]:
    """The receipt of each request, checking that none has two."""
    ids = Counter(e.id for e in receipts)
    assert not [i for i, n in ids.items() if n > 1], "a receipt is on the topic twice"
    by_request: dict[str, list[Event]] = {}
    for event in receipts:
        by_request.setdefault(event.data["request_id"], []).append(event)
    two = {r: [e.data["status"] for e in found] for r, found in by_request.items() if len(found) > 1}
    assert not two, f"requests settled twice: {two}"
    return {r: found[0] for r, found in by_request.items()}


async def test_quiet_hours_hold_a_notice_until_the_recipient_s_morning_and_opt_outs_hold_always(outage: Outage):
    night = {"recipient": {"channel": "email", "address": "noche@example.test"}, "language": "es", "timezone": FAR_EAST}
    day = {"recipient": {"channel": "email", "address": "dia@example.test"}, "language": "es", "timezone": "Europe/Madrid"}
    stopped = {"recipient": {"channel": "sms", "address": "+34699000111"}, "language": "es"}
    await opt_out(outage, stopped["recipient"])
    await outage.subscribe("quiet-svc", [night, day, stopped])
    incident = await outage.declare("quiet-svc")
    assert time.time() < outage.quiet_until - 10, "the test started too late for its own night"

    settled = final_receipts(await outage.wait_receipts(incident, 2))
    by_recipient = {e.data["recipient"]["address"]: e.data for e in settled.values()}
    assert by_recipient["dia@example.test"]["status"] == "sent"
    assert by_recipient["+34699000111"]["status"] == "failed" and "opted out" in by_recipient["+34699000111"]["detail"]
    assert "noche@example.test" not in by_recipient and time.time() < outage.quiet_until

    settled = final_receipts(await outage.wait_receipts(incident, 3, timeout=outage.quiet_until - time.time() + 30))
    night_receipt = next(e for e in settled.values() if e.data["recipient"]["address"] == "noche@example.test")
    assert night_receipt.data["status"] == "sent"
    assert datetime.fromisoformat(night_receipt.data["attempted_at"].replace("Z", "+00:00")).timestamp() >= outage.quiet_until
    delivered = outage.delivered("quiet-svc")
    assert (delivered["email:noche@example.test"], delivered["email:dia@example.test"], delivered["sms:+34699000111"]) == (1, 1, 0)


async def opt_out(outage: Outage, recipient: dict[str, str]) -> None:
    """What intake publishes when an SMS says STOP."""
    data = {"recipient": recipient, "keyword": "STOP", "message_sid": "SM" + "0" * 32, "recorded_at": utcnow()}
    await publish(outage, NOTIFY_REQUESTS, recipient_key(recipient),
                  Event(type="consent.opted_out", source="deskstream/intake", id=f"consent.{recipient['address']}", data=data))


async def publish(outage: Outage, topic: str, key: str, *events: Event) -> None:
    publisher = Publisher(KafkaSettings.from_env({"KAFKA_BOOTSTRAP_SERVERS": outage.kafka.bootstrap}), "test-publisher")
    await publisher.start()
    try:
        for event in events:
            await publisher.send_and_wait(topic, key, event.encode())
    finally:
        await publisher.stop()


async def test_a_notice_to_2000_customers_reaches_each_once_though_the_notifier_is_killed_in_the_middle(outage: Outage):
    people = customers(2000, prefix=1)
    await outage.subscribe("fibra-madrid", people)
    incident = await outage.declare("fibra-madrid", region="ES", skill="network")
    while len({e.data["request_id"] for e in await outage.receipts(incident)}) < 300:
        await asyncio.sleep(0.1)
    outage.notifier.signal(signal.SIGKILL)  # in the middle of the notice
    await asyncio.to_thread(outage.notifier.start().wait_ready)

    settled = final_receipts(await outage.wait_receipts(incident, len(people)))
    by_recipient = {recipient_key(e.data["recipient"]): e for e in settled.values()}
    expected = {recipient_key(p["recipient"]) for p in people}
    assert set(by_recipient) == expected, f"never settled: {sorted(expected - set(by_recipient))[:10]}"

    delivered = outage.delivered("fibra-madrid")
    statuses = Counter(e.data["status"] for e in by_recipient.values())
    # Nothing in doubt: a cut SMS is looked up at Twilio, a cut e-mail in the archive folder.
    assert set(statuses) == {"sent"}, statuses
    for key, receipt in by_recipient.items():
        assert delivered[key] == 1, f"{key}: {delivered[key]} notices, receipt {receipt.data['detail']}"


async def test_an_update_during_the_send_reaches_everyone_once_and_replaces_the_notices_still_waiting(outage: Outage):
    people = customers(2000, prefix=2)
    await outage.subscribe("movil-norte", people)
    before = outage.arrived()
    incident = await outage.declare("movil-norte", region="ES")
    while outage.arrived() < before + 100:  # the notice is on its way
        await asyncio.sleep(0.02)
    status, answer = await outage.api("POST", f"/api/incidents/{incident}/updates",
                                      {"message": {"en": "Technicians are on site.", "es": "Hay técnicos en el lugar."}})
    assert status == 202, answer

    settled = final_receipts(await outage.wait_receipts(incident, 2 * len(people)))
    told: dict[str, list[str]] = {}
    for receipt in settled.values():
        told.setdefault(recipient_key(receipt.data["recipient"]), []).append(receipt.data["status"])
    assert len(told) == len(people)
    for key, statuses in told.items():
        # two requests each (declared, updated): the update went out; the first either
        # went out before it or was replaced while it waited
        assert sorted(statuses) in (["sent", "sent"], ["sent", "superseded"]), (key, statuses)
    replaced = sum("superseded" in s for s in told.values())
    assert 0 < replaced < len(people), f"{replaced} first notices replaced: the update did not land mid-send"
    # the progress of the notice is in the worker's metrics, receipt for receipt
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{outage.notifier.url}/metrics") as response:
            metrics = await response.text()
    for status in ("sent", "superseded"):
        line = f'deskstream_notifier_incident_notices_total{{incident_id="{incident}",status="{status}"}}'
        counted = next(float(row.split()[-1]) for row in metrics.splitlines() if row.startswith(line))
        assert counted == sum(s.count(status) for s in told.values()), (status, counted)
    updates = outage.delivered("Technicians are on site.") + outage.delivered("Hay técnicos en el lugar.")
    notices = outage.delivered("movil-norte")
    for key, statuses in told.items():
        assert updates[key] == 1, (key, updates[key])
        assert notices[key] == statuses.count("sent"), (key, notices[key], statuses)


async def test_a_request_repeated_is_sent_once(outage: Outage):
    request = {"request_id": "T-AAAAAAAA.reply.repeat", "ticket_id": "T-AAAAAAAA", "reason": "reply",
               "recipient": {"channel": "email", "address": "repeat@example.test"}, "language": "en",
               "template": "agent_reply", "params": {"ticket_id": "T-AAAAAAAA", "text": "Repeat marker 7731", "agent_name": "Ana"}}
    event = Event(type="notify.requested", source="deskstream/notifier", id=request["request_id"], data=request, subject="T-AAAAAAAA")
    await publish(outage, NOTIFY_REQUESTS, "email:repeat@example.test", event, event, event)
    deadline = time.monotonic() + 30
    while outage.delivered("Repeat marker 7731")["email:repeat@example.test"] < 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)
    assert outage.delivered("Repeat marker 7731")["email:repeat@example.test"] == 1


def sms_ticket(ticket_id: str, phone: str, skill: str) -> tuple[Event, Event]:
    """A ticket opened by SMS and its classification, as intake and router write them."""
    created = Event.decode((GOLDEN / "ticket.created" / "sms-es.json").read_bytes())
    data = {**created.data, "ticket_id": ticket_id, "thread_key": f"sms:{phone}", "reply_to": {"channel": "sms", "address": phone},
            "customer": {**created.data["customer"], "phone": phone, "id": f"cus-{ticket_id[2:].lower()}"}}
    classified = Event.decode((GOLDEN / "ticket.classified" / "chat-es-network.json").read_bytes())
    return (Event(type="ticket.created", source="deskstream/intake", id=f"{ticket_id}.created", data=data, subject=ticket_id),
            Event(type="ticket.classified", source="deskstream/router", id=f"{ticket_id}.classified",
                  data={**classified.data, "ticket_id": ticket_id, "skill": skill}, subject=ticket_id))


async def test_a_surge_of_tickets_is_reported_to_ops_once_and_never_to_customers(outage: Outage):
    tickets = [f"T-SVRGE{n}AA" for n in "234567"]
    for n, ticket_id in enumerate(tickets):
        await publish(outage, TICKETS_EVENTS, ticket_id, *sms_ticket(ticket_id, f"+5255000000{n:02d}", "hardware"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        suspected = [e for e in await read_topic(outage.kafka.bootstrap, INCIDENTS_EVENTS, settle_ms=500)
                     if e.type == "incident.suspected" and e.data["value"] in ("hardware", "MX")]
        if len(suspected) >= 2:
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(2)  # time for a second report, which must not come
    suspected = [e for e in await read_topic(outage.kafka.bootstrap, INCIDENTS_EVENTS, settle_ms=500)
                 if e.type == "incident.suspected" and e.data["value"] in ("hardware", "MX")]
    assert sorted((e.data["dimension"], e.data["value"]) for e in suspected) == [("region", "MX"), ("skill", "hardware")]
    assert all(e.data["ticket_ids"] == tickets[:5] for e in suspected)
    # the customers got their acknowledgements, and nothing about a suspected incident
    bodies = [m.body for m in outage.twilio.messages if m.to.startswith("+5255")]
    assert len(bodies) == len(tickets) and all("T-SVRGE" in body for body in bodies)


async def wait_messages(outage: Outage, number: str, count: int, timeout: float = 30) -> list[Any]:
    deadline = time.monotonic() + timeout
    while len(outage.twilio.sent_to(number)) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    return outage.twilio.sent_to(number)


async def test_open_tickets_and_new_ones_hear_of_an_incident_and_of_its_resolution(outage: Outage):
    await publish(outage, TICKETS_EVENTS, "T-EARLYAAA", *sms_ticket("T-EARLYAAA", "+34655000888", "network"))
    [early_ack] = await wait_messages(outage, "+34655000888", 1)
    assert "fibra-sur" not in early_ack.body
    incident = await outage.declare("fibra-sur", region="ES", skill="network", expected_fix_at="2099-01-01T18:00:00Z")
    messages = await wait_messages(outage, "+34655000888", 2)
    assert len(messages) == 2 and "fibra-sur" in messages[1].body and "Se ha cortado un cable de fibra." in messages[1].body
    await asyncio.sleep(2)  # the incident reaches the acknowledgements hop's replica
    await publish(outage, TICKETS_EVENTS, "T-LINKEDAA", *sms_ticket("T-LINKEDAA", "+34655000999", "network"))
    [acknowledgement] = await wait_messages(outage, "+34655000999", 1)
    assert "T-LINKEDAA" in acknowledgement.body and "fibra-sur" in acknowledgement.body
    linked = [e for e in await read_topic(outage.kafka.bootstrap, INCIDENTS_EVENTS, settle_ms=500)
              if e.type == "incident.ticket_linked" and e.data["incident_id"] == incident]
    assert [e.data["ticket_id"] for e in linked] == ["T-LINKEDAA"]

    status, answer = await outage.api("POST", f"/api/incidents/{incident}/resolve", {"message": {"es": "Cable reparado."}})
    assert status == 202, answer
    for number, before in (("+34655000999", 1), ("+34655000888", 2)):
        messages = await wait_messages(outage, number, before + 1)
        assert len(messages) == before + 1 and "Cable reparado." in messages[-1].body, number
    await asyncio.sleep(2)
    assert (len(outage.twilio.sent_to("+34655000999")), len(outage.twilio.sent_to("+34655000888"))) == (2, 3)
