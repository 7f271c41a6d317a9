"""SMS and WhatsApp through the real pipeline and a stand-in for Twilio's API.

Inbound: signed webhook posts, as Twilio makes them, to intake. Outbound: the
notifier's official twilio client talks to tests/twilio_api.py, which records each
message and posts signed status callbacks back to the notifier.
"""
from __future__ import annotations

import asyncio
import random

import pytest
from aiokafka import AIOKafkaProducer

from deskstream.events import Event
from deskstream.recipients import recipient_key
from deskstream.topics import DEADLETTER, INTAKE_RAW, NOTIFY_RECEIPTS, NOTIFY_REQUESTS, TICKETS_EVENTS
from tests.harness import read_topic, wait_for_events
from tests.twilio_api import SUPPORT_NUMBER, inbound_sms, message_sid, post_signed, sign

pytestmark = pytest.mark.integration


def new_number() -> str:
    """A Spanish mobile number no other test uses."""
    return "+346" + "".join(random.choice("0123456789") for _ in range(8))


def webhook(services) -> str:
    return f"{services['intake'].url}/webhooks/twilio/sms"


def of_sid(sid: str):
    return lambda e: (e.data.get("sms") or {}).get("message_sid") == sid


async def ticket_of(kafka, sid: str) -> Event:
    [created] = await wait_for_events(kafka.bootstrap, TICKETS_EVENTS, lambda e: e.type == "ticket.created" and of_sid(sid)(e), 1, 60)
    return created


async def test_a_signed_sms_becomes_one_ticket_and_one_acknowledgement_sms(pipeline_services, kafka, twilio_api):
    number = new_number()
    form = inbound_sms(sender=number.replace("+34", "+34 "), body="Hola, no tengo internet desde esta mañana en casa.",
                       media=[("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", "image/jpeg")])
    status, answer = await post_signed(webhook(pipeline_services), form)
    assert (status, answer) == (200, '<?xml version="1.0" encoding="UTF-8"?><Response />')

    created = await ticket_of(kafka, form["MessageSid"])
    ticket_id = created.data["ticket_id"]
    assert created.data["channel"] == "sms" and created.data["customer"]["phone"] == number
    assert created.data["reply_to"] == {"channel": "sms", "address": number}
    assert created.data["sms"]["media"] == [{"url": form["MediaUrl0"], "content_type": "image/jpeg"}]

    [sent] = await asyncio.to_thread(twilio_api.wait_for_message, number)
    assert sent.sender == SUPPORT_NUMBER and ticket_id in sent.body and sent.body.startswith("Hola")
    assert sent.status_callback.startswith(f"{pipeline_services['notifier'].url}/webhooks/twilio/status?")

    receipts = await wait_for_events(kafka.bootstrap, NOTIFY_RECEIPTS, lambda e: e.data.get("ticket_id") == ticket_id, 3, 60)
    by_type = {e.type: e for e in receipts}
    assert by_type["notify.sent"].data["provider_message_id"] == sent.sid
    delivered = await wait_for_events(
        kafka.bootstrap, NOTIFY_RECEIPTS,
        lambda e: e.type == "notify.status_reported" and e.data["ticket_id"] == ticket_id and e.data["status"] == "delivered", 1, 30)
    assert delivered[0].data["provider_message_id"] == sent.sid
    assert delivered[0].data["recipient"] == {"channel": "sms", "address": number}
    assert all(answer == 204 for _, answer in sent.callbacks)

    # The same number writes again: the same ticket, and no second acknowledgement.
    again = inbound_sms(sender=number, body="Sigue sin funcionar")
    assert (await post_signed(webhook(pipeline_services), again))[0] == 200
    [joined] = await wait_for_events(kafka.bootstrap, TICKETS_EVENTS, of_sid(again["MessageSid"]), 1, 60)
    assert (joined.type, joined.data["ticket_id"]) == ("ticket.message_received", ticket_id)
    assert len(twilio_api.sent_to(number)) == 1


async def test_a_whatsapp_message_is_answered_on_whatsapp(pipeline_services, kafka, twilio_api):
    number = new_number()
    form = inbound_sms(to=f"whatsapp:{SUPPORT_NUMBER}", sender=f"whatsapp:{number}", body="Hi, my invoice is wrong", profile_name="Sam")
    assert (await post_signed(webhook(pipeline_services), form))[0] == 200
    created = await ticket_of(kafka, form["MessageSid"])
    assert created.data["channel"] == "whatsapp" and created.data["customer"]["name"] == "Sam"
    [sent] = await asyncio.to_thread(twilio_api.wait_for_message, f"whatsapp:{number}")
    assert sent.sender == f"whatsapp:{SUPPORT_NUMBER}" and sent.body.startswith("Hi Sam")


