"""Intake masks what a contact's customer wrote (services/intake/masking.py): the
subject, the text and an e-mail's full text, on `intake.raw` unless
INTAKE_KEEP_ORIGINAL_TEXT keeps the original there, and on `tickets.events` always."""
from __future__ import annotations

import copy

from deskstream.contract import default_contract
from deskstream.events import Event
from deskstream.sensitive import CARD, NATIONAL_ID, PASSWORD
from services.intake.masking import BODY_TEXT_CHARS, as_published, masked_contact
from services.intake.normaliser import Thread, normalise
from services.intake.settings import IntakeSettings

CARD_NUMBER = "4242 4242 4242 4242"


def mail_contact(body: str, subject: str | None = "Pago", full_text: str | None = None) -> dict:
    return {
        "contact_id": "email-abc", "channel": "email", "thread_key": "email:ana@example.com:<m1@example.com>",
        "received_at": "2026-12-02T10:00:00Z",
        "customer": {"id": "c-ana", "email": "ana@example.com", "name": "Ana 4242"},
        "subject": subject, "body_text": body, "reply_to": {"channel": "email", "address": "ana@example.com"},
        "email": {"message_id": "<m1@example.com>", "in_reply_to": None, "references": [],
                  "full_text": full_text if full_text is not None else body, "attachments": []},
    }


def test_the_subject_the_text_and_the_full_text_are_masked_and_the_kinds_reported():
    contact = mail_contact(f"mi tarjeta es {CARD_NUMBER} y mi DNI 12345678Z", subject="contraseña: gato",
                           full_text=f"mi tarjeta es {CARD_NUMBER}\n-- \nAna")
    original = copy.deepcopy(contact)
    masked, kinds = masked_contact(contact)
    assert masked["body_text"] == "mi tarjeta es [card ····4242] y mi DNI [DNI ····]"
    assert masked["subject"] == "contraseña: [secret ····]"
    assert masked["email"]["full_text"] == "mi tarjeta es [card ····4242]\n-- \nAna"
    assert kinds == {CARD, NATIONAL_ID, PASSWORD}
    assert contact == original, "the given contact is not changed"
    assert masked["customer"] == contact["customer"] and masked["email"]["message_id"] == "<m1@example.com>"


def test_a_contact_with_nothing_to_mask_comes_back_as_it_was():
    contact = mail_contact("mi pedido 1234567 no ha llegado", subject=None)
    assert masked_contact(contact) == (contact, frozenset())


def test_a_masked_text_longer_than_the_contract_allows_is_cut_to_fit():
    contact = mail_contact("pwd=x " * (BODY_TEXT_CHARS // 6))
    masked, _ = masked_contact(contact)
    assert len(masked["body_text"]) == BODY_TEXT_CHARS and masked["body_text"].endswith("…")
    event = Event(type="contact.received", source="deskstream/intake", id="email-abc", data=masked, subject=contact["thread_key"])
    default_contract().validate(event.to_dict())


def test_intake_raw_keeps_the_original_only_where_configured():
    contact = mail_contact(f"tarjeta {CARD_NUMBER}")
    assert as_published(contact, keep_original_text=False)["body_text"] == "tarjeta [card ····4242]"
    assert as_published(contact, keep_original_text=True) is contact
    secret = {"CHAT_SESSION_SECRET": "s" * 32}
    assert IntakeSettings.from_env(secret).keep_original_text is False
    assert IntakeSettings.from_env({**secret, "INTAKE_KEEP_ORIGINAL_TEXT": "true"}).keep_original_text is True


def test_masking_twice_is_masking_once():
    masked, _ = masked_contact(mail_contact(f"{CARD_NUMBER} pwd=x"))
    assert masked_contact(masked) == (masked, frozenset())


def test_the_ticket_made_from_a_masked_chat_carries_no_card_number_even_in_its_subject():
    contact = {"contact_id": "chat-1", "channel": "chat", "thread_key": "chat:s1", "received_at": "2026-12-02T10:00:00Z",
               "customer": {"id": "c-1"}, "subject": None, "body_text": f"Pagué con {CARD_NUMBER} y no llega",
               "reply_to": {"channel": "chat", "address": "s1"}}
    [created] = normalise(masked_contact(contact)[0], Thread())
    assert created.data["subject"] == created.data["body_text"] == "Pagué con [card ····4242] y no llega"
