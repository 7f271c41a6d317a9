"""An agent answers through the router's agent API, and the customer reads the answer
on the channel they wrote from: the chat page's session, or their phone."""
from __future__ import annotations

import asyncio
import random

import aiohttp
import pytest

from deskstream.topics import NOTIFY_RECEIPTS, TICKETS_EVENTS
from tests.harness import wait_for_events
from tests.integration.chat_client import ChatCustomer
from tests.twilio_api import inbound_sms, post_signed

pytestmark = pytest.mark.integration


def token_of(agent_id: str) -> str:
    return f"integration-token-{agent_id}-0123456789abcdef"


async def ticket_and_agent(bootstrap: str, created_matches) -> tuple[str, str]:
    [created] = await wait_for_events(bootstrap, TICKETS_EVENTS, lambda e: e.type == "ticket.created" and created_matches(e), 1, 60)
    ticket_id = created.data["ticket_id"]
    [assigned] = await wait_for_events(
        bootstrap, TICKETS_EVENTS, lambda e: e.type == "ticket.assigned" and e.data["ticket_id"] == ticket_id, 1, 60)
    return ticket_id, assigned.data["agent_id"]


async def reply(router_url: str, ticket_id: str, token: str, text: str, key: str | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}", **({"Idempotency-Key": key} if key else {})}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{router_url}/api/tickets/{ticket_id}/reply", json={"text": text}, headers=headers) as answer:
            return answer.status, await answer.json()


async def test_a_chat_customer_reads_the_agents_answer_on_the_page(pipeline_services, kafka):
    intake, router = pipeline_services["intake"], pipeline_services["router"]
    async with aiohttp.ClientSession() as http:
        customer = ChatCustomer(http, intake.url, name="Marta López", language="es")
        await customer.say("Hola, me cobraron dos veces la factura de noviembre")
        thread = f"chat:{customer.session_id}"
        ticket_id, agent_id = await ticket_and_agent(kafka.bootstrap, lambda e: e.data["thread_key"] == thread)

        text = "Hola Marta: ya hemos devuelto el cargo duplicado. <b>Lo verás en 3 días.</b>"
        assert (await reply(router.url, ticket_id, "not-a-token", text))[0] == 401
        status, answer = await reply(router.url, ticket_id, token_of(agent_id), text, key="reply-1")
        assert status == 202
        again = await reply(router.url, ticket_id, token_of(agent_id), text, key="reply-1")
        assert again == (202, answer)  # the same Idempotency-Key is the same reply

        acknowledgement, answered = await customer.messages(2, timeout=60)
        assert acknowledgement["kind"] == "acknowledgement"
        assert answered["kind"] == "reply" and answered["ticket_id"] == ticket_id
        assert answered["text"].startswith(text) and answered["text"].endswith(f"Soporte ({ticket_id})")

    [sent] = await wait_for_events(
        kafka.bootstrap, NOTIFY_RECEIPTS, lambda e: e.data.get("request_id") == f"{ticket_id}.reply.{answer['reply_id']}", 1, 30)
    assert sent.type == "notify.sent"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{router.url}/api/tickets/{ticket_id}") as found:
            routed = await found.json()
    assert routed["answered"] is True and routed["first_response_at"]


async def test_an_sms_customer_gets_the_answer_by_sms(pipeline_services, kafka, twilio_api):
    number = "+346" + "".join(random.choice("0123456789") for _ in range(8))
    form = inbound_sms(sender=number, body="My laptop screen is broken, I cannot work")
    assert (await post_signed(f"{pipeline_services['intake'].url}/webhooks/twilio/sms", form))[0] == 200
    ticket_id, agent_id = await ticket_and_agent(
        kafka.bootstrap, lambda e: (e.data.get("sms") or {}).get("message_sid") == form["MessageSid"])
    status, _ = await reply(pipeline_services["router"].url, ticket_id, token_of(agent_id), "We are sending you a replacement today.")
    assert status == 202
    acknowledgement, answered = await asyncio.to_thread(twilio_api.wait_for_message, number, 2)
    assert ticket_id in acknowledgement.body
    assert answered.body.startswith("We are sending you a replacement today.") and answered.body.endswith(f"({ticket_id})")
