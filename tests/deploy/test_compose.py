"""Static checks of the container files: docker-compose.yml, Dockerfile, .dockerignore.

No Docker engine is needed. The compose file is read, in order of preference, by
`docker compose config` (the real parser, with interpolation; it needs the Compose
plugin but no engine), by PyYAML, or by `load_block_yaml` below: a small reader of
the block-YAML subset the compose file is written in (mappings, lists, flow lists,
quoted scalars, anchors, aliases and `<<` merges). The project does not depend on
PyYAML, so without the plugin the last one is what runs in CI.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

PORTS = {"intake": 8080, "router": 8081, "notifier": 8082, "feedback": 8083}
DUMMY_SECRET = "x" * 64


# --- a reader for the block-YAML subset of docker-compose.yml --------------------


class UnsupportedYaml(ValueError):
    """The file uses YAML this small reader does not handle."""


def _strip_comment(line: str) -> str:
    quote = None
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1] in " \t"):
            return line[:index].rstrip()
    return line.rstrip()


def _split_flow(body: str) -> list[str]:
    items, current, quote = [], "", None
    for char in body:
        if quote:
            current += char
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
            current += char
        elif char == ",":
            items.append(current.strip())
            current = ""
        elif char in "[]{}":
            raise UnsupportedYaml(f"nested flow collection in [{body}]")
        else:
            current += char
    if current.strip():
        items.append(current.strip())
    return items


def _scalar(text: str, anchors: dict[str, Any]) -> Any:
    text = text.strip()
    if text.startswith("*"):
        return anchors[text[1:]]
    if text.startswith("[") and text.endswith("]"):
        return [_scalar(item, anchors) for item in _split_flow(text[1:-1])]
    if text == "{}":
        return {}
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return json.loads(text)
    if text[:1] in ("&", "|", ">", "{", "!"):
        raise UnsupportedYaml(f"unsupported scalar {text!r}")
    if text in ("", "~", "null"):
        return None
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"[-+]?[0-9]+", text):
        return int(text)
    return text


_KEY = re.compile(r"""^("[^"]*"|'[^']*'|[^\s'"#\-][^:]*?|-[^\s:][^:]*?):(?:\s+(.*))?$""")


def load_block_yaml(text: str) -> Any:
    lines = []
    for raw in text.splitlines():
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise UnsupportedYaml("tab indentation")
        line = _strip_comment(raw)
        if line.strip() and line.strip() != "---":
            lines.append((len(line) - len(line.lstrip()), line.strip()))
    anchors: dict[str, Any] = {}

    def block(index: int, indent: int) -> tuple[Any, int]:
        if lines[index][1].startswith("- ") or lines[index][1] == "-":
            items = []
            while index < len(lines) and lines[index][0] == indent and lines[index][1].startswith("-"):
                rest = lines[index][1][1:].strip()
                if not rest or _KEY.match(rest):
                    raise UnsupportedYaml(f"block item that is not a scalar: {lines[index][1]!r}")
                items.append(_scalar(rest, anchors))
                index += 1
            return items, index
        explicit: dict[Any, Any] = {}
        merged: dict[Any, Any] = {}
        while index < len(lines) and lines[index][0] == indent:
            match = _KEY.match(lines[index][1])
            if not match:
                raise UnsupportedYaml(f"not a 'key: value' line: {lines[index][1]!r}")
            key, rest = _scalar(match.group(1), anchors), (match.group(2) or "").strip()
            index += 1
            anchor = None
            if rest.startswith("&"):
                anchor, _, rest = rest[1:].partition(" ")
                rest = rest.strip()
            if rest:
                value = _scalar(rest, anchors)
            elif index < len(lines) and lines[index][0] > indent:
                value, index = block(index, lines[index][0])
            elif index < len(lines) and lines[index][0] == indent and lines[index][1].startswith("- "):
                value, index = block(index, indent)  # a list indented like its key
            else:
                value = None
            if anchor:
                anchors[anchor] = value
            if key == "<<":
                for source in value if isinstance(value, list) else [value]:
                    merged.update({k: v for k, v in source.items() if k not in merged})
            else:
                explicit[key] = value
        if index < len(lines) and lines[index][0] > indent:
            raise UnsupportedYaml(f"unexpected indentation at {lines[index][1]!r}")
        return {**merged, **explicit}, index

    if not lines:
        return None
    value, index = block(0, lines[0][0])
    if index != len(lines):
        raise UnsupportedYaml(f"unparsed from {lines[index][1]!r}")
    return value


# --- loading the compose file ----------------------------------------------------


def _compose_plugin() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


HAS_COMPOSE = _compose_plugin()


def _compose_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "CHAT_SESSION_SECRET"}
    env.update(extra)
    return env


def _compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--format", "json"],
        capture_output=True, text=True, timeout=60, env=env, cwd=ROOT,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    if HAS_COMPOSE:
        result = _compose_config(_compose_env(CHAT_SESSION_SECRET=DUMMY_SECRET))
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)
    return load_block_yaml(COMPOSE.read_text())


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


def test_compose_requires_the_chat_session_secret() -> None:
    text = COMPOSE.read_text()
    assert "${CHAT_SESSION_SECRET:?" in text
    if not HAS_COMPOSE:
        return
    result = _compose_config(_compose_env())
    assert result.returncode != 0
    assert "CHAT_SESSION_SECRET" in result.stderr


def test_the_small_yaml_reader_agrees_with_pyyaml() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed: nothing to compare the small reader with")
    assert load_block_yaml(COMPOSE.read_text()) == yaml.safe_load(COMPOSE.read_text())


def test_the_small_yaml_reader_handles_anchors_merges_and_flow_lists() -> None:
    text = (
        "x: &base\n  a: 1\n  b: [\"p, q\", 'r', s]  # comment\nitems:\n- one\n- 'two # not a comment'\n"
        "y:\n  <<: *base\n  a: 2\n  c: ${VAR:?set VAR}\n"
    )
    assert load_block_yaml(text) == {
        "x": {"a": 1, "b": ["p, q", "r", "s"]},
        "items": ["one", "two # not a comment"],
        "y": {"a": 2, "b": ["p, q", "r", "s"], "c": "${VAR:?set VAR}"},
    }
    with pytest.raises(UnsupportedYaml):
        load_block_yaml("a: |\n  text\n")


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
    assert bases[-1] == "python:3.11-slim-bookworm", bases
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