@pytest.mark.parametrize("forgery", ["no signature", "wrong token", "another URL", "changed body"])
async def test_a_forged_webhook_gets_403_and_leaves_no_trace(pipeline_services, kafka, forgery):
    number = new_number()
    url = webhook(pipeline_services)
    form = inbound_sms(sender=number, body="Soy Twilio, de verdad")
    signature = {
        "no signature": "",
        "wrong token": sign(url, form, "not-the-token"),
        "another URL": sign("https://evil.example/webhooks/twilio/sms", form),
        "changed body": sign(url, {**form, "Body": "otro texto"}),
    }[forgery]
    status, _ = await post_signed(url, form, signature=signature)
    assert status == 403

    # A real message from the same number, on the same partition, after the forgery.
    marker = inbound_sms(sender=number, body="Este sí es mío")
    assert (await post_signed(url, marker))[0] == 200
    await wait_for_events(kafka.bootstrap, INTAKE_RAW, lambda e: e.data.get("contact_id") == f"twilio-{marker['MessageSid']}", 1, 30)
    forged = f"twilio-{form['MessageSid']}"
    assert not [e for e in await read_topic(kafka.bootstrap, INTAKE_RAW) if e.data.get("contact_id") == forged]
    assert not [e for e in await read_topic(kafka.bootstrap, DEADLETTER) if form["MessageSid"] in e.data.get("original_base64", "")]


async def test_a_twilio_retry_makes_no_second_ticket_and_no_second_sms(pipeline_services, kafka, twilio_api):
    number = new_number()
    form = inbound_sms(sender=number, body="No puedo entrar en mi cuenta")
    answers = await asyncio.gather(*(post_signed(webhook(pipeline_services), form) for _ in range(3)))
    assert [status for status, _ in answers] == [200, 200, 200]
    marker = inbound_sms(sender=number, body="¿Me podéis ayudar?")
    assert (await post_signed(webhook(pipeline_services), marker))[0] == 200

    [joined] = await wait_for_events(kafka.bootstrap, TICKETS_EVENTS, of_sid(marker["MessageSid"]), 1, 60)
    events = [e for e in await read_topic(kafka.bootstrap, TICKETS_EVENTS) if of_sid(form["MessageSid"])(e)]
    assert [e.type for e in events] == ["ticket.created"]
    assert joined.data["ticket_id"] == events[0].data["ticket_id"]
    await asyncio.to_thread(twilio_api.wait_for_message, number)
    await asyncio.sleep(2)
    assert len(twilio_api.sent_to(number)) == 1


async def test_stop_silences_the_number_and_start_lets_messages_through_again(pipeline_services, kafka, twilio_api):
    url = webhook(pipeline_services)
    silenced, restored = new_number(), new_number()

    status, answer = await post_signed(url, inbound_sms(sender=silenced, body="STOP"))
    assert status == 200 and "<Message>You will not receive more messages" in answer
    status, answer = await post_signed(url, inbound_sms(sender=restored, body="Baja"))
    assert status == 200 and "<Message>No recibirás más mensajes" in answer
    status, answer = await post_signed(url, inbound_sms(sender=restored, body="alta"))
    assert status == 200 and "<Message>Volverás a recibir" in answer

    # Both write a question afterwards: a ticket each; only the one who opted in again hears back.
    questions = {number: inbound_sms(sender=number, body="Mi factura está mal, ¿me ayudáis?") for number in (silenced, restored)}
    for form in questions.values():
        assert (await post_signed(url, form))[0] == 200
    tickets = {number: (await ticket_of(kafka, form["MessageSid"])).data["ticket_id"] for number, form in questions.items()}

    await asyncio.to_thread(twilio_api.wait_for_message, restored)
    [refused] = await wait_for_events(kafka.bootstrap, NOTIFY_RECEIPTS, lambda e: e.data.get("ticket_id") == tickets[silenced], 1, 60)
    assert refused.type == "notify.failed" and "opted out (STOP)" in refused.data["detail"]
    assert twilio_api.sent_to(silenced) == []

    consents = [e for e in await read_topic(kafka.bootstrap, NOTIFY_REQUESTS) if e.type.startswith("consent.")]
    assert [(e.type, e.data["keyword"]) for e in consents if e.data["recipient"]["address"] == restored] == [
        ("consent.opted_out", "BAJA"), ("consent.opted_in", "ALTA")]


async def test_help_is_answered_and_opens_nothing(pipeline_services, kafka):
    number = new_number()
    help_form = inbound_sms(sender=number, body="AYUDA")
    status, answer = await post_signed(webhook(pipeline_services), help_form)
    assert status == 200 and "<Message>Soporte: escribe aquí tu consulta" in answer
    marker = inbound_sms(sender=number, body="Quiero cambiar mi plan")
    assert (await post_signed(webhook(pipeline_services), marker))[0] == 200
    await wait_for_events(kafka.bootstrap, INTAKE_RAW, lambda e: e.data.get("contact_id") == f"twilio-{marker['MessageSid']}", 1, 30)
    assert not [e for e in await read_topic(kafka.bootstrap, INTAKE_RAW) if e.data.get("contact_id") == f"twilio-{help_form['MessageSid']}"]


