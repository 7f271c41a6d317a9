"""An e-mail as a contact: its thread, its ticket, and what goes into Kafka (never the
bytes of its attachments)."""
from __future__ import annotations

import hashlib
from email.message import EmailMessage

import pytest

from services.intake.email_contacts import read_mail, thread_key
from services.intake.mail import parse

OWN = ("soporte@deskstream.test",)
NOW = "2026-11-23T09:00:00.000Z"


def message(body: str = "No tengo internet.", **headers: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = headers.pop("From", "Marta López <marta@example.es>")
    mail["To"] = "soporte@deskstream.test"
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(body)
    return mail


def test_a_reply_threads_with_the_first_message_of_its_conversation():
    reply = message(Subject="Re: internet", Message_ID="<r2@example.es>", In_Reply_To="<T-ABCDEFGH.x@d.test>",
                    References="<first@example.es> <T-ABCDEFGH.x@d.test>")
    first = message(Subject="internet", Message_ID="<first@example.es>")
    assert thread_key(parse(reply.as_bytes()), "mid:r2") == thread_key(parse(first.as_bytes()), "mid:first")
    assert thread_key(parse(first.as_bytes()), "mid:first") == "email:marta@example.es:first@example.es"


def test_a_contact_carries_the_text_the_ids_and_the_customer():
    raw = message("Sigue igual.\n\n-- \nMarta", Subject="Re: internet", Message_ID="<r2@example.es>",
                  References="<first@example.es>").as_bytes()
    contact = read_mail(raw, OWN, NOW).contact
    assert contact is not None
    assert contact["contact_id"] == read_mail(raw, OWN, NOW).contact["contact_id"]  # the same mail, the same id
    assert (contact["channel"], contact["body_text"], contact["subject"]) == ("email", "Sigue igual.", "Re: internet")
    assert contact["reply_to"] == {"channel": "email", "address": "marta@example.es"}
    assert contact["customer"]["email"] == "marta@example.es" and contact["customer"]["name"] == "Marta López"
    assert contact["email"]["references"] == ["first@example.es"] and contact["email"]["message_id"] == "r2@example.es"


def test_a_20_mb_attachment_stays_out_of_the_event():
    payload = bytes(range(256)) * (20 * 1024 * 1024 // 256)
    mail = message("Adjunto el volcado.", Message_ID="<big@example.es>")
    mail.add_attachment(payload, maintype="application", subtype="octet-stream", filename="volcado.bin")
    outcome = read_mail(mail.as_bytes(), OWN, NOW)
    [attachment] = outcome.attachments
    assert (attachment.size, attachment.sha256) == (len(payload), hashlib.sha256(payload).hexdigest())
    assert outcome.contact is not None and outcome.contact["body_text"] == "Adjunto el volcado."
    assert outcome.contact["email"]["attachments"] == [
        {"filename": "volcado.bin", "content_type": "application/octet-stream", "size": len(payload), "sha256": attachment.sha256}]
    assert len(str(outcome.contact)) < 10_000


def test_noise_is_taken_without_a_contact():
    outcome = read_mail(message(Auto_Submitted="auto-replied").as_bytes(), OWN, NOW)
    assert (outcome.contact, outcome.noise) == (None, "auto-reply")


@pytest.mark.parametrize("raw", [b"", b"Subject: no sender\r\n\r\nhola\r\n"])
def test_mail_without_a_sender_is_refused_with_a_reason(raw):
    outcome = read_mail(raw, OWN, NOW)
    assert outcome.contact is None and outcome.unusable.startswith("unparseable e-mail: ")
