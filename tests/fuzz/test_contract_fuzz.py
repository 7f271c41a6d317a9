"""The contract's two validators agree where it matters: whatever the fast one
(jsonschema-rs) passes, the reference (jsonschema) passes too, since a pass by the fast
one is final (deskstream/contract.py). Events are the golden examples with one value
replaced by anything JSON can carry, strings drawn to hit the patterns' edges."""
from __future__ import annotations

import copy
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from deskstream.contract import ENVELOPE, Contract, SchemaViolation, inline_refs, schema_files
from tests.contract.golden import example_paths, load
from tests.fuzz.support import scaled

SCHEMAS = schema_files()
VALIDATORS = {name.removesuffix(".json"): (jsonschema_rs.Draft202012Validator(inline_refs(SCHEMAS, name)),
                                           Draft202012Validator(inline_refs(SCHEMAS, name)))
              for name in SCHEMAS if name != ENVELOPE}
EXAMPLES = [load(path) for path in example_paths()]

# Characters where regex dialects part ways: line ends before `$`, the whitespace and
# separator sets of `\s`, digits beyond ASCII for `\d`, word characters for `\w`.
EDGES = "\n\r\t\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2028\u2029\u202f\u3000\ufeff٣۵߀१০T-Z:+.@<>_ aA0"
texts = st.text(st.sampled_from(EDGES), max_size=24) | st.text(max_size=24)
values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3), max_leaves=6)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Where a value can be replaced: every key and index, nested."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, prefix + (index,))
    return found


def replaced(envelope: dict[str, Any], where: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(envelope)
    node = changed
    for step in where[:-1]:
        node = node[step]
    node[where[-1]] = value
    return changed


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """An example's type, and the example with one value replaced."""
    envelope = draw(st.sampled_from(EXAMPLES))
    where = draw(st.sampled_from(paths(envelope)))
    original = copy.deepcopy(envelope)
    node: Any = original
    for step in where:
        node = node[step]
    value = draw(st.one_of(values, st.builds(lambda s, extra: s + extra, st.just(node), texts) if isinstance(node, str) else values))
    return envelope["type"], replaced(envelope, where, value)


@settings(max_examples=scaled(8))
@given(mutated())
def test_what_the_fast_validator_passes_the_reference_passes(typed):
    event_type, envelope = typed
    fast, reference = VALIDATORS[event_type]
    if fast.is_valid(envelope):
        errors = [error.message[:200] for error in reference.iter_errors(envelope)]
        assert not errors, errors


@pytest.mark.parametrize("message_id", ["<a\x1cb@example.com>", "<ab@exam\x1fple.com>", "<a b@example.com>",
                                        "<a\u2028b@example.com>"])
def test_a_message_id_either_validator_refuses_is_refused(message_id):
    receipt = next(e for e in EXAMPLES if e["type"] == "notify.sent" and e["data"].get("provider_message_id", "").startswith("<"))
    envelope = replaced(receipt, ("data", "provider_message_id"), message_id)
    with pytest.raises(SchemaViolation, match="provider_message_id: fails anyOf"):
        Contract().validate(envelope)
