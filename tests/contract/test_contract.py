"""deskstream.contract: which events pass, and what the reason says when one does not."""
import copy

import pytest

from deskstream.contract import SCHEMA_DIR, Contract, SchemaViolation, default_contract
from deskstream.events import Event

from tests.contract.golden import EXAMPLES, load

SECRET = "Mi contraseña es Pingüino-1234"


@pytest.fixture()
def created() -> dict:
    return copy.deepcopy(load(EXAMPLES / "ticket.created" / "chat-es.json"))


def reason_for(envelope: dict) -> str:
    with pytest.raises(SchemaViolation) as raised:
        default_contract().validate(envelope)
    return raised.value.reason


def test_the_event_types_are_the_schema_files_but_the_envelope():
    names = {path.stem for path in SCHEMA_DIR.glob("*.json")}
    assert default_contract().event_types == names - {"cloudevent"}
    assert "asyncapi" not in default_contract().event_types


def test_an_unknown_type_is_refused_with_the_reason(created):
    created["type"] = "ticket.merged"
    with pytest.raises(SchemaViolation) as raised:
        default_contract().validate(created)
    assert raised.value.event_type == "ticket.merged"
    assert raised.value.reason == "unknown event type"
    assert str(raised.value) == "ticket.merged: unknown event type"


@pytest.mark.parametrize("value", [None, 7, ["ticket.created"]])
def test_a_missing_or_odd_type_is_an_unknown_type(created, value):
    if value is None:
        del created["type"]
    else:
        created["type"] = value
    assert reason_for(created) == "unknown event type"


def test_a_violation_names_the_path(created):
    created["data"]["customer"]["language"] = "fr"
    assert reason_for(created) == "data/customer/language: fails enum ['es', 'en']"


def test_a_missing_field_is_named(created):
    del created["data"]["body_text"]
    assert reason_for(created) == "data: missing required body_text"


def test_an_unknown_field_is_refused(created):
    created["data"]["notes"] = "x"
    assert reason_for(created) == "data: has properties the schema does not allow"


def test_an_unknown_envelope_attribute_is_refused(created):
    created["traceparent"] = "00-abc"
    assert reason_for(created) == "(envelope): has properties the schema does not allow"


def test_an_envelope_violation_names_the_attribute(created):
    created["source"] = "billing-system"
    assert reason_for(created).startswith("source: fails pattern")


@pytest.mark.parametrize("moment", ["2026-13-01T10:00:00Z", "2026-12-32T10:00:00Z", "2026-12-02T24:00:00Z",
                                    "2026-12-02T10:60:00Z", "2026-12-02T10:00:61Z", "2026-12-02T10:00:00+24:00"])
def test_a_time_that_is_no_time_is_refused(created, moment):
    created["data"]["received_at"] = moment
    assert reason_for(created).startswith("data/received_at: fails pattern")


@pytest.mark.parametrize("moment", ["2026-12-31T23:59:60Z", "2026-02-28T00:00:00.123456+14:00", "2026-01-09T09:09:09-05:30"])
def test_every_form_of_time_is_accepted(created, moment):
    created["data"]["received_at"] = moment
    default_contract().validate(created)


def test_a_type_that_does_not_match_its_data_is_refused(created):
    created["type"] = "ticket.classified"
    assert reason_for(created).startswith("data: missing required")


@pytest.mark.parametrize(
    "field, value",
    [("body_text", SECRET + "x" * 16384), ("subject", SECRET * 100), ("ticket_id", SECRET)],
)
def test_the_reason_never_quotes_customer_text(created, field, value):
    created["data"][field] = value
    reason = reason_for(created)
    assert reason.startswith(f"data/{field}: fails ")
    assert "contraseña" not in reason and "Pingüino" not in reason


def test_check_hands_the_event_back(created):
    event = Event.decode(EXAMPLES.joinpath("ticket.created", "chat-es.json").read_bytes())
    assert default_contract().check(event) is event


def test_check_refuses_an_invalid_event(created):
    event = Event(type="chat.message", source="deskstream/notifier", id="x", data={"text": ""}, subject=None)
    with pytest.raises(SchemaViolation, match="chat.message: data: missing required"):
        default_contract().check(event)


def test_a_contract_reads_the_directory_it_is_given(tmp_path):
    (tmp_path / "cloudevent.json").write_bytes((SCHEMA_DIR / "cloudevent.json").read_bytes())
    (tmp_path / "chat.message.json").write_bytes((SCHEMA_DIR / "chat.message.json").read_bytes())
    contract = Contract(tmp_path)
    assert contract.event_types == {"chat.message"}
    contract.validate(load(EXAMPLES / "chat.message" / "chat-es.json"))
    with pytest.raises(SchemaViolation, match="unknown event type"):
        contract.validate(load(EXAMPLES / "notify.sent" / "chat-es.json"))


def _mutations(event: dict):
    """Each golden example broken in a few ways the schemas refuse, and left whole."""
    yield event
    for key in list(event["data"])[:4]:
        broken = copy.deepcopy(event)
        del broken["data"][key]
        yield broken
        wrong_type = copy.deepcopy(event)
        wrong_type["data"][key] = 12345
        yield wrong_type
    extra = copy.deepcopy(event)
    extra["data"]["unexpected"] = True
    yield extra


def test_the_inlined_schemas_accept_and_refuse_exactly_what_the_referenced_ones_do():
    """Contract validates with `$ref`s inlined (speed); jsonschema's own resolution is the reference."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    from deskstream.contract import schema_files
    from deskstream.events import SCHEMA_BASE
    from tests.contract.golden import example_paths

    schemas = schema_files()
    registry = Registry().with_resources((SCHEMA_BASE + name, Resource.from_contents(s)) for name, s in schemas.items())
    referenced = {name[:-5]: Draft202012Validator(schema, registry=registry) for name, schema in schemas.items()}
    compared = 0
    for path in example_paths():
        for event in _mutations(load(path)):
            try:
                default_contract().validate(event)
                inlined_valid = True
            except SchemaViolation:
                inlined_valid = False
            assert inlined_valid == referenced[event["type"]].is_valid(event), path
            compared += 1
    assert compared > 300
