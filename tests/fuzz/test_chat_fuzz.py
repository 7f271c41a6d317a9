"""The chat API: whatever a browser, a script or an attacker posts to
`POST /api/chat/messages` is stored as one contact the contract accepts (202) or
refused with a 4xx that says why; never a 500, and nothing half-published.

`chat.parse_message` is the contract of the decoded body: any JSON value ends in a
ChatMessage that keeps the promises its refusals state (a client_message_id of
letters, digits and ._:-, a session id this server could have issued, a text that is
not blank and fits in 16 KiB, known customer fields within their lengths), or in
ChatRejected with the status to answer.
"""
from __future__ import annotations

import json
import re
from typing import Any

import orjson
import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from deskstream.topics import INTAKE_RAW
from services.intake import chat
from services.intake.settings import IntakeSettings
from services.intake.web import ChatSockets, chat_routes, contact_event_data
from tests.fuzz.support import RecordingPipeline, Served, publishable, scaled
from tests.harness import GENEROUS_LIMIT, LIMITS

SECRET = "chat-session-secret-for-fuzzing-" + "0123456789abcdef" * 2  # 64 characters
# Thousands of requests from loopback: the abuse limits far above them (tests/security tests those).
SETTINGS = IntakeSettings.from_env({"CHAT_SESSION_SECRET": SECRET, **dict.fromkeys(LIMITS, GENEROUS_LIMIT)})
PATH = "/api/chat/messages"
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
CLIENT_MESSAGE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
CUSTOMER_LIMITS = {"name": 200, "email": 254, "phone": 32, "language": 16}


# -- bodies -------------------------------------------------------------------------------

# What orjson.loads can hand the route: no lone surrogates, integers within 64 bits.
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=5), max_leaves=15)

session_ids = st.from_regex(SESSION_ID, fullmatch=True) | st.text(max_size=70) | st.sampled_from(
    ["a" * 16 + "\n", "a" * 15, "a" * 65, "../../etc/passwd", "a" * 16 + " "])
client_message_ids = st.from_regex(CLIENT_MESSAGE_ID, fullmatch=True) | st.text(max_size=140) | st.sampled_from(
    ["m-1\n", "", "x" * 129, "m 1", "m-1\x00"])
texts = st.one_of(
    st.text(max_size=300),
    st.text(st.characters(), min_size=1, max_size=3).flatmap(
        lambda unit: st.integers(chat.MAX_TEXT_BYTES // 4 - 8, chat.MAX_TEXT_BYTES + 8).map(
            lambda n: (unit * n)[: max(1, n)])),  # around the 16 KiB limit, in 1- to 4-byte characters
    st.sampled_from(["", " ", "\n\t", "\u200b", "\x00", "Hola, no tengo internet"]),
)
customer_values = {
    "name": st.text(max_size=210),
    "email": st.emails() | st.text(max_size=260) | st.sampled_from([" marta@example.es ", "marta@example.es\n", "a@b.c"]),
    "phone": st.from_regex(r"\+?[0-9 ()-]{5,32}", fullmatch=True) | st.text(max_size=40)
    | st.sampled_from(["+34 600 11 22 33", "600112233", "+1 415 555 0134", " +34600112233 ", "(((((", "00000"]),
    "language": st.sampled_from(["es", "en", "es-MX", "EN", "fr", "", "x" * 17]) | st.text(max_size=20),
}
customers = st.one_of(
    st.fixed_dictionaries({}, optional={field: values | st.none() | json_scalars for field, values in customer_values.items()}),
    st.dictionaries(st.text(max_size=10), json_scalars, max_size=3),
    json_values,
)
messages = st.fixed_dictionaries(
    {"client_message_id": client_message_ids, "text": texts},
    optional={"session_id": session_ids | st.none(), "customer": customers, "extra": json_values},
)
valid_messages = st.fixed_dictionaries(  # what the chat page sends, so that many examples get through
    {"client_message_id": st.from_regex(CLIENT_MESSAGE_ID, fullmatch=True), "text": st.text(min_size=1).filter(str.strip)},
    optional={"session_id": st.from_regex(SESSION_ID, fullmatch=True),
              "customer": st.fixed_dictionaries({}, optional={"name": st.text(max_size=200),
                                                              "email": st.sampled_from(["marta@example.es", "a@b.co"]),
                                                              "phone": customer_values["phone"].filter(lambda p: len(p) <= 32),
                                                              "language": st.sampled_from(["es", "en", "es-MX", "fr"])})},
)
bodies = st.one_of(valid_messages, messages, messages.flatmap(  # a message with one field of the wrong kind
    lambda message: st.sampled_from(sorted(message)).flatmap(
        lambda field: json_values.map(lambda value: {**message, field: value}))), json_values)


# -- the contract of a decoded body -------------------------------------------------------------


def assert_keeps_its_promises(message: chat.ChatMessage) -> None:
    """What parse_message's refusals promise of every message it lets through."""
    assert message.session_id is None or SESSION_ID.fullmatch(message.session_id)
    assert CLIENT_MESSAGE_ID.fullmatch(message.client_message_id), message.client_message_id
    assert message.text.strip() and len(message.text.encode()) <= chat.MAX_TEXT_BYTES
    for field, value in message.customer.items():
        assert len(value) <= CUSTOMER_LIMITS[field]


