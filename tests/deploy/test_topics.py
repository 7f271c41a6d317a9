"""One topic list: deskstream/topics.py. `deskstream topics` creates it (make run,
the tests, the compose file's one-shot job), and the Kubernetes KafkaTopic
resources are rendered from it; these tests keep the three the same."""
from __future__ import annotations

import yaml

from deskstream.settings import KafkaSettings
from deskstream.topic_manifests import DEFAULT_RETENTION, kafka_topics, resource_name
from deskstream.topics import CHANGELOGS, TOPICS, topic_configs
from tests.deploy.manifests import DEPLOY, OVERLAYS, ROOT, of_kind, render

CODE = {spec.name: topic_configs(spec, DEFAULT_RETENTION) for spec in TOPICS + CHANGELOGS}


def test_the_kafka_topics_file_is_rendered_from_the_code() -> None:
    committed = (DEPLOY / "base" / "kafka-topics.yaml").read_text()
    assert committed == kafka_topics(), "run: deskstream topics --kubernetes > deploy/base/kafka-topics.yaml"


def test_every_overlay_creates_exactly_the_code_s_topics_with_their_configs() -> None:
    for overlay in OVERLAYS:
        rendered = of_kind(render(overlay), "KafkaTopic")
        assert {resource["spec"]["topicName"] for resource in rendered.values()} == set(CODE), overlay
        for resource in rendered.values():
            name = resource["spec"]["topicName"]
            assert resource["metadata"]["name"] == resource_name(name)
            config = {key: str(value) for key, value in resource["spec"]["config"].items()}
            config.pop("min.insync.replicas", None)  # the prod overlay's durability, on every topic
            assert config == CODE[name], f"{overlay}: {name}"


def test_compose_creates_the_code_s_topics_with_the_code_s_partition_count() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    job = compose["services"]["topics"]
    assert job["command"] == ["topics"], "the compose job runs `deskstream topics`: the code's list"
    partitions = job["environment"]["KAFKA_TOPIC_PARTITIONS"]
    default = KafkaSettings.from_env({}).partitions
    assert partitions == f"${{KAFKA_TOPIC_PARTITIONS:-{default}}}"
    for name in ("intake", "router", "notifier", "feedback"):
        assert compose["services"][name]["environment"]["KAFKA_TOPIC_PARTITIONS"] == partitions


def test_the_resource_names_are_valid_and_distinct() -> None:
    names = [resource_name(name) for name in CODE]
    assert len(set(names)) == len(names)
    assert all(len(name) <= 253 and name == name.lower() and "_" not in name for name in names)
