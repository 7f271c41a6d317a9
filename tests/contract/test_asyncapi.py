"""schemas/asyncapi.yaml against the topic catalogue, the schemas and the services' code.

The document is JSON (which is YAML too): PyYAML is not a dependency, and a
`schemas/asyncapi.json` would be loaded by deskstream.contract as an event schema.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from deskstream import topics
from deskstream.contract import SCHEMA_DIR, default_contract, schema_files
from deskstream.topics import DEADLETTER, TABLES, TOPICS, app_id

from services.intake import sms_webhook
from services.notifier import status_webhook
from tests.contract.emitted import scenarios

ASYNCAPI = SCHEMA_DIR / "asyncapi.yaml"
SERVICES_DIR = Path(__file__).resolve().parents[2] / "services"
SCHEMA_FORMAT = "application/schema+json;version=2020-12"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return orjson.loads(ASYNCAPI.read_bytes())


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def deref(doc: dict[str, Any], node: Any) -> Any:
    """Follow `$ref`s (an operation's message points at a channel's, which points at components)."""
    while isinstance(node, dict) and "$ref" in node:
        node = resolve(doc, node["$ref"])
    return node


def local_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) and node["$ref"].startswith("#") else []
        return found + [ref for value in node.values() for ref in local_refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in local_refs(value)]
    return []


def channel_of(doc: dict[str, Any], event_type: str) -> dict[str, Any]:
    [channel] = [
        channel for channel in doc["channels"].values()
        if any(deref(doc, ref)["name"] == event_type for ref in channel["messages"].values())
    ]
    return channel


def message_named(doc: dict[str, Any], event_type: str) -> dict[str, Any]:
    [message] = [m for m in doc["components"]["messages"].values() if m["name"] == event_type]
    return message


def test_it_is_an_asyncapi_3_document_with_the_local_broker(doc):
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["servers"]["local"]["host"] == "127.0.0.1:9092"
    assert doc["servers"]["local"]["protocol"] == "kafka"


def test_it_parses_as_yaml_the_same_way():
    yaml = pytest.importorskip("yaml")
    assert yaml.safe_load(ASYNCAPI.read_text(encoding="utf-8")) == orjson.loads(ASYNCAPI.read_bytes())


def test_every_topic_is_a_channel_and_every_channel_a_topic(doc):
    addresses = {channel["address"] for channel in doc["channels"].values()}
    assert addresses == {spec.name for spec in TOPICS}


def test_channels_state_the_retention_the_topics_are_created_with(doc):
    by_address = {channel["address"]: channel for channel in doc["channels"].values()}
    for spec in TOPICS:
        configuration = by_address[spec.name]["bindings"]["kafka"]["topicConfiguration"]
        assert configuration["retention.ms"] == int(spec.configs["retention.ms"]), spec.name


def test_every_local_reference_resolves(doc):
    refs = local_refs(doc)
    assert refs
    for ref in refs:
        resolve(doc, ref)


def test_every_message_payload_is_a_schema_in_this_folder(doc):
    files = schema_files()
    for key, message in doc["components"]["messages"].items():
        payload = message["payload"]
        assert payload["schemaFormat"] == SCHEMA_FORMAT, key
        ref = payload["schema"]["$ref"]
        assert ref == f"./{message['name']}.json", key
        assert (SCHEMA_DIR / ref).is_file(), ref
        assert files[ref[2:]]["properties"]["type"]["const"] == message["name"]


def test_every_event_type_is_a_message_on_a_channel_and_sent_by_someone(doc):
    names = [message["name"] for message in doc["components"]["messages"].values()]
    assert sorted(names) == sorted(default_contract().event_types)
    sent = {
        deref(doc, ref)["name"]
        for operation in doc["operations"].values() if operation["action"] == "send"
        for ref in operation["messages"]
    }
    assert sent == default_contract().event_types
    for event_type in names:
        channel_of(doc, event_type)  # on exactly one channel


def test_each_message_is_on_the_topic_its_schema_names(doc):
    for name, schema in schema_files().items():
        if name == "cloudevent.json":
            continue
        topic = re.search(r"Topic ([a-z._]+?)[,.]? key", schema["description"]).group(1)
        assert channel_of(doc, name.removesuffix(".json"))["address"] == topic, name


def test_operations_use_the_messages_of_their_channel(doc):
    for key, operation in doc["operations"].items():
        channel_ref = operation["channel"]["$ref"]
        assert operation["action"] in ("send", "receive"), key
        assert operation["messages"], key
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel_ref + "/messages/"), key


def test_receive_operations_name_the_hops_consumer_group(doc):
    described: dict[str, set[str]] = {}
    for key, operation in doc["operations"].items():
        [service] = [tag["name"] for tag in operation["tags"]]
        assert service in TABLES, key
        if operation["action"] == "receive":
            topic = resolve(doc, operation["channel"]["$ref"])["address"]
            [group] = operation["bindings"]["kafka"]["groupId"]["enum"]
            assert group in hops_in_code(service)[topic], key
            described.setdefault(service, set()).add(group)
    for service in TABLES:  # one receive operation per hop
        assert described.get(service, set()) == {g for groups in hops_in_code(service).values() for g in groups}, service


def _service_calls(service: str):
    for path in (SERVICES_DIR / service).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
                yield node.func.value.id, node.func.attr, node


def hops_in_code(service: str) -> dict[str, set[str]]:
    """source topic -> consumer groups, for each `@pipeline.processor(name, source=TOPIC)`."""
    hops: dict[str, set[str]] = {}
    for owner, method, node in _service_calls(service):
        if (owner, method) == ("pipeline", "processor"):
            [source] = [k.value for k in node.keywords if k.arg == "source"]
            hops.setdefault(getattr(topics, source.id), set()).add(f"{app_id(service)}.{node.args[0].value}")
    return hops


def topics_in_code(service: str) -> set[tuple[str, str]]:
    """(action, topic) for each hop's source, `step.emit` and `pipeline.publish` in a service's code."""
    found = {("receive", topic) for topic in hops_in_code(service)}
    for owner, method, node in _service_calls(service):
        if (owner, method) in (("step", "emit"), ("pipeline", "publish")) and node.args and isinstance(node.args[0], ast.Name):
            found.add(("send", getattr(topics, node.args[0].id)))
    return found


@pytest.mark.parametrize("service", sorted(TABLES))
def test_operations_match_what_each_service_reads_and_writes(doc, service):
    described = {
        (operation["action"], resolve(doc, operation["channel"]["$ref"])["address"])
        for operation in doc["operations"].values()
        if [tag["name"] for tag in operation["tags"]] == [service]
    }
    in_code = topics_in_code(service) | {("send", DEADLETTER)}  # Processor._dead_letter, in every hop
    assert described == in_code


def test_the_deadletter_key_lists_the_topics_services_read_the_mailbox_and_the_webhooks(doc):
    read = {
        resolve(doc, operation["channel"]["$ref"])["address"]
        for operation in doc["operations"].values() if operation["action"] == "receive"
    }
    topics_key, mailbox_key, webhooks_key = message_named(doc, "deadletter.recorded")["bindings"]["kafka"]["key"]["anyOf"]
    assert set(topics_key["enum"]) == read
    assert Draft202012Validator(mailbox_key).is_valid("imap:INBOX")
    assert set(webhooks_key["enum"]) == {sms_webhook.DEADLETTER_ORIGIN, status_webhook.DEADLETTER_ORIGIN}


def test_emitted_events_go_to_the_described_topic_with_a_described_key(doc):
    for item in scenarios():
        assert channel_of(doc, item.type)["address"] == item.topic, item.name
        key_schema = message_named(doc, item.type)["bindings"]["kafka"]["key"]
        if item.key is not None:
            assert Draft202012Validator(key_schema).is_valid(item.key), (item.name, item.key)