@settings(max_examples=scaled(4))
@given(bodies)
@example({"client_message_id": "m-1\n", "text": "hola"})  # "letters, digits and ._:-" has no newline
@example({"client_message_id": "m-1", "text": "hola", "session_id": "a" * 16 + "\n"})
def test_any_decoded_body_is_a_message_that_keeps_the_contract_or_a_refusal_with_a_status(body: Any) -> None:
    try:
        message = chat.parse_message(body)
    except chat.ChatRejected as refused:
        event("refused")
        assert refused.status in (400, 413) and refused.reason
        return
    event("accepted")
    assert_keeps_its_promises(message)
    data = contact_event_data(message, message.session_id or chat.new_session_id(), SETTINGS.phone_region)
    publishable(RecordingPipeline().event("contact.received", data["contact_id"], data, data["thread_key"]))


# -- the route ------------------------------------------------------------------------------------


class NoOutboxes:
    """The chat_outboxes replica as ChatSockets reads it: nothing stored yet."""

    def get(self, session_id: str, default: Any = None) -> Any:
        return default


PIPELINE = RecordingPipeline()


@pytest.fixture(scope="module")
def served() -> Any:
    sockets = ChatSockets(NoOutboxes())  # type: ignore[arg-type]
    server = Served(chat_routes(PIPELINE, SETTINGS, sockets), client_max_size=chat.MAX_BODY_BYTES)  # type: ignore[arg-type]
    yield server
    server.close()


CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON", "application/json;charset=latin-1",
                 "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                 "application/json-patch+json", "application/octet-stream", "application/json; =="]


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """A POST as anything may send it: a JSON body, near-valid or not; random bytes;
    invalid UTF-8; a body past the 64 KiB limit (declared or chunked); the wrong content
    type; a foreign origin; the session's token, a wrong one or none."""
    body = draw(bodies)
    kind = draw(st.sampled_from(["json", "json", "json", "bytes", "invalid-utf8", "huge", "deep"]))
    if kind == "json":
        raw = json.dumps(body, ensure_ascii=draw(st.booleans())).encode()
    elif kind == "bytes":
        raw = draw(st.binary(max_size=2000))
    elif kind == "invalid-utf8":
        raw = json.dumps(body, ensure_ascii=False).encode() + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"]))
        raw = raw.replace(b'"text": "', b'"text": "\xc3(', 1)
    elif kind == "huge":
        raw = json.dumps({"client_message_id": "m-1", "text": "x" * draw(st.integers(chat.MAX_BODY_BYTES - 64, 3 * chat.MAX_BODY_BYTES))}).encode()
    else:
        depth = draw(st.integers(100, 5000))
        raw = b"[" * depth + b"]" * depth
    session_id = body.get("session_id") if isinstance(body, dict) else None
    headers = {"Content-Type": draw(st.sampled_from(CONTENT_TYPES))}
    token = draw(st.sampled_from(["right", "wrong", "none", "garbage"]))
    if token == "right" and isinstance(session_id, str):
        headers["Authorization"] = "Bearer " + chat.session_token(SECRET.encode(), session_id)
    elif token == "wrong":
        headers["Authorization"] = "Bearer " + chat.session_token(b"another-secret" * 4, str(session_id))
    elif token == "garbage":
        headers["Authorization"] = draw(st.sampled_from(["Bearer", "Bearer ", "Basic abc", "bearer x"]))
    origin = draw(st.sampled_from([None, "same", "https://evil.example", "null"]))
    return {"raw": raw, "headers": headers, "origin": origin, "chunked": draw(st.booleans())}


@settings(max_examples=scaled(1))
@given(requests())
def test_any_post_is_stored_as_one_valid_contact_or_refused_with_a_4xx(served: Served, attempt: dict[str, Any]) -> None:
    PIPELINE.published.clear()
    headers = dict(attempt["headers"])
    if attempt["origin"] == "same":
        headers["Origin"] = str(served.client.make_url("")).rstrip("/")
    elif attempt["origin"] is not None:
        headers["Origin"] = attempt["origin"]

    async def post(client: Any) -> tuple[int, bytes]:
        data = attempt["raw"]
        if attempt["chunked"]:
            async def pieces() -> Any:
                for start in range(0, len(data), 8192):
                    yield data[start:start + 8192]
            answer = await client.post(PATH, data=pieces(), headers=headers)
        else:
            answer = await client.post(PATH, data=data, headers=headers)
        return answer.status, await answer.read()

    status, answer = served.run(post)
    event(f"answered {status}")  # --hypothesis-show-statistics: how many examples got how far
    assert status in (202, 400, 401, 403, 413, 415), (status, answer[:300])
    if status != 202:
        assert PIPELINE.published == []
        return
    [(topic, key, contact)] = PIPELINE.published
    assert (topic, contact.type, key) == (INTAKE_RAW, "contact.received", contact.data["thread_key"])
    reply = orjson.loads(answer)
    assert reply["message_id"] == contact.data["contact_id"]
    assert contact.data["thread_key"] == chat.thread_key(reply["session_id"])
    assert chat.token_matches(SECRET.encode(), reply["session_id"], reply["session_token"])
