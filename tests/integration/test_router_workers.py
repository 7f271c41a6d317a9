"""Two router workers decide as one: no agent over capacity, no ticket assigned twice,
and every assignment exactly the one a single dispatcher makes from the same records.

On a broker of its own: 120 tickets for 4 agents of 2 tickets each, resolutions
through the agent API of either worker while tickets keep coming, an agent going
offline (handing back what they had not answered) and online again with more
capacity, and one of the two workers SIGKILLed and restarted in the middle; then both
workers' supervisor views must agree, and an agent takes a waiting ticket through one
of them. Afterwards the `router.dispatch`
partition (the dispatcher's input, in order) is replayed through the same pure
function the dispatch hop runs (`routing.dispatch`), and what it decides must be what
the workers published, assignment by assignment.
"""
from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import random
import signal
import time
from datetime import datetime

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from deskstream.events import Event
from deskstream.topics import ROUTER_DISPATCH, TICKETS_EVENTS
from services.intake.normaliser import Thread, normalise
from services.router import assignment, routing
from services.router.roster import load_roster
from tests.agent_api import AgentApi
from tests.dispatcher import Dispatcher
from tests.harness import ServiceProcess, own_kafka, read_topic, running, service_env, wait_for_events

pytestmark = pytest.mark.integration

TICKETS = 120
LATE_TICKETS = 12  # after the resolutions: more than the agents' 9 places, so some wait
TEXTS = [
    ("No tengo internet desde ayer", "es"), ("The app crashes when I sync", "en"), ("Me cobraron dos veces la factura", "es"),
    ("I cannot log in to my account", "en"), ("La pantalla del portátil no enciende", "es"), ("How do I change my plan?", "en"),
]
AGENTS = [
    {"id": "ana", "skills": ["general", "account", "billing"], "tier": "L1", "languages": ["es", "en"]},
    {"id": "ben", "skills": ["general", "software", "account"], "tier": "L1", "languages": ["en"]},
    {"id": "lucia", "skills": ["network", "hardware", "general"], "tier": "L1", "languages": ["es", "en"]},
    {"id": "omar", "skills": ["network", "software", "hardware", "billing"], "tier": "L2", "languages": ["en", "es"]},
]


def token_of(agent_id: str) -> str:
    return f"test-token-{agent_id}-" + "k" * 24


@pytest.fixture
def two_routers(tmp_path):
    supervisor = {"id": "sam", "skills": [], "tier": "L2", "languages": ["es", "en"], "role": "supervisor", "max_concurrent": 0}
    roster = {"agents": [{"name": agent["id"].title(), "max_concurrent": 2, **agent,
                          "token_sha256": hashlib.sha256(token_of(agent["id"]).encode()).hexdigest()} for agent in [*AGENTS, supervisor]]}
    roster_path = tmp_path / "roster.json"
    roster_path.write_text(json.dumps(roster))
    with own_kafka("routers") as broker:
        workers = []
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            workers.append(ServiceProcess("router", service_env(broker.bootstrap, tmp_path / name, ROUTER_ROSTER_PATH=str(roster_path)),
                                          tmp_path / name))
        with running(*workers) as routers:
            yield broker, list(routers), roster_path


def ticket_created(n: int) -> Event:
    text, language = TEXTS[n % len(TEXTS)]
    contact = {
        "contact_id": f"router-workers-{n}", "channel": "chat", "thread_key": f"chat:router-workers-{n}",
        "received_at": f"2026-12-02T10:{n // 60:02d}:{n % 60:02d}.000Z",
        "customer": {"id": f"cus-{n}", "language": language}, "subject": None, "body_text": f"{text} ({n})",
        "reply_to": {"channel": "chat", "address": f"router-workers-{n}"},
    }
    [created] = normalise(contact, Thread())
    return Event(created.type, "deskstream/intake", created.id, created.data, created.ticket_id)


async def publish_tickets(bootstrap: str, numbers: range) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for n in numbers:
            event = ticket_created(n)
            await producer.send_and_wait(TICKETS_EVENTS, key=event.subject.encode(), value=event.encode())
            await asyncio.sleep(0.02)
    finally:
        await producer.stop()


async def resolve_some(bootstrap: str, routers: list[ServiceProcess], until: float, resolved: set[str]) -> None:
    """Resolve the assigned tickets after random delays (each pass takes about half of
    those still open), through either worker's API, as the agents who hold them (a
    ticket handed back and given to another is theirs then)."""
    rng = random.Random(7)
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < until:
            holders = {e.data["ticket_id"]: e.data["agent_id"] for e in await read_topic(bootstrap, TICKETS_EVENTS, settle_ms=300)
                       if e.type == "ticket.assigned"}
            for ticket_id, agent_id in holders.items():
                if ticket_id in resolved or rng.random() < 0.5:
                    continue
                for router in rng.sample(routers, len(routers)):  # either worker; a killed one refuses
                    try:
                        status, _ = await AgentApi(http, router.url, token_of(agent_id)).post(
                            f"/api/tickets/{ticket_id}/resolve", key=ticket_id)
                    except aiohttp.ClientError:
                        continue
                    if status == 202:
                        resolved.add(ticket_id)
                        break
            await asyncio.sleep(0.5)


async def set_presence(router: ServiceProcess, agent_id: str, body: dict) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{router.url}/api/agents/me/presence", json=body,
                             headers={"Authorization": f"Bearer {token_of(agent_id)}"}) as answer:
            assert answer.status == 202, await answer.text()