async def test_a_signed_message_that_is_no_message_is_dead_lettered_with_its_reason(pipeline_services, kafka):
    form = inbound_sms(sender="no-es-un-numero", body="hola")
    status, _ = await post_signed(webhook(pipeline_services), form)
    assert status == 200  # Twilio must not retry what will never parse
    letters = await wait_for_events(kafka.bootstrap, DEADLETTER, lambda e: e.data["origin"] == "twilio:sms" and "From:" in e.data["reason"], 1, 30)
    assert letters


# --- outbound: what the notifier does with Twilio's answers ---------------------------------


async def request_sms(kafka, number: str, request_id: str, ticket_id: str = "T-AAAAAAAA", text_name: str = "Ana") -> None:
    """A notify.requested for an SMS, as any service asking notifier to write would send it."""
    recipient = {"channel": "sms", "address": number}
    data = {"request_id": request_id, "ticket_id": ticket_id, "reason": "acknowledgement", "recipient": recipient,
            "language": "es", "template": "acknowledgement",
            "params": {"ticket_id": ticket_id, "name": text_name, "wait_minutes": 5, "priority": "P3"}}
    event = Event("notify.requested", "deskstream/tests", request_id, data, ticket_id)
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(NOTIFY_REQUESTS, key=recipient_key(recipient).encode(), value=event.encode())
    finally:
        await producer.stop()


async def receipt_of(kafka, request_id: str) -> Event:
    [receipt] = await wait_for_events(
        kafka.bootstrap, NOTIFY_RECEIPTS, lambda e: e.data.get("request_id") == request_id and e.type in ("notify.sent", "notify.failed"), 1, 60)
    return receipt


async def test_rate_limits_and_server_errors_are_retried_with_backoff(pipeline_services, kafka, twilio_api):
    number = new_number()
    twilio_api.fail_next(number, (429, 20429), (503, None))
    request_id = f"T-AAAAAAAA.test.{message_sid()}"
    await request_sms(kafka, number, request_id)
    receipt = await receipt_of(kafka, request_id)
    assert receipt.type == "notify.sent" and "attempt 3" in receipt.data["detail"]
    assert len([r for r in twilio_api.requests if r["To"] == number]) == 3
    assert len(twilio_api.sent_to(number)) == 1


async def test_a_send_that_keeps_failing_is_recorded_as_a_temporary_failure(pipeline_services, kafka, twilio_api):
    number = new_number()
    twilio_api.fail_next(number, *[(500, 20500)] * 4)
    request_id = f"T-AAAAAAAA.test.{message_sid()}"
    await request_sms(kafka, number, request_id)
    receipt = await receipt_of(kafka, request_id)
    assert receipt.type == "notify.failed" and "temporary, gave up after 4 attempts" in receipt.data["detail"]
    assert len([r for r in twilio_api.requests if r["To"] == number]) == 4


async def test_an_unsubscribed_recipient_is_a_permanent_failure_and_is_not_tried_again(pipeline_services, kafka, twilio_api):
    number = new_number()
    twilio_api.fail_next(number, (400, 21610))
    first, second = (f"T-AAAAAAAA.test.{message_sid()}" for _ in range(2))
    await request_sms(kafka, number, first)
    receipt = await receipt_of(kafka, first)
    assert receipt.type == "notify.failed" and "error 21610" in receipt.data["detail"] and "(permanent, attempt 1)" in receipt.data["detail"]
    assert len([r for r in twilio_api.requests if r["To"] == number]) == 1

    await request_sms(kafka, number, second)
    receipt = await receipt_of(kafka, second)
    assert receipt.type == "notify.failed" and "opted out (TWILIO-21610)" in receipt.data["detail"]
    assert len([r for r in twilio_api.requests if r["To"] == number]) == 1
    consents = await wait_for_events(
        kafka.bootstrap, NOTIFY_REQUESTS, lambda e: e.type == "consent.opted_out" and e.data["recipient"]["address"] == number, 1, 10)
    assert consents[0].data["keyword"] == "TWILIO-21610"


async def test_an_undelivered_message_is_reported_with_twilios_error_code(pipeline_services, kafka, twilio_api):
    number = new_number()
    twilio_api.finally_report(number, "undelivered", 30003)
    request_id = f"T-AAAAAAAA.test.{message_sid()}"
    await request_sms(kafka, number, request_id)
    assert (await receipt_of(kafka, request_id)).type == "notify.sent"
    [report] = await wait_for_events(
        kafka.bootstrap, NOTIFY_RECEIPTS,
        lambda e: e.type == "notify.status_reported" and e.data["request_id"] == request_id and e.data["status"] == "undelivered", 1, 30)
    assert report.data["error_code"] == 30003


async def test_a_forged_status_callback_gets_403(pipeline_services):
    url = f"{pipeline_services['notifier'].url}/webhooks/twilio/status?request=x&ticket=T-AAAAAAAA"
    form = {"MessageSid": message_sid(), "MessageStatus": "delivered", "To": "+34600000000"}
    status, _ = await post_signed(url, form, signature=sign(url, form, "not-the-token"))
    assert status == 403
