"""Outbound SMS and WhatsApp as data: segment budgets, consent, status callbacks."""
from __future__ import annotations

import pytest

from deskstream.contract import default_contract
from deskstream.events import Event
from services.notifier import delivery, sms_text

REQUEST = {"request_id": "T-ABCDEFGH.ack", "ticket_id": "T-ABCDEFGH", "recipient": {"channel": "sms", "address": "+34600111222"}}
SID = "SM" + "a" * 32


@pytest.mark.parametrize("text, encoding, count", [
    ("a" * 160, "GSM-7", 1), ("a" * 161, "GSM-7", 2), ("a" * 306, "GSM-7", 2), ("a" * 307, "GSM-7", 3),
    ("€" * 80, "GSM-7", 1), ("€" * 81, "GSM-7", 2),  # extension characters count twice
    ("ñÑüé¿¡", "GSM-7", 1),
    ("á" * 70, "UCS-2", 1), ("á" * 71, "UCS-2", 2), ("🙂" * 35, "UCS-2", 1), ("🙂" * 36, "UCS-2", 2),
])
def test_segments_follow_the_gsm_and_ucs2_rules(text, encoding, count):
    measured = sms_text.segments(text)
    assert (measured.encoding, measured.count) == (encoding, count)


@pytest.mark.parametrize("text", [
    "Hola Marta, hemos recibido tu mensaje. " * 20,
    "We have your message, and an agent will answer soon. " * 20,
])
@pytest.mark.parametrize("limit", [1, 2, 3])
def test_a_long_text_is_cut_at_a_word_to_fit_the_segment_budget(text, limit):
    fitted = sms_text.fit(text, limit)
    assert sms_text.segments(fitted).count <= limit
    assert fitted.endswith(("...", "…"))
    assert text.startswith(fitted.rstrip(".…"))
    assert len(fitted) > sms_text.capacity(sms_text.encoding_of(text), limit) - 20  # not cut much shorter than needed


def test_a_short_text_is_left_alone():
    assert sms_text.fit("Tu ticket es T-ABCDEFGH.", 1) == "Tu ticket es T-ABCDEFGH."


def test_whatsapp_is_not_cut_into_segments_but_kept_within_twilios_limit():
    assert delivery.phone_text("whatsapp", "a" * 500, 1) == "a" * 500
    assert len(delivery.phone_text("whatsapp", "a" * 5000, 1)) == delivery.WHATSAPP_MAX_CHARS


def test_consent_is_the_last_word_of_the_recipient():
    assert delivery.opted_out(delivery.consent("consent.opted_out", {"keyword": "STOP", "recorded_at": "t"}))
    assert not delivery.opted_out(delivery.consent("consent.opted_in", {"keyword": "START", "recorded_at": "t"}))
    assert not delivery.opted_out(None)


def test_the_status_callback_url_names_the_request_and_the_ticket():
    url = delivery.status_callback_url("https://support.example.com", REQUEST)
    assert url == "https://support.example.com/webhooks/twilio/status?request=T-ABCDEFGH.ack&ticket=T-ABCDEFGH"


def test_a_status_callback_becomes_a_status_report():
    form = {"MessageSid": SID, "MessageStatus": "undelivered", "ErrorCode": "30003", "To": "whatsapp:+34600111222"}
    report = delivery.status_report({"request": "T-ABCDEFGH.ack", "ticket": "T-ABCDEFGH"}, form, "2026-12-02T10:00:00.000Z")
    assert report["recipient"] == {"channel": "whatsapp", "address": "+34600111222"}
    assert (report["status"], report["error_code"], report["provider_message_id"]) == ("undelivered", 30003, SID)
    default_contract().check(Event("notify.status_reported", "deskstream/notifier", "T-ABCDEFGH.ack.status.undelivered", report))


@pytest.mark.parametrize("query, form, reason", [
    ({}, {"MessageSid": SID, "MessageStatus": "sent", "To": "+3460"}, "does not name a request"),
    ({"request": "r", "ticket": "not-a-ticket"}, {"MessageSid": SID, "MessageStatus": "sent", "To": "+3460"}, "its ticket"),
    ({"request": "r", "ticket": "T-ABCDEFGH"}, {"MessageSid": SID, "MessageStatus": "exploded", "To": "+3460"}, "MessageStatus"),
    ({"request": "r", "ticket": "T-ABCDEFGH"}, {"MessageSid": "x", "MessageStatus": "sent", "To": "+3460"}, "MessageSid"),
    ({"request": "r", "ticket": "T-ABCDEFGH"}, {"MessageSid": SID, "MessageStatus": "sent"}, "To"),
])
def test_a_status_callback_that_makes_no_sense_is_refused(query, form, reason):
    with pytest.raises(delivery.InvalidStatusCallback, match=reason):
        delivery.status_report(query, form, "2026-12-02T10:00:00.000Z")
