"""A schema change must keep every golden example valid: old events stay on the topics
(and get replayed), so the only safe change is one that accepts everything it accepted
before, such as a new optional field. These tests prove the golden examples catch a
breaking change and let a compatible one through."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import orjson
import pytest

from deskstream.contract import SCHEMA_DIR, Contract

from tests.contract.golden import example_id, example_paths, refused

Schemas = dict[str, dict[str, Any]]


def contract_after(tmp_path: Path, change: Callable[[Schemas], None]) -> Contract:
    """A Contract over a copy of schemas/ with `change` applied to the parsed files."""
    directory = tmp_path / "schemas"
    shutil.copytree(SCHEMA_DIR, directory)
    schemas = {path.name: orjson.loads(path.read_bytes()) for path in directory.glob("*.json")}
    change(schemas)
    for name, schema in schemas.items():
        (directory / name).write_bytes(orjson.dumps(schema, option=orjson.OPT_INDENT_2))
    return Contract(directory)


def data_of(schemas: Schemas, event_type: str) -> dict[str, Any]:
    return schemas[f"{event_type}.json"]["properties"]["data"]


def examples_of(event_type: str) -> set[str]:
    return {example_id(path) for path in example_paths() if path.parent.name == event_type}


def new_required_field(schemas: Schemas) -> None:
    data = data_of(schemas, "ticket.created")
    data["properties"]["priority_hint"] = {"type": "string"}
    data["required"].append("priority_hint")


def narrower_language_enum(schemas: Schemas) -> None:
    schemas["cloudevent.json"]["$defs"]["language"]["enum"].remove("es")


def narrower_channel_enum(schemas: Schemas) -> None:
    schemas["cloudevent.json"]["$defs"]["channel"]["enum"].remove("email")


def shorter_body_text(schemas: Schemas) -> None:
    schemas["cloudevent.json"]["$defs"]["body_text"]["maxLength"] = 80


def removed_optional_property(schemas: Schemas) -> None:
    del data_of(schemas, "ticket.classified")["properties"]["signals"]["properties"]["specialist_words"]


def changed_type(schemas: Schemas) -> None:
    data_of(schemas, "deadletter.recorded")["properties"]["original_size"] = {"type": "string"}


def tighter_ticket_id(schemas: Schemas) -> None:
    schemas["cloudevent.json"]["$defs"]["ticket_id"]["pattern"] = "^T-[A-Z]{8}$"


BREAKING = {
    "new required field": (new_required_field, examples_of("ticket.created"), "data: missing required priority_hint"),
    "narrower language enum": (narrower_language_enum, {"ticket.classified/chat-es-network", "notify.requested/chat-es"}, "language: fails enum"),
    "narrower channel enum": (narrower_channel_enum, {"notify.failed/email-es", "notify.requested/email-es"}, "data/recipient/channel: fails enum"),
    "shorter maximum length": (shorter_body_text, {"contact.received/chat-es", "ticket.created/chat-es-p1"}, "data/body_text: fails maxLength 80"),
    "removed optional property": (removed_optional_property, examples_of("ticket.classified"), "data/signals: has properties the schema does not allow"),
    "changed type": (changed_type, examples_of("deadletter.recorded"), "data/original_size: fails type 'string'"),
    "tighter pattern": (tighter_ticket_id, {"ticket.created/chat-es", "chat.message/chat-en"}, "data/ticket_id: fails pattern"),
}


@pytest.mark.parametrize("change, caught, reason", BREAKING.values(), ids=BREAKING.keys())
def test_a_breaking_change_fails_the_golden_examples(tmp_path: Path, change, caught: set[str], reason: str):
    reasons = refused(contract_after(tmp_path, change))
    assert caught <= set(reasons)
    for name in caught:
        assert reason in reasons[name], name


def optional_field(schemas: Schemas) -> None:
    data_of(schemas, "ticket.created")["properties"]["priority_hint"] = {"type": "string"}


def wider_enums(schemas: Schemas) -> None:
    defs = schemas["cloudevent.json"]["$defs"]
    defs["channel"]["enum"].append("telegram")
    defs["language"]["enum"].append("pt")
    data_of(schemas, "notify.requested")["properties"]["reason"]["enum"].append("assignment")


def required_made_optional(schemas: Schemas) -> None:
    data_of(schemas, "ticket.created")["required"].remove("subject")


def longer_maximum(schemas: Schemas) -> None:
    data_of(schemas, "chat.message")["properties"]["kind"]["maxLength"] = 100


def new_optional_envelope_attribute(schemas: Schemas) -> None:
    schemas["cloudevent.json"]["properties"]["traceparent"] = {"type": "string"}


COMPATIBLE = {
    "optional field": optional_field,
    "wider enums": wider_enums,
    "required made optional": required_made_optional,
    "longer maximum": longer_maximum,
    "optional envelope attribute": new_optional_envelope_attribute,
}


@pytest.mark.parametrize("change", COMPATIBLE.values(), ids=COMPATIBLE.keys())
def test_a_compatible_change_keeps_the_golden_examples_passing(tmp_path: Path, change):
    contract = contract_after(tmp_path, change)
    assert refused(contract) == {}


def test_the_copy_without_changes_accepts_them_all(tmp_path: Path):
    contract = contract_after(tmp_path, lambda schemas: None)
    assert refused(contract) == {}
    assert contract.event_types == Contract().event_types
