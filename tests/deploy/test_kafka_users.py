"""Each service signs in to Kafka as its own user, allowed only what its code does
(docs/SECURITY.md, "a compromised service"): `deskstream.topics.ACCESS` must say
exactly which topics each service's code reads and writes, the prod overlay's
KafkaUsers are rendered from it, and each Deployment signs in as its own user."""
from __future__ import annotations

import ast
from pathlib import Path

from deskstream import topics
from deskstream.topic_manifests import KEDA_USER, kafka_user_name, kafka_users, topic_operations
from tests.deploy.manifests import DEPLOY, ROOT, of_kind, render
from tests.deploy.test_kubernetes import settings

TOPIC_CONSTANTS = {name: value for name, value in vars(topics).items()
                   if name.isupper() and isinstance(value, str) and value in {spec.name for spec in topics.TOPICS}}
WRITING_CALLS = {"emit", "publish", "send_and_wait"}


def used_by(service: str) -> tuple[set[str], set[str], set[str]]:
    """What a service's code reads (hop sources), writes (the topic of an emit or a
    publish) and names at all, from its modules' syntax trees."""
    reads: set[str] = set()
    writes: set[str] = set()
    named: set[str] = set()
    for path in sorted((ROOT / "services" / service).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Name) and node.id in TOPIC_CONSTANTS:
                named.add(TOPIC_CONSTANTS[node.id])
            if not isinstance(node, ast.Call):
                continue
            called = getattr(node.func, "attr", getattr(node.func, "id", None))
            first = node.args[0] if node.args else None
            if called in WRITING_CALLS and isinstance(first, ast.Name) and first.id in TOPIC_CONSTANTS:
                writes.add(TOPIC_CONSTANTS[first.id])
            for keyword in node.keywords:
                if keyword.arg == "source" and isinstance(keyword.value, ast.Name) and keyword.value.id in TOPIC_CONSTANTS:
                    reads.add(TOPIC_CONSTANTS[keyword.value.id])
    return reads, writes, named


def test_each_service_may_read_exactly_its_hops_sources_and_write_exactly_what_it_emits() -> None:
    for service, access in topics.ACCESS.items():
        reads, writes, named = used_by(service)
        assert reads, f"{service}: the scan found the hops"
        assert set(access.reads) == reads, service
        # Every hop dead-letters what it cannot read (deskstream/processor.py).
        assert set(access.writes) == writes | {topics.DEADLETTER}, service
        assert named <= reads | writes, f"{service} names a topic the scan cannot place: {named - reads - writes}"


def test_the_scan_sees_a_topic_a_service_starts_writing() -> None:
    tree = ast.parse("step.emit(NOTIFY_RECEIPTS, key, event)")
    call = tree.body[0].value
    assert call.func.attr in WRITING_CALLS and TOPIC_CONSTANTS[call.args[0].id] == topics.NOTIFY_RECEIPTS
    assert topics.NOTIFY_RECEIPTS not in topics.ACCESS["intake"].writes


def test_no_service_may_read_another_service_s_tables() -> None:
    for service in topics.ACCESS:
        readable = {name for name, operations in topic_operations(service).items() if "Read" in operations}
        others = {topics.changelog_topic(other, table) for other, tables in topics.TABLES.items() if other != service
                  for table in tables}
        assert not readable & others, service
        own = {topics.changelog_topic(service, table) for table in topics.TABLES[service]}
        assert own <= readable


def test_the_kafka_users_file_is_rendered_from_the_code() -> None:
    committed = (DEPLOY / "overlays" / "prod" / "kafka-users.yaml").read_text()
    assert committed == kafka_users(), "run: deskstream topics --kafka-users > deploy/overlays/prod/kafka-users.yaml"


def test_each_prod_worker_signs_in_as_its_own_user_with_its_own_password() -> None:
    resources = render("prod")
    users = of_kind(resources, "KafkaUser")
    assert set(users) == {kafka_user_name(service) for service in topics.ACCESS} | {KEDA_USER}
    for service, deployment in of_kind(resources, "Deployment").items():
        user = kafka_user_name(service)
        assert settings(resources, service)["KAFKA_SASL_USERNAME"] == user
        pod = deployment["spec"]["template"]["spec"]
        (mount,) = [mount for mount in pod["containers"][0]["volumeMounts"] if mount["name"] == "kafka-user"]
        assert settings(resources, service)["KAFKA_SASL_PASSWORD_FILE"] == str(Path(mount["mountPath"]) / "password")
        (volume,) = [volume for volume in pod["volumes"] if volume["name"] == "kafka-user"]
        assert volume["secret"]["secretName"] == user, "Strimzi keeps a user's password in a Secret named like it"


def test_keda_reads_lag_as_a_user_that_can_read_no_record() -> None:
    resources = render("prod")
    keda = of_kind(resources, "KafkaUser")[KEDA_USER]
    assert {operation for rule in keda["spec"]["authorization"]["acls"] for operation in rule["operations"]} == {"Describe"}
    (authentication,) = of_kind(resources, "TriggerAuthentication").values()
    (password,) = [ref for ref in authentication["spec"]["secretTargetRef"] if ref["parameter"] == "password"]
    assert password["name"] == KEDA_USER
    (username,) = authentication["spec"]["configMapTargetRef"]
    assert of_kind(resources, "ConfigMap")[username["name"]]["data"][username["key"]] == KEDA_USER
