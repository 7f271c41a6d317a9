"""The golden examples: events as they were emitted, kept under `examples/<event type>/`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from deskstream.contract import Contract, SchemaViolation

EXAMPLES = Path(__file__).resolve().parent / "examples"


def example_paths() -> list[Path]:
    return sorted(EXAMPLES.glob("*/*.json"))


def example_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def load(path: Path) -> dict[str, Any]:
    return orjson.loads(path.read_bytes())


def refused(contract: Contract) -> dict[str, str]:
    """The golden examples a contract refuses, each with the reason."""
    reasons = {}
    for path in example_paths():
        try:
            contract.validate(load(path))
        except SchemaViolation as violation:
            reasons[example_id(path)] = violation.reason
    return reasons
