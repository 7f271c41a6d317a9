"""Services stopped or killed mid-traffic come back without losing or doubling work.

Checked ticket by ticket, never by counts: every ticket a customer opened is
classified once and assigned to exactly one agent, whatever the router went through.
"""
from __future__ import annotations

import asyncio
import signal
import time

import aiohttp
import pytest

from deskstream.topics import TICKETS_EVENTS
from tests.harness import SERVICES, by_ticket, read_topic
from tests.integration.chat_client import ChatCustomer

pytestmark = pytest.mark.integration

TEXTS = ["Mi internet va muy lento", "I cannot log in to my account", "Me cobraron dos veces", "The app crashes", "La pantalla no enciende"]


async def open_tickets(base_url: str, count: int, spread_seconds: float) -> list[ChatCustomer]:
    async with aiohttp.ClientSession() as http:
        customers = [ChatCustomer(http, base_url, name=f"Kill {n}") for n in range(count)]
        for n, customer in enumerate(customers):
            await customer.say(TEXTS[n % len(TEXTS)])
            await asyncio.sleep(spread_seconds / count)
    return customers


async def tickets_of(bootstrap: str, customers: list[ChatCustomer], timeout: float = 60) -> dict[str, str]:
    """Each customer's ticket id, found by its chat thread on `tickets.events`."""
    threads = {f"chat:{c.session_id}" for c in customers}
    deadline = time.monotonic() + timeout
    while True:
        created = {e.data["thread_key"]: e.data["ticket_id"] for e in await read_topic(bootstrap, TICKETS_EVENTS)
                   if e.type == "ticket.created" and e.data["thread_key"] in threads}
        if len(created) == len(threads) or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    assert set(created) == threads, f"contacts that never became tickets: {sorted(threads - set(created))}"
    return created


async def assert_each_ticket_routed_once(bootstrap: str, tickets: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        events = [e for e in await read_topic(bootstrap, TICKETS_EVENTS) if e.data.get("ticket_id") in set(tickets)]
        assigned = by_ticket(events, "ticket.assigned")
        if set(assigned) == set(tickets) or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    for kind in ("ticket.created", "ticket.classified"):
        ids = {t: {e.id for e in found} for t, found in by_ticket(events, kind).items()}
        assert set(ids) == set(tickets), f"{kind} missing for {sorted(set(tickets) - set(ids))}"
        assert all(len(v) == 1 for v in ids.values()), f"{kind} with two different ids: {ids}"
    missing = sorted(set(tickets) - set(assigned))
    assert not missing, f"never assigned: {missing}"
    twice = {t: sorted({(e.id, e.data["agent_id"]) for e in found}) for t, found in assigned.items()}
    assert all(len(v) == 1 for v in twice.values()), f"assigned twice: { {t: v for t, v in twice.items() if len(v) > 1} }"


async def assert_each_customer_acknowledged(customers: list[ChatCustomer], tickets: dict[str, str]) -> None:
    async with aiohttp.ClientSession() as http:
        for customer in customers:
            customer.http = http
        received = await asyncio.gather(*(c.messages(1, timeout=30) for c in customers))
    for customer, messages in zip(customers, received):
        assert messages[0]["ticket_id"] == tickets[f"chat:{customer.session_id}"]


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
async def test_the_router_restarted_mid_traffic_loses_no_ticket_and_assigns_none_twice(pipeline_services, kafka, signum):
    router, intake = pipeline_services["router"], pipeline_services["intake"]
    traffic = asyncio.ensure_future(open_tickets(intake.url, 40, spread_seconds=4))
    await asyncio.sleep(1.5)
    took = await asyncio.to_thread(router.signal, signum)
    if signum == signal.SIGTERM:
        assert took < 10, f"router took {took:.1f} s to stop on SIGTERM"
    router.start()
    customers = await traffic
    await asyncio.to_thread(router.wait_ready)
    tickets = await tickets_of(kafka.bootstrap, customers)
    assert len(set(tickets.values())) == len(customers)
    await assert_each_ticket_routed_once(kafka.bootstrap, list(tickets.values()))
    await assert_each_customer_acknowledged(customers, tickets)


async def test_every_service_stops_within_10_seconds_on_sigterm_and_comes_back(pipeline_services):
    for name in SERVICES:
        service = pipeline_services[name]
        took = await asyncio.to_thread(service.signal, signal.SIGTERM)
        assert took < 10, f"{name} took {took:.1f} s to stop"
        assert service.process.returncode == 0, f"{name} exited with {service.process.returncode}:\n{service.log_tail()}"
        service.start()
        await asyncio.to_thread(service.wait_ready)
