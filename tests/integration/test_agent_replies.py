"""An agent answers through the router's agent API, and the customer reads the answer
on the channel they wrote from: the chat page's session, or their phone."""
from __future__ import annotations

import asyncio
import random

import aiohttp
import pytest

from deskstream.topics import NOTIFY_RECEIPTS, TICKETS_EVENTS
from tests.agent_api import AgentApi
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
    async with aiohttp.ClientSession() as http:
        return await AgentApi(http, router_url, token).post(f"/api/tickets/{ticket_id}/reply", {"text": text}, key)


async def routed_to(router_url: str, ticket_id: str, agent_id: str) -> None:
    """Wait until the router's API sees the ticket with its agent."""
    async with aiohttp.ClientSession() as http:
        await AgentApi(http, router_url, token_of(agent_id)).ticket_when(ticket_id, lambda t: t["agent_id"] == agent_id)


async def chat_ticket(http: aiohttp.ClientSession, intake_url: str, bootstrap: str, name: str, text: str) -> tuple[ChatCustomer, str, str]:
    """A Spanish chat customer writes; their ticket and the agent it went to."""
    customer = ChatCustomer(http, intake_url, name=name, language="es")
    await customer.say(text)
    thread = f"chat:{customer.session_id}"
    ticket_id, agent_id = await ticket_and_agent(bootstrap, lambda e: e.data["thread_key"] == thread)
    return customer, ticket_id, agent_id


async def test_a_chat_customer_reads_the_agents_answer_on_the_page(pipeline_services, kafka):
    intake, router = pipeline_services["intake"], pipeline_services["router"]
    async with aiohttp.ClientSession() as http:
        customer, ticket_id, agent_id = await chat_ticket(
            http, intake.url, kafka.bootstrap, "Marta López", "Hola, me cobraron dos veces la factura de noviembre")

        text = "Hola Marta: ya hemos devuelto el cargo duplicado. <b>Lo verás en 3 días.</b>"
        await routed_to(router.url, ticket_id, agent_id)
        assert (await reply(router.url, ticket_id, "not-a-token", text))[0] == 401
        other = next(a for a in ("ana", "ben", "lucia") if a != agent_id)
        assert (await reply(router.url, ticket_id, token_of(other), text))[0] == 403  # not theirs
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
        routed = await AgentApi(http, router.url, token_of(agent_id)).ticket_when(ticket_id, lambda t: t.get("answered") is True)
    assert routed["first_response_at"]


async def test_an_sms_customer_gets_the_answer_by_sms(pipeline_services, kafka, twilio_api):
    number = "+346" + "".join(random.choice("0123456789") for _ in range(8))
    form = inbound_sms(sender=number, body="My laptop screen is broken, I cannot work")
    assert (await post_signed(f"{pipeline_services['intake'].url}/webhooks/twilio/sms", form))[0] == 200
    ticket_id, agent_id = await ticket_and_agent(
        kafka.bootstrap, lambda e: (e.data.get("sms") or {}).get("message_sid") == form["MessageSid"])
    await routed_to(pipeline_services["router"].url, ticket_id, agent_id)
    status, _ = await reply(pipeline_services["router"].url, ticket_id, token_of(agent_id), "We are sending you a replacement today.")
    assert status == 202
    acknowledgement, answered = await asyncio.to_thread(twilio_api.wait_for_message, number, 2)
    assert ticket_id in acknowledgement.body
    assert answered.body.startswith("We are sending you a replacement today.") and answered.body.endswith(f"({ticket_id})")


