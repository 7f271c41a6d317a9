"""An inbound SMS or WhatsApp message: a contact, a compliance keyword, or a rejection."""
from __future__ import annotations

import pytest

from deskstream.contract import default_contract
from deskstream.events import Event
from deskstream.phones import InvalidPhoneNumber, e164, split_channel, twilio_address
from services.intake import sms
from services.intake.normaliser import Thread, normalise, survey_opened
from tests.twilio_api import inbound_sms

NOW = "2026-12-02T10:00:00.000Z"


def parse(**fields) -> sms.InboundMessage:
    return sms.parse_inbound(inbound_sms(**{"sender": "+34600111222", "body": "Hola", **fields}), "ES")


@pytest.mark.parametrize("raw, expected", [
    ("+34 600 11 22 33", "+34600112233"),
    ("600112233", "+34600112233"),
    ("(+34) 600-112-233", "+34600112233"),
    ("+1 415 555 0134", "+14155550134"),
])
def test_phone_numbers_become_e164(raw, expected):
    assert e164(raw, "ES") == expected


@pytest.mark.parametrize("raw", ["", "hola", "+34 12", "+999 1234567"])
def test_what_is_not_a_phone_number_is_refused(raw):
    with pytest.raises(InvalidPhoneNumber):
        e164(raw, "ES")


def test_whatsapp_addresses_name_their_channel():
    assert split_channel("whatsapp:+34600112233") == ("whatsapp", "+34600112233")
    assert split_channel("+34600112233") == ("sms", "+34600112233")
    assert twilio_address("whatsapp", "+34600112233") == "whatsapp:+34600112233"
    assert twilio_address("sms", "+34600112233") == "+34600112233"


def test_an_sms_is_a_contact_threaded_by_number_and_identified_by_it():
    message = parse(sender="+34 600 111 222", body="  No tengo internet desde ayer  ")
    data = sms.contact_data(message, "cus-1", NOW)
    assert data["channel"] == "sms" and data["thread_key"] == "sms:+34600111222"
    assert data["contact_id"] == f"twilio-{message.message_sid}"
    assert data["body_text"] == "No tengo internet desde ayer"
    assert data["reply_to"] == {"channel": "sms", "address": "+34600111222"}
    assert data["customer"] == {"id": "cus-1", "phone": "+34600111222"}
    default_contract().check(Event("contact.received", "deskstream/intake", data["contact_id"], data))


def test_a_whatsapp_message_carries_its_channel_profile_name_and_media():
    message = parse(sender="whatsapp:+34600111222", body="", profile_name="Marta",
                    media=[("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", "image/jpeg")])
    data = sms.contact_data(message, "cus-1", NOW)
    assert data["channel"] == "whatsapp" and data["thread_key"] == "whatsapp:+34600111222"
    assert data["customer"]["name"] == "Marta"
    assert data["body_text"] == "[image/jpeg]"
    assert data["sms"]["media"] == [{"url": "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
                                     "content_type": "image/jpeg"}]
    default_contract().check(Event("contact.received", "deskstream/intake", data["contact_id"], data))


def test_the_media_reaches_the_ticket():
    message = parse(media=[("https://api.twilio.com/m/1", "image/png"), ("https://api.twilio.com/m/2", "application/pdf")])
    [created] = normalise(sms.contact_data(message, "cus-1", NOW), Thread())
    assert [m["content_type"] for m in created.data["sms"]["media"]] == ["image/png", "application/pdf"]


def test_a_retried_webhook_is_the_same_contact_and_opens_nothing_more():
    form = inbound_sms(sender="+34600111222", body="Sin línea")
    thread = Thread()
    first = normalise(sms.contact_data(sms.parse_inbound(form, "ES"), "cus-1", NOW), thread)
    again = normalise(sms.contact_data(sms.parse_inbound(form, "ES"), "cus-1", NOW), thread)
    assert [e.type for e in first] == ["ticket.created"] and again == []


def test_a_second_message_from_the_number_joins_its_open_ticket():
    thread = Thread()
    [created] = normalise(sms.contact_data(parse(body="Sin línea"), "cus-1", NOW), thread)
    [joined] = normalise(sms.contact_data(parse(body="Sigue igual"), "cus-1", NOW), thread)
    assert joined.type == "ticket.message_received" and joined.ticket_id == created.ticket_id


@pytest.mark.parametrize("body, keyword, language", [
    ("STOP", sms.Keyword.OPT_OUT, "en"), ("stop", sms.Keyword.OPT_OUT, "en"), (" Stop. ", sms.Keyword.OPT_OUT, "en"),
    ("STOPALL", sms.Keyword.OPT_OUT, "en"), ("UNSUBSCRIBE", sms.Keyword.OPT_OUT, "en"), ("CANCEL", sms.Keyword.OPT_OUT, "en"),
    ("END", sms.Keyword.OPT_OUT, "en"), ("QUIT", sms.Keyword.OPT_OUT, "en"), ("Baja", sms.Keyword.OPT_OUT, "es"),
    ("START", sms.Keyword.OPT_IN, "en"), ("unstop", sms.Keyword.OPT_IN, "en"), ("ALTA", sms.Keyword.OPT_IN, "es"),
    ("HELP", sms.Keyword.HELP, "en"), ("ayuda", sms.Keyword.HELP, "es"),
])
def test_compliance_keywords_are_recognised_in_any_case(body, keyword, language):
    assert parse(body=body).keyword() == (keyword, language)


