"""Service targets on the real broker: a first-line ticket left unanswered past its
first-response target is announced (`ticket.sla_breached`, once), escalated, handed
back by its first-line agent and given to second line; an answered one is not; an
agent's own escalation goes the same way. Targets of seconds, ticks every second.
"""
from __future__ import annotations

import asyncio
import hashlib
import json

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from deskstream.events import Event, utcnow
from deskstream.topics import TICKETS_EVENTS
from services.intake.normaliser import Thread, normalise
from tests.agent_api import AgentApi
from tests.harness import ServiceProcess, own_kafka, read_topic, running, service_env, wait_for_events

pytestmark = pytest.mark.integration

MINUTES = "0.2"  # twelve seconds, for every priority
ROSTER = [
    {"id": "ana", "skills": ["network", "general"], "tier": "L1"},
    {"id": "omar", "skills": ["network", "general"], "tier": "L2"},
]


def token_of(agent_id: str) -> str:
    return f"sla-token-{agent_id}-" + "q" * 24


@pytest.fixture
def router(tmp_path):
    roster = {"agents": [{**a, "name": a["id"].title(), "languages": ["es", "en"], "max_concurrent": 5,
                          "token_sha256": hashlib.sha256(token_of(a["id"]).encode()).hexdigest()} for a in ROSTER]}
    (tmp_path / "roster.json").write_text(json.dumps(roster))
    with own_kafka("sla") as broker:
        targets = ",".join(f"P{n}={MINUTES}" for n in range(1, 5))
        env = service_env(broker.bootstrap, tmp_path, ROUTER_ROSTER_PATH=str(tmp_path / "roster.json"),
                          ROUTER_SLA_FIRST_RESPONSE_MINUTES=targets, ROUTER_SLA_TICK_SECONDS="1")
        with running(ServiceProcess("router", env, tmp_path)) as (service,):
            yield broker, service


async def open_ticket(bootstrap: str, n: int, text: str) -> str:
    contact = {"contact_id": f"sla-{n}", "channel": "chat", "thread_key": f"chat:sla-{n}", "received_at": utcnow(),
               "customer": {"id": f"cus-{n}", "language": "es"}, "subject": None, "body_text": text,
               "reply_to": {"channel": "chat", "address": f"sla-{n}"}}
    [created] = normalise(contact, Thread())
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        event = Event(created.type, "deskstream/intake", created.id, created.data, created.ticket_id)
        await producer.send_and_wait(TICKETS_EVENTS, key=created.ticket_id.encode(), value=event.encode())
    finally:
        await producer.stop()
    return created.ticket_id


async def act(router: ServiceProcess, ticket_id: str, action: str, body: dict) -> int:
    """As ana, once the router's API sees the ticket as hers."""
    async with aiohttp.ClientSession() as http:
        ana = AgentApi(http, router.url, token_of("ana"))
        await ana.ticket_when(ticket_id, lambda t: t["agent_id"] == "ana")
        return (await ana.post(f"/api/tickets/{ticket_id}/{action}", body))[0]


def about(ticket_id: str, event_type: str):
    return lambda e: e.type == event_type and e.data.get("ticket_id") == ticket_id


async def test_missed_targets_escalate_and_answered_tickets_do_not(router):
    broker, service = router
    text = "La conexión a internet va lenta a veces"  # network, P3, first line
    late, answered, asked = [await open_ticket(broker.bootstrap, n, text) for n in range(3)]
    for ticket_id in (late, answered, asked):
        [first] = await wait_for_events(broker.bootstrap, TICKETS_EVENTS, about(ticket_id, "ticket.assigned"), 1, 30)
        assert first.data["agent_id"] == "ana" and first.data["tier"] == "L1"
    assert await act(service, answered, "reply", {"text": "Estamos revisando tu línea."}) == 202
    assert await act(service, asked, "escalate", {"reason": "Necesita un técnico de segundo nivel"}) == 202

    [breach] = await wait_for_events(broker.bootstrap, TICKETS_EVENTS, about(late, "ticket.sla_breached"), 1, 30)
    assert (breach.data["target"], breach.data["agent_id"]) == ("first_response", "ana")
    for ticket_id, reason, by in ((late, "sla_breached:first_response", None), (asked, "Necesita un técnico de segundo nivel", "ana")):
        [escalated] = await wait_for_events(broker.bootstrap, TICKETS_EVENTS, about(ticket_id, "ticket.escalated"), 1, 30)
        assert (escalated.data["reason"], escalated.data["escalated_by"]) == (reason, by)
        [requeued] = await wait_for_events(broker.bootstrap, TICKETS_EVENTS, about(ticket_id, "ticket.requeued"), 1, 30)
        assert requeued.data["reason"] == "escalated"
        given = await wait_for_events(broker.bootstrap, TICKETS_EVENTS, about(ticket_id, "ticket.assigned"), 2, 30)
        assert [(e.data["agent_id"], e.data["tier"]) for e in given] == [("ana", "L1"), ("omar", "L2")]

    await asyncio.sleep(3)  # ticks keep coming: nothing is announced twice, the answered ticket never breaches
    events = await read_topic(broker.bootstrap, TICKETS_EVENTS)
    assert [e.data["target"] for e in events if about(late, "ticket.sla_breached")(e)] == ["first_response"]
    assert not [e for e in events if about(answered, "ticket.sla_breached")(e) or about(answered, "ticket.escalated")(e)]
