"""After resolution the customer is asked how it went, on their own channel, and the
answer comes back: a reply on SMS or chat (never a new ticket), a link by e-mail
(signed, single use, never recorded by merely opening it), and it shows in the figures.

The session's services run with FEEDBACK_SURVEY_DELAY_SECONDS=2 (tests/conftest.py).
"""
from __future__ import annotations

import asyncio
import re
import time
from email import message_from_bytes, policy

import aiohttp
import pytest

from deskstream.topics import FEEDBACK_SURVEYS, TICKETS_EVENTS
from tests.agent_api import AgentApi
from tests.harness import read_topic, wait_for_events
from tests.integration.test_agent_replies import chat_ticket, ticket_and_agent, token_of
from tests.integration.test_email_channel import mail
from tests.twilio_api import inbound_sms, post_signed

pytestmark = pytest.mark.integration

LINK = re.compile(r"(\d) - [^:]+: (http://\S+/survey/\S+)")


async def resolve(router_url: str, ticket_id: str, agent_id: str) -> None:
    async with aiohttp.ClientSession() as http:
        agent = AgentApi(http, router_url, token_of(agent_id))
        await agent.ticket_when(ticket_id, lambda t: t["agent_id"] == agent_id)
        assert (await agent.post(f"/api/tickets/{ticket_id}/resolve", {"note": "Solved."}))[0] == 202


async def answers_of(bootstrap: str, ticket_id: str, count: int) -> list:
    return await wait_for_events(bootstrap, TICKETS_EVENTS,
                                 lambda e: e.type == "survey.answered" and e.data["ticket_id"] == ticket_id, count, 60)