async def test_an_agent_resolves_and_reopens_their_ticket_and_a_supervisor_sees_every_queue(pipeline_services, kafka):
    intake, router = pipeline_services["intake"], pipeline_services["router"]
    async with aiohttp.ClientSession() as http:
        _, ticket_id, agent_id = await chat_ticket(
            http, intake.url, kafka.bootstrap, "Pablo Ruiz", "No puedo iniciar sesión en mi cuenta desde esta mañana")
        agent = AgentApi(http, router.url, token_of(agent_id))
        other = AgentApi(http, router.url, token_of(next(a for a in ("ana", "ben", "lucia") if a != agent_id)))
        supervisor = AgentApi(http, router.url, token_of("sam"))
        await agent.ticket_when(ticket_id, lambda t: t["agent_id"] == agent_id)

        assert (await other.post(f"/api/tickets/{ticket_id}/resolve"))[0] == 403
        assert (await agent.post(f"/api/tickets/{ticket_id}/reopen", {"reason": "still open"}))[0] == 409
        assert (await agent.post(f"/api/tickets/{ticket_id}/resolve", {"note": "Contraseña restablecida."}))[0] == 202
        await agent.ticket_when(ticket_id, lambda t: t["status"] == "resolved")
        assert (await other.post(f"/api/tickets/{ticket_id}/reopen", {"reason": "no"}))[0] == 403
        assert (await agent.post(f"/api/tickets/{ticket_id}/reopen", {}))[0] == 400  # a reason is required
        status, reopened = await agent.post(f"/api/tickets/{ticket_id}/reopen", {"reason": "El cliente sigue sin poder entrar."})
        assert status == 202

        [event] = await wait_for_events(kafka.bootstrap, TICKETS_EVENTS, lambda e: e.id == reopened["event_id"], 1, 30)
        assert (event.type, event.data["reopened_by"]) == ("ticket.reopened", agent_id)
        given = await wait_for_events(
            kafka.bootstrap, TICKETS_EVENTS, lambda e: e.type == "ticket.assigned" and e.data["ticket_id"] == ticket_id, 2, 30)
        assert [e.data["agent_id"] for e in given] == [agent_id, agent_id]  # back to the agent who knows it
        record = await agent.ticket_when(ticket_id, lambda t: t["status"] == "assigned" and t.get("reopens") == 1)
        assert record["reopened_at"] == event.data["reopened_at"] and not record["answered"]

        assert (await agent.get("/api/supervisor"))[0] == 403
        status, desk = await supervisor.get("/api/supervisor")
        assert status == 200 and {a["id"] for a in desk["agents"]} >= {"ana", "ben", "lucia", "omar", "sofia", "sam"}
        assert desk["targets"]["first_response_minutes"]["P1"] == 15
        status, queue = await agent.get("/api/queue")
        assert status == 200 and ticket_id in {t["ticket_id"] for t in queue["assigned"]}
        assert (await supervisor.post(f"/api/tickets/{ticket_id}/resolve", {"note": "Cerrado por supervisión."}))[0] == 202
        assert (await AgentApi(http, router.url, "").get("/api/queue"))[0] == 401


async def test_notes_stay_with_agents_a_ticket_moves_to_a_named_agent_and_others_cannot_read_it(pipeline_services, kafka):
    intake, router = pipeline_services["intake"], pipeline_services["router"]
    async with aiohttp.ClientSession() as http:
        customer, ticket_id, holder = await chat_ticket(
            http, intake.url, kafka.bootstrap, "Inés Núñez", "Me habéis cobrado dos veces la cuota de diciembre, quiero la devolución")
        await routed_to(router.url, ticket_id, holder)
        mine = AgentApi(http, router.url, token_of(holder))
        outsider = AgentApi(http, router.url, token_of("omar"))  # no billing, no general: not his queue
        assert (await outsider.get(f"/api/tickets/{ticket_id}"))[0] == 403
        assert (await outsider.get(f"/api/tickets/{ticket_id}/conversation"))[0] == 403

        status, noted = await mine.post(f"/api/tickets/{ticket_id}/note", {"text": "Cliente con dos cargos; revisar <b>factura</b>"})
        assert status == 202
        conversation = await conversation_when(mine, ticket_id, lambda c: any(e["kind"] == "note" for e in c["timeline"]))
        [note] = [e for e in conversation["timeline"] if e["kind"] == "note"]
        assert (note["agent_id"], note["text"]) == (holder, "Cliente con dos cargos; revisar <b>factura</b>")
        assert conversation["timeline"][0]["text"].startswith("Me habéis cobrado dos veces")

        other = "sofia" if holder != "sofia" else "ana"
        assert (await mine.post(f"/api/tickets/{ticket_id}/reassign", {"agent_id": "omar", "reason": "x"}))[0] == 409  # cannot take it
        assert (await mine.post(f"/api/tickets/{ticket_id}/reassign", {"agent_id": other}))[0] == 400  # no reason
        assert (await mine.post(f"/api/tickets/{ticket_id}/reassign", {"agent_id": other, "reason": "Sofía lleva su cuenta"}))[0] == 202
        await routed_to(router.url, ticket_id, other)
        [moved] = await wait_for_events(kafka.bootstrap, TICKETS_EVENTS, lambda e: e.type == "ticket.assigned"
                                        and e.data["ticket_id"] == ticket_id and e.data.get("assigned_by") == holder, 1, 30)
        assert (moved.data["agent_id"], moved.data["reason"]) == (other, "Sofía lleva su cuenta")

        # The note went to no customer: the chat session got the acknowledgement and nothing more.
        with pytest.raises(TimeoutError):
            await customer.messages(2, timeout=5)
        assert [m["kind"] for m in await customer.messages(1)] == ["acknowledgement"]


async def conversation_when(api: AgentApi, ticket_id: str, wanted, timeout: float = 30) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status, found = await api.get(f"/api/tickets/{ticket_id}/conversation")
        if status == 200 and wanted(found):
            return found
        assert asyncio.get_running_loop().time() < deadline, (status, found)
        await asyncio.sleep(0.3)
