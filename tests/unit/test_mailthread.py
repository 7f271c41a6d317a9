"""How our mail names its ticket, and how a reply is traced back to it."""
from __future__ import annotations

from datetime import datetime, timezone
from email import message_from_bytes, policy

from deskstream.mailthread import message_id, reply_subject, ticket_named
from deskstream.customers import customer_id
from services.notifier.email import compose


def test_the_reply_subject_is_tagged_once_and_prefixed_once():
    assert reply_subject("Sin conexión", "T-ABCDEFGH") == "Re: Sin conexión [#T-ABCDEFGH]"
    assert reply_subject("RE: Re: Sin conexión [#T-ABCDEFGH]", "T-ABCDEFGH") == "Re: Sin conexión [#T-ABCDEFGH]"
    assert reply_subject("", "T-ABCDEFGH") == "[#T-ABCDEFGH]"


def test_a_ticket_is_named_by_the_subject_tag_or_by_our_message_id():
    ours = message_id("T-ABCDEFGH", "T-ABCDEFGH.ack", "deskstream.test").strip("<>")
    assert ticket_named("Re: hola [#T-ZZZZZZZZ]", None, []) == "T-ZZZZZZZZ"
    assert ticket_named("Re: hola", ours, []) == "T-ABCDEFGH"
    assert ticket_named("Re: hola", "x@cliente.es", ["a@cliente.es", ours]) == "T-ABCDEFGH"
    assert ticket_named("Re: hola", "x@cliente.es", ["a@cliente.es"]) is None


def test_the_same_request_always_has_the_same_message_id():
    assert message_id("T-ABCDEFGH", "T-ABCDEFGH.ack", "d.test") == message_id("T-ABCDEFGH", "T-ABCDEFGH.ack", "d.test")
    assert message_id("T-ABCDEFGH", "T-ABCDEFGH.ack", "d.test") != message_id("T-ABCDEFGH", "T-ABCDEFGH.reply.1", "d.test")


def test_the_same_address_is_the_same_customer_on_every_channel():
    assert customer_id(email="Marta@Example.es", fallback="session-1") == customer_id(email="marta@example.es", fallback="x")
    assert customer_id(fallback="session-1") != customer_id(fallback="session-2")


def test_an_acknowledgement_mail_is_a_threaded_automatic_reply_with_text_and_html():
    request = {
        "request_id": "T-ABCDEFGH.ack", "ticket_id": "T-ABCDEFGH", "reason": "acknowledgement", "language": "es",
        "recipient": {"channel": "email", "address": "marta@cliente.es"}, "template": "acknowledgement",
        "params": {"thread": {"subject": "Sin conexión", "message_id": "m2@cliente.es", "references": ["m1@cliente.es"]}},
    }
    message = compose(request, "Hola Marta, <b>no</b> es HTML.", from_address="soporte@d.test", from_name="Soporte",
                      domain="d.test", now=datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc))
    parsed = message_from_bytes(message.as_bytes(policy=policy.SMTP), policy=policy.default)

    assert parsed["Subject"] == "Re: Sin conexión [#T-ABCDEFGH]"
    assert parsed["In-Reply-To"] == "<m2@cliente.es>"
    assert parsed["References"] == "<m1@cliente.es> <m2@cliente.es>"
    assert parsed["Message-ID"] == message_id("T-ABCDEFGH", "T-ABCDEFGH.ack", "d.test")
    assert parsed["Auto-Submitted"] == "auto-replied" and parsed["X-Deskstream-Ticket"] == "T-ABCDEFGH"
    assert parsed.get_body(("plain",)).get_content().strip() == "Hola Marta, <b>no</b> es HTML."
    assert "&lt;b&gt;no&lt;/b&gt;" in parsed.get_body(("html",)).get_content()
