"""Validation of events against the JSON Schemas in `schemas/`.

Every event is checked where it enters the pipeline and before it leaves a service,
so a producer bug shows up as a dead-lettered record with a reason instead of a
consumer crash three hops later.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
from jsonschema import Draft202012Validator, ValidationError

from deskstream.events import Event

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
ENVELOPE = "cloudevent.json"


class SchemaViolation(ValueError):
    """An event that does not match its schema; `reason` says where and why."""

    def __init__(self, event_type: str, reason: str) -> None:
        super().__init__(f"{event_type}: {reason}")
        self.event_type = event_type
        self.reason = reason


def schema_files(directory: Path = SCHEMA_DIR) -> dict[str, dict[str, Any]]:
    """Every schema in the directory, by file name."""
    return {path.name: orjson.loads(path.read_bytes()) for path in sorted(directory.glob("*.json"))}


def inline_refs(schemas: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    """Schema `name` with every `$ref` replaced by what it points to (in this folder).

    Every event is validated two or three times on its way, and jsonschema's `$ref`
    lookups were half of each validation (`make bench`); the schemas have no recursive
    references, so the resolved form validates the same in half the time.
    """

    def resolve(node: Any, document: str, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [resolve(item, document, seen) for item in node]
        if not isinstance(node, dict):
            return node
        rest = {key: resolve(value, document, seen) for key, value in node.items() if key not in ("$ref", "$defs", "$id", "$schema")}
        if "$ref" not in node:
            return rest
        target_document, _, fragment = node["$ref"].partition("#")
        target_document = target_document.removeprefix("./") or document
        where = f"{target_document}#{fragment}"
        if where in seen:
            raise ValueError(f"{name}: recursive $ref {where} cannot be inlined")
        target: Any = schemas[target_document]
        for part in filter(None, fragment.split("/")):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        resolved = resolve(target, target_document, seen + (where,))
        return {"allOf": [resolved], **rest} if rest else resolved

    inlined = resolve(schemas[name], name, ())
    inlined["$schema"] = schemas[name].get("$schema", "https://json-schema.org/draft/2020-12/schema")
    return inlined


class Contract:
    """The event types a directory of schemas defines, and a validator for each.

    Two validators per type: jsonschema-rs (compiled, about 60 times faster) says
    whether an event is valid, and the reference implementation, jsonschema, decides
    and describes every event the fast one does not pass. Checking events was a
    quarter to a half of every service's CPU (py-spy under `bench.load`). Where the two
    differ it is the fast one that is stricter (its `$` does not match before a final
    newline, as Python's does), so a verdict is always jsonschema's; the patterns are
    written so the two read them alike (`tests/fuzz/test_contract_fuzz.py` checks)."""

    def __init__(self, directory: Path = SCHEMA_DIR) -> None:
        schemas = schema_files(directory)
        inlined = {name.removesuffix(".json"): inline_refs(schemas, name) for name in schemas if name != ENVELOPE}
        self._validators = {event_type: Draft202012Validator(schema) for event_type, schema in inlined.items()}
        self._fast = {event_type: jsonschema_rs.Draft202012Validator(schema) for event_type, schema in inlined.items()}

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(self._validators)

    def validate(self, envelope: dict[str, Any]) -> None:
        event_type = envelope.get("type")
        validator = self._validators.get(event_type) if isinstance(event_type, str) else None
        if validator is None:
            raise SchemaViolation(str(event_type), "unknown event type")
        try:
            if self._fast[event_type].is_valid(envelope):
                return
        except ValueError:  # a value it cannot read as JSON (a str subclass, such as a mail header): the reference decides
            pass
        error = next(iter(sorted(validator.iter_errors(envelope), key=lambda e: e.path)), None)
        if error is not None:
            raise SchemaViolation(event_type, describe(error))

    def check(self, event: Event) -> Event:
        """Validate and hand the event back, so a send reads `send(contract.check(e))`."""
        self.validate(event.to_dict())
        return event


def describe(error: ValidationError) -> str:
    """Where and which rule failed, in words taken from the schema only: jsonschema's own
    messages quote the offending value, which may be customer text that must not reach logs."""
    where = "/".join(str(part) for part in error.absolute_path) or "(envelope)"
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        return f"{where}: missing required {', '.join(missing)}"
    if error.validator == "additionalProperties":
        return f"{where}: has properties the schema does not allow"
    rule = repr(error.validator_value)
    return f"{where}: fails {error.validator} {rule[:120]}"


@functools.cache
def default_contract() -> Contract:
    return Contract()
