"""Reading and validating the deployment files: the tools from `deploy/tools/fetch`.

`make test` fetches them into `.tools/` first (kustomize, the Compose specification's
JSON schema, the CRDs of Strimzi, KEDA and the Prometheus Operator); the Kubernetes
schemas of the built-in kinds come with kubernetes-validate.
"""
from __future__ import annotations

import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = ("dev", "prod")
TOOLS = ROOT / ".tools"
KUSTOMIZE = TOOLS / "bin" / "kustomize"
CRDS = TOOLS / "schemas" / "crds"
COMPOSE_SCHEMA = TOOLS / "schemas" / "compose-spec.json"

# The oldest Kubernetes minor still supported by its project when this was written,
# and the newest that kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.32", "1.37")


class ToolsMissing(RuntimeError):
    """`deploy/tools/fetch` has not been run (`make test` and `make deploy-tools` run it)."""


def require_tools() -> None:
    if not (TOOLS / ".fetched").exists():
        raise ToolsMissing(f"{TOOLS} is missing: run `make deploy-tools` (deploy/tools/fetch)")


@cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    """The resources `kubectl apply -k deploy/overlays/<overlay>` would send."""
    return build(DEPLOY / "overlays" / overlay)


def build(folder: Path, *options: str) -> tuple[dict[str, Any], ...]:
    require_tools()
    result = subprocess.run([str(KUSTOMIZE), "build", *options, str(folder)], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"kustomize build {folder} failed:\n{result.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def of_kind(resources: tuple[dict[str, Any], ...], kind: str) -> dict[str, dict[str, Any]]:
    return {resource["metadata"]["name"]: resource for resource in resources if resource["kind"] == kind}


# --- custom resources ------------------------------------------------------------


def _strict(schema: Any) -> Any:
    """A CRD's structural schema, made to reject unknown fields as `kubectl apply`
    with server-side field validation does (the API server would otherwise drop them
    silently, so a misspelt field would do nothing without a word)."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    if ("properties" in schema and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")):
        strict["additionalProperties"] = False
    return strict


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → the openAPIV3Schema of every served version of every CRD."""
    require_tools()
    schemas = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served", True):
                    schemas[(f"{group}/{version['name']}", kind)] = _strict(version["schema"]["openAPIV3Schema"])
    return schemas


def problems(resource: dict[str, Any]) -> Iterator[str]:
    """What is wrong with `resource` for the API server: built-in kinds against the
    Kubernetes OpenAPI schemas of each version in KUBERNETES_VERSIONS, custom ones
    against their CRD's schema. Nothing for a valid resource."""
    name = f"{resource.get('kind')}/{resource.get('metadata', {}).get('name')}"
    custom = crd_schemas().get((resource.get("apiVersion", ""), resource.get("kind", "")))
    if custom is not None:
        for error in jsonschema.Draft7Validator(custom).iter_errors(resource):
            yield f"{name}: {'/'.join(map(str, error.absolute_path))}: {error.message}"
        return
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(resource, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            yield f"{name} (Kubernetes {version}): {'/'.join(map(str, error.path))}: {error.message}"
        except kubernetes_validate.SchemaNotFoundError:
            yield f"{name}: no schema for {resource.get('apiVersion')} {resource.get('kind')} in Kubernetes {version} or the CRDs"


# --- compose ---------------------------------------------------------------------


def compose_problems(document: dict[str, Any]) -> list[str]:
    """What the Compose specification's schema (compose-go's copy, as `docker
    compose config` uses) finds wrong with the file."""
    require_tools()
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)  # its $schema names draft 7 without the '#'
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(document)]
