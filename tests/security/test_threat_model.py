"""docs/SECURITY.md maps each threat to its defence and to the tests that prove it: every
test it names must exist, so that the page cannot go on citing a proof that was renamed
or removed, and every test of the attack suite must be cited, so that none is forgotten."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "SECURITY.md"
# `tests/x/test_y.py::test_z`, and `::test_w` after it meaning the same file.
CITATION = re.compile(r"`(tests/[\w/]+\.py)?::(test_\w+)`")


def cited() -> list[tuple[str, str]]:
    citations, current = [], None
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        for path, name in CITATION.findall(line):
            current = path or current
            assert current is not None, f"`::{name}` names no file before it: {line}"
            citations.append((current, name))
        if not line.startswith("|"):
            current = None  # a bare `::name` refers to a file named on its own table row
    return citations


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")}


def test_every_test_the_threat_model_cites_exists() -> None:
    citations = cited()
    assert len(citations) > 40
    missing = [f"{path}::{name}" for path, name in citations
               if not (ROOT / path).exists() or name not in defined_tests(ROOT / path)]
    assert missing == []


def test_every_attack_in_the_suite_is_in_the_threat_model() -> None:
    named = {(path, name) for path, name in cited()}
    attacks = {(str(path.relative_to(ROOT)), name) for path in sorted((ROOT / "tests" / "security").glob("test_*.py"))
               if path.name not in ("test_threat_model.py", "test_audit_exceptions.py") for name in defined_tests(path)}
    assert sorted(attacks - named) == []


def test_the_readme_links_the_threat_model() -> None:
    assert "docs/SECURITY.md" in (ROOT / "README.md").read_text(encoding="utf-8")
