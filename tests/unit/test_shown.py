"""What agents are shown of what a customer wrote (services/intake/shown.py), and that
every channel's ticket events carry it (services/intake/normaliser.py)."""
import pytest

from services.intake.normaliser import Thread, normalise
from services.intake.shown import shown_line, shown_text


@pytest.mark.parametrize(("written", "shown"), [
    ("factura \u202egnp.exe", "factura gnp.exe"),
    ("uno\r\ndos\rtres", "uno\ndos\ntres"),
    ("a\x00b\x1b[2Jc\x7fd\x85e", "ab[2Jcde"),
    ("\u2066isolated\u2069 \u202aembedded\u202c", "isolated embedded"),
    ("con\ttab", "con\ttab"),
    ("مرحبا \u200fشكرا \u200e", "مرحبا \u200fشكرا \u200e"),  # the marks right-to-left writing needs are kept
])
def test_text_loses_what_does_not_show_and_keeps_what_does(written, shown):
    assert shown_text(written) == shown
    assert shown_text(shown_text(written)) == shown_text(written)


def test_a_line_is_one_line():
    assert shown_line("Eve\u202e\r\nBcc: x@evil.example\t ") == "Eve Bcc: x@evil.example"


def contact(channel: str, text: str, subject: str | None, name: str) -> dict:
    return {"contact_id": f"{channel}-1", "channel": channel, "thread_key": f"{channel}:x", "received_at": "2026-12-02T10:00:00.000Z",
            "customer": {"id": "cus-1", "name": name}, "subject": subject, "body_text": text,
            "reply_to": {"channel": channel, "address": "x"}}


@pytest.mark.parametrize("channel", ["chat", "sms", "whatsapp"])
def test_every_channels_ticket_shows_its_text_name_and_subject_without_them(channel):
    [created] = normalise(contact(channel, "Refund \u202egnp.exe\x00 now", "Invoice \u202e(urgent)\x1b", "Ana\u202e (supervisor)"), Thread())
    assert created.data["body_text"] == "Refund gnp.exe now"
    assert created.data["subject"] == "Invoice (urgent)"
    assert created.data["customer"]["name"] == "Ana (supervisor)"


def test_a_text_of_nothing_but_unshown_characters_is_no_text():
    [created] = normalise(contact("sms", "\u202e\x00", None, "Ana"), Thread())
    assert (created.data["body_text"], created.data["subject"]) == ("(no text)", "(no text)")