@pytest.mark.parametrize("body", ["Please stop calling me", "STOP the outage", "ayuda con mi factura", "ending soon"])
def test_a_sentence_with_a_keyword_in_it_is_a_message(body):
    assert parse(body=body).keyword() is None


def test_a_consent_event_names_the_recipient_and_the_keyword():
    message = parse(sender="whatsapp:+34600111222", body="baja")
    data = sms.consent_data(message, sms.Keyword.OPT_OUT, NOW)
    assert data == {"recipient": {"channel": "whatsapp", "address": "+34600111222"}, "keyword": "BAJA",
                    "message_sid": message.message_sid, "recorded_at": NOW}
    default_contract().check(Event("consent.opted_out", "deskstream/intake", f"consent.{message.message_sid}", data))


@pytest.mark.parametrize("change, reason", [
    ({"MessageSid": "x"}, "MessageSid"),
    ({"From": "nadie"}, "From"),
    ({"Body": ""}, "neither text nor media"),
    ({"Body": "x" * (sms.MAX_BODY_CHARS + 1)}, "longer than"),
    ({"NumMedia": "11"}, "NumMedia"),
    ({"NumMedia": "1", "MediaUrl0": "http://evil.example/x", "MediaContentType0": "image/png"}, "MediaUrl0"),
    ({"NumMedia": "1", "MediaUrl0": "https://api.twilio.com/m", "MediaContentType0": "<script>"}, "MediaContentType0"),
])
def test_a_form_that_is_no_message_is_rejected_with_the_reason(change, reason):
    form = {**inbound_sms(sender="+34600111222", body="Hola"), **change}
    with pytest.raises(sms.SmsRejected, match=reason):
        sms.parse_inbound(form, "ES")


def survey_thread() -> Thread:
    thread = Thread()
    normalise(sms.contact_data(parse(body="Sin línea"), "cus-1", NOW), thread)
    survey_opened({"survey_id": "S-abcdefghijkl", "ticket_id": thread.ticket_id, "thread_key": "sms:+34600111222",
                   "expires_at": "2099-01-01T00:00:00.000Z"}, thread)
    return Thread.from_dict(thread.to_dict())  # as the table keeps it


def test_a_reply_to_a_survey_is_an_answer_and_not_a_message():
    thread = survey_thread()
    [answered] = normalise(sms.contact_data(parse(body="5 excelente"), "cus-1", NOW), thread)
    assert answered.type == "survey.answered" and answered.ticket_id == thread.ticket_id
    assert (answered.data["score"], answered.data["comment"], answered.data["via"]) == (5, "excelente", "sms")
    default_contract().check(Event("survey.answered", "deskstream/intake", answered.id, answered.data))


def test_a_new_problem_after_a_survey_is_a_message_and_closes_the_survey():
    thread = survey_thread()
    [message] = normalise(sms.contact_data(parse(body="5 días sin internet"), "cus-1", NOW), thread)
    assert message.type == "ticket.message_received"
    [later] = normalise(sms.contact_data(parse(body="4"), "cus-1", NOW), thread)
    assert later.type == "ticket.message_received"


def test_an_expired_survey_takes_no_answers():
    thread = survey_thread()
    thread.survey = {**thread.survey, "expires_at": "2000-01-01T00:00:00.000Z"}
    [late] = normalise(sms.contact_data(parse(body="4"), "cus-1", NOW), thread)
    assert late.type == "ticket.message_received"


def test_an_answer_can_be_corrected_for_ten_minutes_and_then_short_replies_are_messages_again():
    thread = survey_thread()
    [first] = normalise(sms.contact_data(parse(body="5"), "cus-1", NOW), thread)
    [again] = normalise(sms.contact_data(parse(body="no, mejor 4"), "cus-1", "2026-12-02T10:05:00.000Z"), thread)
    assert first.type == "survey.answered" and again.type == "ticket.message_received"  # "no, ..." is not a score
    thread = survey_thread()
    normalise(sms.contact_data(parse(body="5"), "cus-1", NOW), thread)
    [corrected] = normalise(sms.contact_data(parse(body="4"), "cus-1", "2026-12-02T10:05:00.000Z"), thread)
    [thanks] = normalise(sms.contact_data(parse(body="ok gracias"), "cus-1", "2026-12-02T10:30:00.000Z"), thread)
    assert (corrected.type, corrected.data["score"]) == ("survey.answered", 4)
    assert thanks.type == "ticket.message_received"
