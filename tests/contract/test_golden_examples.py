"""Golden examples: every event type has some, and every one of them validates."""
from pathlib import Path

import pytest

from deskstream.contract import default_contract
from deskstream.events import Event, schema_url

from tests.contract.emitted import scenarios
from tests.contract.golden import EXAMPLES, example_id, example_paths, load, refused

EXAMPLE_PATHS = example_paths()


@pytest.mark.parametrize("path", EXAMPLE_PATHS, ids=[example_id(p) for p in EXAMPLE_PATHS])
def test_the_golden_example_validates(path: Path):
    envelope = load(path)
    default_contract().validate(envelope)
    assert envelope["type"] == path.parent.name
    assert envelope["dataschema"] == schema_url(envelope["type"])


@pytest.mark.parametrize("path", EXAMPLE_PATHS, ids=[example_id(p) for p in EXAMPLE_PATHS])
def test_the_golden_example_decodes_as_consumers_decode_it(path: Path):
    raw = path.read_bytes()
    assert Event.decode(raw).to_dict() == load(path)


def test_every_event_type_has_a_golden_example():
    covered = {path.parent.name for path in EXAMPLE_PATHS}
    assert default_contract().event_types - covered == set()


def test_every_example_folder_is_an_event_type():
    folders = {folder.name for folder in EXAMPLES.iterdir() if folder.is_dir()}
    assert folders - default_contract().event_types == set()


def test_the_contract_refuses_none_of_them():
    assert refused(default_contract()) == {}


def test_the_examples_carry_spanish_text_as_utf8():
    texts = "".join(path.read_text(encoding="utf-8") for path in EXAMPLE_PATHS)
    assert all(char in texts for char in "áéíóúñ¿¡")
    assert "\\u00" not in texts  # written as UTF-8, not escaped


def test_what_the_code_emits_today_validates():
    emitted = scenarios()
    for item in emitted:
        default_contract().check(item.event)
    assert {item.type for item in emitted} == default_contract().event_types

