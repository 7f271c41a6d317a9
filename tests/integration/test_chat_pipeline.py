"""Web chat through all four services on the real broker: contact, ticket, triage,
assignment, acknowledgement, checked event by event against the contract."""
from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from deskstream.contract import default_contract
from deskstream.topics import DEADLETTER, TICKETS_EVENTS
from tests.harness import by_ticket, read_topic, wait_for_events
from tests.integration.chat_client import ChatCustomer

pytestmark = pytest.mark.integration

TICKET = re.compile(r"T-[A-Z2-7]{8}")


async def test_a_chat_message_is_acknowledged_with_its_ticket_number_and_wait(pipeline_services, kafka):
    intake = pipeline_services["intake"]
    async with aiohttp.ClientSession() as http:
        customer = ChatCustomer(http, intake.url, name="Marta López")
        await customer.say("Hola, mi internet no funciona desde ayer y estoy harto")
        [ack] = await customer.messages(1)
    ticket_id = ack["ticket_id"]
    assert TICKET.fullmatch(ticket_id)
    assert ack["kind"] == "acknowledgement"
    assert ticket_id in ack["text"] and "Hola Marta" in ack["text"] and "minutos" in ack["text"]

    events = await wait_for_events(kafka.bootstrap, TICKETS_EVENTS, lambda e: e.data.get("ticket_id") == ticket_id, 3)
    types = [e.type for e in events]
    assert types[:3] == ["ticket.created", "ticket.classified", "ticket.assigned"]
    contract = default_contract()
    for event in events:
        contract.validate(event.to_dict())
    classified = events[1].data
    assert (classified["skill"], classified["language"]) == ("network", "es")
    assert classified["signals"]["customer_hint"] == "upset"


async def test_later_messages_join_the_same_ticket(pipeline_services, kafka):
    async with aiohttp.ClientSession() as http:
        customer = ChatCustomer(http, pipeline_services["intake"].url, name="Sam", language="en")
        await customer.say("My invoice shows a charge I do not recognise")
        [ack] = await customer.messages(1)
        await customer.say("It is the one from November, please check")
        await customer.say("It is the one from November, please check", client_message_id="retry-1")
        await customer.say("It is the one from November, please check", client_message_id="retry-1")
    ticket_id = ack["ticket_id"]
    events = await wait_for_events(kafka.bootstrap, TICKETS_EVENTS, lambda e: e.data.get("ticket_id") == ticket_id and e.type == "ticket.message_received", 2)
    await asyncio.sleep(1)
    events = [e for e in await read_topic(kafka.bootstrap, TICKETS_EVENTS) if e.data.get("ticket_id") == ticket_id]
    assert [e.type for e in events].count("ticket.created") == 1
    follow_ups = {e.id for e in events if e.type == "ticket.message_received"}
    assert len(follow_ups) == 2, "a client retry with the same message id must not make a third message"


async def test_many_customers_each_get_exactly_their_own_ticket(pipeline_services, kafka):
    texts = [
        "No puedo iniciar sesión, mi contraseña no funciona",
        "The app crashes on start since the update",
        "Me cobraron dos veces este mes",
        "Our whole office has no internet, nobody can work",
        "How do I change the e-mail on my account?",
        "La impresora no enciende",
    ] * 3
    async with aiohttp.ClientSession() as http:
        customers = [ChatCustomer(http, pipeline_services["intake"].url, name=f"Customer {n}") for n in range(len(texts))]
        await asyncio.gather(*(c.say(t) for c, t in zip(customers, texts)))
        acks = await asyncio.gather(*(c.messages(1) for c in customers))
    tickets = [messages[0]["ticket_id"] for messages in acks]
    assert len(set(tickets)) == len(customers)
    events = await wait_for_events(kafka.bootstrap, TICKETS_EVENTS, lambda e: e.data.get("ticket_id") in tickets and e.type == "ticket.assigned", len(tickets))
    assigned = by_ticket(events, "ticket.assigned")
    assert set(assigned) == set(tickets)


async def test_a_first_message_repeated_in_its_opened_session_is_one_ticket(pipeline_services, kafka):
    async with aiohttp.ClientSession() as http:
        customer = ChatCustomer(http, pipeline_services["intake"].url)
        await customer.open()
        first = await customer.say("Se me cortó la conexión al enviar", client_message_id="first")
        again = await customer.say("Se me cortó la conexión al enviar", client_message_id="first")  # its answer was lost
        [ack] = await customer.messages(1)
    assert first == again
    created = await wait_for_events(kafka.bootstrap, TICKETS_EVENTS, lambda e: e.type == "ticket.created"
                                    and e.data["reply_to"]["address"] == customer.session_id, 1)
    assert [event.data["ticket_id"] for event in created] == [ack["ticket_id"]]


async def test_bad_records_on_a_topic_are_dead_lettered_and_the_pipeline_goes_on(pipeline_services, kafka):
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait("intake.raw", b"not json at all", key=b"chat:bad")
        await producer.send_and_wait("intake.raw", b'{"specversion":"1.0","id":"x","source":"deskstream/intake","type":"contact.received","time":"2026-11-22T10:00:00Z","datacontenttype":"application/json","dataschema":"https://deskstream.dev/schemas/contact.received.json","data":{"channel":"pigeon"}}', key=b"chat:bad")
    finally:
        await producer.stop()
    dead = await wait_for_events(kafka.bootstrap, DEADLETTER, lambda e: e.data["key"] == "chat:bad", 2)
    reasons = sorted(e.data["reason"] for e in dead)
    assert any(reason.startswith("not JSON") for reason in reasons), reasons
    assert any("contact.received" in reason for reason in reasons), reasons
    async with aiohttp.ClientSession() as http:
        customer = ChatCustomer(http, pipeline_services["intake"].url)
        await customer.say("Sigo aquí después del mensaje roto")
        [ack] = await customer.messages(1)
    assert TICKET.fullmatch(ack["ticket_id"])


async def test_bad_chat_requests_get_a_reason_and_store_nothing(pipeline_services):
    url = pipeline_services["intake"].url + "/api/chat/messages"
    async with aiohttp.ClientSession() as http:
        cases = [
            (dict(data=b"{oops", headers={"Content-Type": "application/json"}), 400, "malformed JSON"),
            (dict(json={"client_message_id": "a", "text": ""}), 400, "empty"),
            (dict(json={"client_message_id": "a", "text": 5}), 400, "string"),
            (dict(json={"client_message_id": "a", "text": "x" * 17000}), 413, "16384"),
            (dict(data=b"x" * 70000, headers={"Content-Type": "application/json"}), 413, "larger than"),
            (dict(data=b"text", headers={"Content-Type": "text/plain"}), 415, "application/json"),
            (dict(json={"client_message_id": "a", "text": "hi", "session_id": "A" * 24}), 401, "session token"),
            (dict(json={"client_message_id": "a", "text": "hi"}, headers={"Origin": "https://evil.example"}), 403, "origin"),
        ]
        for request, status, reason in cases:
            async with http.post(url, **request) as response:
                body = await response.json()
                assert (response.status, reason in body["error"]) == (status, True), body
        async with http.get(pipeline_services["intake"].url + "/api/chat/sessions/" + "A" * 24 + "/ws?token=nope") as response:
            assert response.status == 403
        async with http.post(pipeline_services["intake"].url + "/api/chat/sessions", headers={"Origin": "https://evil.example"}) as response:
            assert response.status == 403