async def test_two_router_workers_decide_as_one(two_routers):
    broker, routers, roster_path = two_routers
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": token_of("ana")}):
            async with http.post(f"{routers[1].url}/api/tickets/T-AAAAAAAA/resolve", headers=headers) as answer:
                assert answer.status == 401
    resolved: set[str] = set()
    resolver = asyncio.ensure_future(resolve_some(broker.bootstrap, routers, time.monotonic() + 40, resolved))
    await publish_tickets(broker.bootstrap, range(0, TICKETS // 3))
    await set_presence(routers[1], "omar", {"presence": "offline"})
    await publish_tickets(broker.bootstrap, range(TICKETS // 3, TICKETS // 2))
    await set_presence(routers[0], "omar", {"presence": "online", "max_concurrent": 3})
    await asyncio.to_thread(routers[0].signal, signal.SIGKILL)
    await publish_tickets(broker.bootstrap, range(TICKETS // 2, TICKETS))
    routers[0].start()
    await asyncio.to_thread(routers[0].wait_ready, 90)
    await resolver
    await publish_tickets(broker.bootstrap, range(TICKETS, TICKETS + LATE_TICKETS))

    created = {ticket_created(n).subject for n in range(TICKETS + LATE_TICKETS)}
    deadline = time.monotonic() + 90
    while True:
        events = [e for e in await read_topic(broker.bootstrap, TICKETS_EVENTS) if e.data.get("ticket_id") in created]
        classified = collections.Counter(e.data["ticket_id"] for e in events if e.type == "ticket.classified")
        if set(classified) == created or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    assert set(classified) == created and set(classified.values()) == {1}

    assigned_ids = collections.Counter(e.id for e in events if e.type == "ticket.assigned")
    assert [i for i, n in assigned_ids.items() if n > 1] == []
    published = {e.id: e.data["agent_id"] for e in events if e.type == "ticket.assigned"}
    assert all(e.data["resolved_by"] for e in events if e.type == "ticket.resolved")

    # Both workers answer the agent API alike, from their copies of the dispatcher's tables.
    async with aiohttp.ClientSession() as http:
        views = [AgentApi(http, router.url, token_of("sam")) for router in routers]
        for _ in range(100):
            desks = [(await view.get("/api/supervisor"))[1] for view in views]
            if desks[0] == desks[1]:
                break
            await asyncio.sleep(0.2)
        assert desks[0] == desks[1] and desks[0]["queued"], "the queue should still hold tickets"
        assert (await AgentApi(http, routers[0].url, token_of("ana")).get("/api/supervisor"))[0] == 403
        # An agent takes a waiting ticket through the other worker, past the router's capacity.
        agents = [agent for agent in load_roster(roster_path) if agent.id in {a["id"] for a in AGENTS}]
        takers = [(ticket, agent.id) for ticket in desks[0]["queued"] for agent in agents if routing.may_take(agent, ticket)]
        assert takers, f"no agent may take any waiting ticket: {desks[0]['queued']}"
        waiting, taker = takers[0]
        status, asked = await AgentApi(http, routers[1].url, token_of(taker)).post(f"/api/tickets/{waiting['ticket_id']}/accept")
        assert status == 202, asked
    [taken] = await wait_for_events(broker.bootstrap, TICKETS_EVENTS, lambda e: e.type == "ticket.assigned" and e.data[
        "ticket_id"] == waiting["ticket_id"] and e.data["agent_id"] == taker, 1, 30)
    events = [e for e in await read_topic(broker.bootstrap, TICKETS_EVENTS) if e.data.get("ticket_id") in created]
    published = {e.id: e.data["agent_id"] for e in events if e.type == "ticket.assigned"}

    # The dispatcher's input, in order, through the dispatcher's own function.
    roster = load_roster(roster_path)
    dispatcher = Dispatcher(roster)
    board, agents = dispatcher.tickets, dispatcher.agents
    decided: dict[str, str] = {}
    requeued: set[str] = set()
    taken_by_choice: set[str] = set()  # capacity bounds what the router gives, not what an agent takes
    dispatch_records = await read_topic(broker.bootstrap, ROUTER_DISPATCH)
    for record in dispatch_records:
        now = datetime.fromisoformat(record.time.replace("Z", "+00:00"))
        outcome = dispatcher.run(record.type, record.data, now)
        decided.update({given.event_id: given.data["agent_id"] for given in outcome.assignments})
        requeued.update(f"{r['ticket_id']}.requeued.{r['requeues']}" for r in outcome.requeued)
        if record.type == "dispatch.accept_requested":
            taken_by_choice.update(given.data["ticket_id"] for given in outcome.assignments)
        capacity = {agent.id: agent.max_concurrent for agent in routing.available(roster, agents)}
        held = assignment.loads(t for t in routing.open_tickets(board.values()) if t["ticket_id"] not in taken_by_choice)
        assert all(held[agent] <= capacity.get(agent, held[agent]) for agent in held), held
        assert all(agent in capacity or (agents.get(agent) or {}).get("presence") == "away" for agent in held), (held, agents)
    assert taken.id in decided
    assert decided == published
    assert requeued == {e.id for e in events if e.type == "ticket.requeued"} and requeued  # omar's, handed back
    assert len(decided) > 8 * 2 and resolved  # queues filled, capacity freed and given again
