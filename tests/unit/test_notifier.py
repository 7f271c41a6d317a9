"""What the notifier says, and when it asks to say it."""
from deskstream.recipients import recipient_key
from services.notifier import requests
from services.notifier.templates import UnknownTemplate, render

import pytest

CREATED = {
    "ticket_id": "T-ABCDEFGH", "channel": "chat",
    "customer": {"id": "cus-1", "name": "Marta López", "language": "es"},
    "reply_to": {"channel": "chat", "address": "session-1234567890"},
}
CLASSIFIED = {"ticket_id": "T-ABCDEFGH", "estimated_wait_minutes": 12, "priority": "P3"}


def test_the_acknowledgement_speaks_the_customers_language():
    request = requests.acknowledgement(CLASSIFIED, requests.remember_contact(CREATED))
    text = render(request["template"], request["language"], request["params"])
    assert text == ("Hola Marta, hemos recibido tu mensaje. Tu número de ticket es T-ABCDEFGH. "
                    "Un agente te responderá en aproximadamente 12 minutos.")


def test_english_and_unknown_languages_fall_back_to_english():
    params = {"ticket_id": "T-ABCDEFGH", "wait_minutes": 1}
    assert render("acknowledgement", "en", params) == (
        "Hi, we have your message. Your ticket number is T-ABCDEFGH. An agent will answer within about 1 minute.")
    assert render("acknowledgement", "fr", params).startswith("Hi,")


def test_a_replayed_event_asks_for_the_same_message():
    contact = requests.remember_contact(CREATED)
    assert requests.acknowledgement(CLASSIFIED, contact)["request_id"] == requests.acknowledgement(CLASSIFIED, contact)["request_id"]
    assert recipient_key(contact["reply_to"]) == "chat:session-1234567890"


def test_unknown_templates_are_an_error():
    with pytest.raises(UnknownTemplate):
        render("nope", "en", {})


def test_an_agents_reply_is_delivered_as_written_and_signed_with_the_ticket():
    replied = {"ticket_id": "T-ABCDEFGH", "reply_id": "abcdefghijkl", "agent_id": "lucia", "agent_name": "Lucía Romero",
               "text": "Reinicia el router {por favor} y dime si vuelve la conexión.", "sent_at": "2026-12-02T10:00:00.000Z"}
    request = requests.agent_reply(replied, requests.remember_contact(CREATED))
    assert (request["request_id"], request["reason"], request["recipient"]) == (
        "T-ABCDEFGH.reply.abcdefghijkl", "reply", {"channel": "chat", "address": "session-1234567890"})
    text = render(request["template"], request["language"], request["params"])
    assert text == "Reinicia el router {por favor} y dime si vuelve la conexión.\n\nLucía, Soporte (T-ABCDEFGH)"
