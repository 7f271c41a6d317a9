"""The CloudEvents envelope: what goes on a topic, and what comes back off it."""
import re

import orjson
import pytest

from deskstream.events import DATA_CONTENT_TYPE, SPECVERSION, Event, EventDecodeError, schema_url, stable_id, utcnow

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def an_event(**changes) -> Event:
    fields = dict(
        type="ticket.message_received",
        source="deskstream/intake",
        id="T-ABCDEFGH.message.abc",
        data={"ticket_id": "T-ABCDEFGH", "body_text": "¿Sigue sin conexión? Sí, señor: ñandú, pingüino."},
        subject="T-ABCDEFGH",
        time="2026-11-23T09:41:07.250Z",
    )
    fields.update(changes)
    return Event(**fields)


def envelope(**changes) -> dict:
    value = an_event().to_dict()
    value.update(changes)
    return value


def test_an_event_round_trips_through_bytes():
    event = an_event()
    assert Event.decode(event.encode()) == event


def test_text_is_utf8_on_the_wire_not_escaped():
    raw = an_event().encode()
    assert "ñandú".encode() in raw
    assert b"\\u" not in raw


def test_the_envelope_names_its_schema_and_content_type():
    value = an_event().to_dict()
    assert value["specversion"] == SPECVERSION == "1.0"
    assert value["datacontenttype"] == DATA_CONTENT_TYPE == "application/json"
    assert value["dataschema"] == schema_url("ticket.message_received") == "https://deskstream.dev/schemas/ticket.message_received.json"


def test_no_subject_means_no_subject_attribute():
    event = an_event(subject=None)
    assert "subject" not in event.to_dict()
    assert Event.decode(event.encode()) == event


def test_the_time_defaults_to_now_in_rfc3339_with_milliseconds():
    event = Event(type="chat.message", source="deskstream/notifier", id="x", data={})
    assert TIMESTAMP.match(event.time)
    assert TIMESTAMP.match(utcnow())


def test_stable_ids_depend_only_on_their_inputs():
    assert stable_id("chat", "s1", "m1") == stable_id("chat", "s1", "m1")
    assert stable_id("chat", "s1", "m1") != stable_id("chat", "s1m", "1")  # parts are separated
    assert re.fullmatch(r"[a-z2-7]{26}", stable_id("x"))
    assert len(stable_id("x", length=8)) == 8


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"", "not JSON"),
        (b"{not json", "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'"contact.received"', "not a JSON object"),
        (b"null", "not a JSON object"),
    ],
    ids=["empty", "garbage", "not-utf8", "array", "string", "null"],
)
def test_bytes_that_are_not_a_json_object_are_refused(raw: bytes, reason: str):
    with pytest.raises(EventDecodeError, match=reason):
        Event.decode(raw)


@pytest.mark.parametrize("attribute", ["specversion", "id", "source", "type", "time", "data"])
def test_a_missing_attribute_is_refused_by_name(attribute: str):
    value = envelope()
    del value[attribute]
    with pytest.raises(EventDecodeError, match=f"missing CloudEvents attribute '{attribute}'"):
        Event.decode(orjson.dumps(value))


@pytest.mark.parametrize("version", ["0.3", "1", 1.0, None])
def test_another_specversion_is_refused(version):
    with pytest.raises(EventDecodeError, match="unsupported specversion"):
        Event.decode(orjson.dumps(envelope(specversion=version)))


@pytest.mark.parametrize("data", [None, [], "text", 3])
def test_data_must_be_an_object(data):
    with pytest.raises(EventDecodeError, match="data must be a JSON object"):
        Event.decode(orjson.dumps(envelope(data=data)))


def test_decode_errors_are_value_errors():
    assert issubclass(EventDecodeError, ValueError)
