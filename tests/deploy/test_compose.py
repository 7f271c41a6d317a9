"""The container files: docker-compose.yml, Dockerfile, .dockerignore, and the
monitoring that compose runs with `--profile monitoring`.

No Docker engine is needed: the compose file is validated against the Compose
specification's JSON schema (the one `docker compose config` applies) and then read
with PyYAML for what deskstream needs of it.
"""
from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import ROOT, compose_problems

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
MONITORING = ROOT / "deploy" / "monitoring"

PORTS = {"intake": 8080, "router": 8081, "notifier": 8082, "feedback": 8083}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    assert compose_problems(compose) == []


def test_the_compose_schema_check_can_fail(compose: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["intake"]["restart_policy"] = "always"
    broken["services"]["router"]["healthcheck"]["interval"] = ["10s"]
    found = compose_problems(broken)
    assert any("restart_policy" in problem for problem in found), found
    assert any("interval" in problem for problem in found), found


def _ports(service: dict[str, Any]) -> set[tuple[str, int, int]]:
    """(host ip, published, target) from the short string form or compose's long form."""
    found = set()
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            found.add((port.get("host_ip", ""), int(port["published"]), int(port["target"])))
        else:
            host_ip, published, target = str(port).rsplit(":", 2) if str(port).count(":") == 2 else ("", *str(port).split(":"))
            found.add((host_ip, int(published), int(target)))
    return found


def _condition(service: dict[str, Any], other: str) -> str | None:
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        return "service_started" if other in depends else None
    return (depends.get(other) or {}).get("condition")


# --- docker-compose.yml ----------------------------------------------------------


def test_compose_runs_the_four_services_with_their_commands_and_ports(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(PORTS) | {"kafka", "topics"} <= set(services)
    images = {services[name]["image"] for name in [*PORTS, "topics"]}
    assert len(images) == 1, f"one deskstream image for every service, got {images}"
    for name, port in PORTS.items():
        service = services[name]
        assert service["command"] == ["run", name]
        assert service.get("build"), f"{name} is built from the Dockerfile"
        assert _ports(service) == {("127.0.0.1", port, port)}, name
        env = service["environment"]
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["HTTP_HOST"] == "0.0.0.0"
        assert env["DESKSTREAM_DATA_DIR"] == "/data"
        assert "CHAT_SESSION_SECRET" in env
        assert any(str(volume).endswith(":/data") or (isinstance(volume, dict) and volume.get("target") == "/data")
                   for volume in service["volumes"]), f"{name} keeps its data on a volume"
        assert _condition(service, "topics") == "service_completed_successfully"
        assert service["restart"] == "unless-stopped"
        assert service["stop_grace_period"] == "15s"
        probe = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/readyz" in probe and "urllib" in probe, probe


def test_compose_creates_the_topics_once_kafka_is_healthy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    topics = services["topics"]
    assert topics["command"] == ["topics"]
    assert topics["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert _condition(topics, "kafka") == "service_healthy"
    assert topics.get("restart", "no") == "no"
    assert not topics.get("ports")


def test_compose_kafka_is_the_official_kraft_image(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"] == "apache/kafka:4.4.0"
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["CLUSTER_ID"]
    assert "kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert "127.0.0.1:19092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert str(env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]) == "false"
    assert _ports(kafka) == {("127.0.0.1", 19092, 19092)}
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])


def test_compose_requires_the_chat_session_secret(compose: dict[str, Any]) -> None:
    secret = compose["x-deskstream"]["environment"]["CHAT_SESSION_SECRET"]
    assert secret.startswith("${CHAT_SESSION_SECRET:?"), "compose refuses to start without it"


# --- Dockerfile and .dockerignore ------------------------------------------------


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        current += " " + stripped.removesuffix("\\").strip()
        if not stripped.endswith("\\"):
            joined.append(current.strip())
            current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in joined]


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions(DOCKERFILE.read_text())
    starts = [index for index, (name, _) in enumerate(instructions) if name == "FROM"]
    assert len(starts) >= 2, "a multi-stage build"
    return instructions[starts[-1]:]


def test_dockerfile_final_stage_runs_as_a_non_root_user() -> None:
    users = [argument for name, argument in _final_stage() if name == "USER"]
    assert users, "the final stage sets USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), user


def test_dockerfile_runs_deskstream_and_exposes_the_service_ports() -> None:
    instructions = _instructions(DOCKERFILE.read_text())
    args = {argument.split("=", 1)[0]: argument.split("=", 1)[1] for name, argument in instructions if name == "ARG" and "=" in argument}
    bases = [re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), argument.split()[0])
             for name, argument in instructions if name == "FROM"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", bases[-1]), f"a pinned base: {bases}"
    assert bases[0] == bases[-1], "both stages on the same base"
    final = _final_stage()
    last = {name: argument for name, argument in final}
    assert json.loads(last["ENTRYPOINT"]) == ["deskstream"]
    assert json.loads(last["CMD"]) == ["run", "intake"]
    exposed = {int(port) for name, argument in final if name == "EXPOSE" for port in argument.split()}
    assert set(PORTS.values()) <= exposed
    copied = " ".join(argument for name, argument in final if name == "COPY")
    for folder in ("deskstream/", "services/", "schemas/"):
        assert folder in copied, f"the final stage copies {folder}"
    assert "tests" not in copied


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    entries = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".venv", ".data", "kafka/lib", ".git"} <= entries


# --- monitoring (docker compose --profile monitoring) -----------------------------


def _declared_metrics() -> set[str]:
    """The metric names the code registers (prometheus_client adds _total, _bucket...)."""
    sources = [*ROOT.glob("deskstream/*.py"), *ROOT.glob("services/*/*.py")]
    return {name for path in sources for name in re.findall(r'"(deskstream_[a-z_]+)"', path.read_text())}


def test_compose_monitoring_is_optional_and_scrapes_every_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"], f"{name} runs only with --profile monitoring"
        assert all(str(port).startswith("127.0.0.1:") for port in services[name]["ports"])
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    targets = {target for job in config["scrape_configs"] for static in job["static_configs"] for target in static["targets"]}
    assert targets == {f"{name}:{port}" for name, port in PORTS.items()}
    mounted = " ".join(services["prometheus"]["volumes"])
    assert "./deploy/monitoring/prometheus.yml:/etc/prometheus/prometheus.yml" in mounted


def test_the_grafana_dashboard_shows_metrics_the_services_export() -> None:
    dashboard = json.loads((MONITORING / "grafana" / "dashboards" / "deskstream.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {re.sub(r"_(total|bucket|count|sum)$", "", name) for expr in exprs for name in re.findall(r"deskstream_[a-z_]+", expr)}
    assert used, "the dashboard queries deskstream's metrics"
    assert used <= _declared_metrics(), f"not exported by any service: {used - _declared_metrics()}"
    provider = yaml.safe_load((MONITORING / "grafana" / "provisioning" / "dashboards" / "deskstream.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_every_setting_reaches_the_services_from_an_optional_env_file(compose: dict[str, Any]) -> None:
    for name in PORTS:
        service = compose["services"][name]
        assert {"path": ".env", "required": False} in service["env_file"], name
        assert service["environment"]["KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT", "compose's own broker is plaintext"
    router = compose["services"]["router"]
    roster = router["environment"]["ROUTER_ROSTER_PATH"]
    assert any(str(volume).endswith(f":{roster}:ro") for volume in router["volumes"]), "the roster is mounted read-only"
    assert router["environment"]["CHAT_SESSION_SECRET"] == compose["x-deskstream"]["environment"]["CHAT_SESSION_SECRET"]