async def metrics_for(feedback_url: str, ticket_channel: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(f"{feedback_url}/api/metrics?by=channel") as response:
                rows = (await response.json())["rows"]
            row = next((r for r in rows if r["channel"] == ticket_channel), {})
            if row.get("surveys_answered") or time.monotonic() > deadline:
                return row
            await asyncio.sleep(0.5)


async def test_an_sms_customer_answers_the_survey_by_reply_and_no_ticket_is_opened(pipeline_services, kafka, twilio_api):
    number = "+3466" + str(int(time.time() * 1000))[-7:]
    intake, router = pipeline_services["intake"], pipeline_services["router"]
    webhook = f"{intake.url}/webhooks/twilio/sms"
    assert (await post_signed(webhook, inbound_sms(sender=number, body="No tengo internet desde ayer en casa.")))[0] == 200
    ticket_id, agent_id = await ticket_and_agent(kafka.bootstrap, lambda e: e.data["thread_key"] == f"sms:{number}")
    await resolve(router.url, ticket_id, agent_id)
    deadline = time.monotonic() + 60
    while not any("1 (muy mal)" in m.body for m in twilio_api.sent_to(number)) and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
    assert any(ticket_id in m.body and "1 (muy mal)" in m.body for m in twilio_api.sent_to(number))

    assert (await post_signed(webhook, inbound_sms(sender=number, body="5 excelente, muy rápidos")))[0] == 200
    [answer] = await answers_of(kafka.bootstrap, ticket_id, 1)
    assert (answer.data["score"], answer.data["comment"], answer.data["via"]) == (5, "excelente, muy rápidos", "sms")
    # a new problem after the survey is a message, not an answer
    assert (await post_signed(webhook, inbound_sms(sender=number, body="Ahora el router no enciende")))[0] == 200
    await wait_for_events(kafka.bootstrap, TICKETS_EVENTS, lambda e: e.type == "ticket.message_received"
                          and e.data["ticket_id"] == ticket_id and e.data["body_text"] == "Ahora el router no enciende", 1, 30)
    events = [e for e in await read_topic(kafka.bootstrap, TICKETS_EVENTS) if e.data.get("ticket_id") == ticket_id]
    assert not [e for e in events if e.type == "ticket.message_received" and e.data["body_text"].startswith("5 excelente")]
    assert [e.type for e in events].count("survey.sent") == 1
    row = await metrics_for(pipeline_services["feedback"].url, "sms")
    assert row["surveys_answered"] >= 1 and row["csat"] is not None

    # resolved again within the fatigue period: the survey comes due, and is not sent
    async with aiohttp.ClientSession() as http:
        agent = AgentApi(http, router.url, token_of(agent_id))
        assert (await agent.post(f"/api/tickets/{ticket_id}/reopen", {"reason": "El router tampoco va"}))[0] == 202
        await agent.ticket_when(ticket_id, lambda t: t["status"] != "resolved")
        assert (await agent.post(f"/api/tickets/{ticket_id}/resolve", {"note": "Router cambiado."}))[0] == 202
    due = await wait_for_events(kafka.bootstrap, FEEDBACK_SURVEYS, lambda e: e.data["ticket_id"] == ticket_id, 2, 60)
    assert len({e.data["survey_id"] for e in due}) == 2
    await asyncio.sleep(3)
    sent = [e for e in await read_topic(kafka.bootstrap, TICKETS_EVENTS) if e.type == "survey.sent" and e.data["ticket_id"] == ticket_id]
    assert len(sent) == 1


async def test_a_chat_customer_answers_in_words(pipeline_services, kafka):
    intake, router = pipeline_services["intake"], pipeline_services["router"]
    async with aiohttp.ClientSession() as http:
        customer, ticket_id, agent_id = await chat_ticket(http, intake.url, kafka.bootstrap, "Rosa", "No puedo entrar en mi cuenta")
        await resolve(router.url, ticket_id, agent_id)
        messages = await customer.messages(2, timeout=60)
        assert "1 (muy mal)" in messages[-1]["text"]
        await customer.say("cuatro")
        [answer] = await answers_of(kafka.bootstrap, ticket_id, 1)
        assert (answer.data["score"], answer.data["comment"], answer.data["via"]) == (4, None, "chat")
        # the customer thinks again: the last answer counts, and a low score goes back to support
        await customer.say("Muy mal, nadie me ayudó")
        [_, again] = await answers_of(kafka.bootstrap, ticket_id, 2)
        assert (again.data["score"], again.data["comment"]) == (1, "nadie me ayudó")
    [reopened] = await wait_for_events(kafka.bootstrap, TICKETS_EVENTS, lambda e: e.type == "ticket.reopened"
                                       and e.data["ticket_id"] == ticket_id, 1, 30)
    assert reopened.data["reopened_by"] == "feedback" and "1 of 5" in reopened.data["reason"] and "nadie me ayudó" in reopened.data["reason"]
    async with aiohttp.ClientSession() as http:
        await AgentApi(http, router.url, token_of(agent_id)).ticket_when(ticket_id, lambda t: t["status"] != "resolved")


async def test_an_e_mail_customer_answers_by_a_signed_link_once(pipeline_services, kafka, dovecot, smtp_server):
    customer = f"encuesta-{time.time_ns()}@cliente.example"
    dovecot.append(mail(f"Lola <{customer}>", "Factura duplicada", "Me han cobrado dos veces este mes."))
    ticket_id, agent_id = await ticket_and_agent(kafka.bootstrap, lambda e: e.data.get("reply_to", {}).get("address") == customer)
    await resolve(pipeline_services["router"].url, ticket_id, agent_id)
    deadline = time.monotonic() + 60
    survey = None
    while survey is None and time.monotonic() < deadline:
        for _, rcpts, raw in list(smtp_server.messages):
            message = message_from_bytes(raw, policy=policy.default)
            if customer in rcpts and message["Subject"].startswith("¿Qué tal lo hicimos?"):
                survey = message
        await asyncio.sleep(0.3)
    assert survey is not None and f"[#{ticket_id}]" in survey["Subject"]
    links = dict(LINK.findall(survey.get_body(("plain",)).get_content()))
    assert sorted(links) == ["1", "2", "3", "4", "5"]

    async with aiohttp.ClientSession() as http:
        async with http.get(links["2"]) as page:  # opening a link (as a mail scanner does) records nothing
            assert page.status == 200 and "2" in await page.text()
        token = links["2"].rsplit("/", 1)[1]
        forged = links["2"].replace(token, token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb"))
        async with http.post(forged, data={"comment": "x"}) as refused:
            assert refused.status == 403
        async with http.post(links["2"], data={"comment": "Tardaron <b>tres</b> días"}) as answered:
            assert answered.status == 200 and "<b>tres</b>" not in await answered.text()
        [answer] = await answers_of(kafka.bootstrap, ticket_id, 1)
        assert (answer.data["score"], answer.data["comment"], answer.data["via"]) == (2, "Tardaron <b>tres</b> días", "email_link")
        row = await metrics_for(pipeline_services["feedback"].url, "email")
        assert row["surveys_answered"] >= 1
        async with http.post(links["2"], data={"comment": "again"}) as replayed:
            assert replayed.status == 409
