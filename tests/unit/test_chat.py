"""The chat API's contract, checked without a server."""
import pytest

from deskstream.bearer import bearer_token
from services.intake import chat


def body(**overrides):
    return {"client_message_id": "m-1", "text": "Hola, no tengo internet", **overrides}


def test_a_first_message_needs_no_session():
    message = chat.parse_message(body(customer={"name": "Marta", "language": "es"}))
    assert message.session_id is None
    assert message.customer == {"name": "Marta", "language": "es"}


@pytest.mark.parametrize(
    "raw, reason, status",
    [
        ([], "JSON object", 400),
        (body(text=""), "empty", 400),
        (body(text="   \n"), "empty", 400),
        (body(text=42), "must be a string", 400),
        (body(text="ñ" * 8193), "longer than 16384 bytes", 413),
        (body(client_message_id=""), "client_message_id", 400),
        (body(client_message_id="x" * 129), "client_message_id", 400),
        (body(session_id="short"), "session id", 400),
        (body(extra=1), "unknown fields: extra", 400),
        (body(customer="Marta"), "customer must be an object", 400),
        (body(customer={"age": "3"}), "customer.age", 400),
        (body(customer={"email": "not-an-address"}), "not an e-mail address", 400),
        (body(customer={"name": "x" * 201}), "at most 200", 400),
        (body(text="\x00\u202e\x1b"), "empty", 400),
        (body(customer={"email": "eve\x00@cliente.example"}), "not an e-mail address", 400),
    ],
)
def test_bad_messages_are_refused_with_a_reason(raw, reason, status):
    with pytest.raises(chat.ChatRejected) as refused:
        chat.parse_message(raw)
    assert reason in refused.value.reason
    assert refused.value.status == status


def test_what_would_show_otherwise_than_it_reads_is_taken_out_of_text_and_names():
    message = chat.parse_message(body(text="factura\r\nde \u202egnp.exe\x00\x1b[2J\tya", customer={
        "name": "Eve\u202e\r\nBcc: x@evil.example\u2066", "email": "eve@cliente.example"}))
    assert message.text == "factura\nde gnp.exe[2J\tya"
    assert message.customer == {"name": "Eve Bcc: x@evil.example", "email": "eve@cliente.example"}
    assert chat.parse_message(body(customer={"name": "\u202e"})).customer == {}
    kept = "مرحبا \u200fشكرا"  # right-to-left marks are how Arabic and Hebrew are written: kept
    assert chat.parse_message(body(text=kept)).text == kept


def test_text_up_to_the_limit_is_accepted_in_bytes_not_characters():
    assert chat.parse_message(body(text="a" * chat.MAX_TEXT_BYTES)).text
    with pytest.raises(chat.ChatRejected):
        chat.parse_message(body(text="á" * (chat.MAX_TEXT_BYTES // 2 + 1)))


def test_a_session_id_alone_does_not_open_the_session():
    secret = b"s" * 32
    session_id = chat.new_session_id()
    token = chat.session_token(secret, session_id)
    assert chat.token_matches(secret, session_id, token)
    assert not chat.token_matches(secret, session_id, None)
    assert not chat.token_matches(secret, session_id, session_id)
    assert not chat.token_matches(b"t" * 32, session_id, token)
    assert not chat.token_matches(secret, chat.new_session_id(), token)


def test_retried_messages_keep_their_contact_id():
    assert chat.contact_id("abc", "m-1") == chat.contact_id("abc", "m-1")
    assert chat.contact_id("abc", "m-1") != chat.contact_id("abc", "m-2")
    assert chat.contact_id("abc", "m-1") != chat.contact_id("abd", "m-1")


def test_bearer_token_parsing():
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token(None) is None
