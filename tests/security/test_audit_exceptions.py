"""`make audit` (security/audit.py): every accepted exception has its reason and still
applies, every `# nosec` names its test and says why, the lock pins what pyproject.toml
asks for, and the judgement of pip-audit's report fails on what it must fail on.

The audit itself (pip-audit against PyPI, bandit over the code) runs in `make audit`,
which `make test` runs first; these tests keep its configuration honest.
"""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deskstream_security_audit", ROOT / "security" / "audit.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


audit = _load_audit()


def test_every_exception_has_a_well_formed_id_and_a_reason() -> None:
    exceptions = audit.parse_exceptions(audit.EXCEPTIONS.read_text(encoding="utf-8"))
    for entry in (*exceptions.vulnerabilities, *exceptions.bandit):
        assert len(entry.reason) >= audit.MIN_REASON_CHARS, entry


def test_each_skipped_bandit_test_still_has_hits_to_excuse() -> None:
    """A test skipped everywhere that no longer finds anything is a stale excuse that
    would hide its next real finding: remove it from the file then."""
    exceptions = audit.parse_exceptions(audit.EXCEPTIONS.read_text(encoding="utf-8"))
    if not exceptions.bandit:
        pytest.skip("no bandit test is skipped")
    tests = ",".join(entry.test for entry in exceptions.bandit)
    result = subprocess.run([sys.executable, "-m", "bandit", "--recursive", *audit.BANDIT_TARGETS, "--tests", tests,
                             "--format", "json", "--quiet"], capture_output=True, text=True, cwd=ROOT)
    hits = {finding["test_id"] for finding in json.loads(result.stdout)["results"]}
    assert {entry.test for entry in exceptions.bandit} <= hits, f"skipped but never hit: {tests}"


def test_every_nosec_in_the_audited_code_names_its_test_and_a_reason() -> None:
    unreasoned = [f"{path.relative_to(ROOT)}:{line}" for target in audit.BANDIT_TARGETS
                  for path in sorted((ROOT / target).rglob("*.py"))
                  for line in audit.nosec_without_reason(path.read_text(encoding="utf-8"))]
    assert not unreasoned


@pytest.mark.parametrize("line, accepted", [
    ("x = run(args)  # nosec B603  # a fixed argument list, no shell", True),
    ("x = run(args)  # nosec B603, B607  # git from PATH, fixed arguments", True),
    ("except Exception:  # noqa: BLE001  # nosec B110  # the error was already raised", True),
    ("x = run(args)  # nosec", False),
    ("x = run(args)  # nosec B603", False),
    ("x = run(args)  # nosec B603  # ok", False),  # a reason of a word or two says nothing
    ("x = run(args)  # nosec: because it is fine here", False),
])
def test_a_nosec_needs_its_test_ids_and_a_reason(line: str, accepted: bool) -> None:
    assert (audit.nosec_without_reason(line) == []) is accepted


def test_the_lock_pins_exactly_what_pyproject_pins() -> None:
    locked = audit.parse_lock(audit.LOCK.read_text(encoding="utf-8"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    for requirement in wanted:
        name, version = re.fullmatch(r"([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^;\s]+)", requirement).groups()
        assert locked.get(audit.canonical(name)) == version, f"{requirement}: run make lock"
    assert {"pip", "setuptools"} <= set(locked), "the installer is pinned and audited too"


def test_the_lock_refuses_anything_but_exact_pins() -> None:
    assert audit.parse_lock("# header\nAiohttp==3.14.5\nzope.interface==8.0  # why\n") == {
        "aiohttp": "3.14.5", "zope-interface": "8.0"}
    for bad in ("aiohttp>=3.14\n", "aiohttp\n", "-e .\n", "aiohttp==3.14.5\naiohttp==3.14.6\n"):
        with pytest.raises(audit.AuditError):
            audit.parse_lock(bad)


def test_lock_drift_names_every_difference() -> None:
    drift = audit.lock_drift({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "2.1", "d": "4"})
    assert drift == ["b is 2.1 here but 2 in requirements.lock",
                     "c==3 is in requirements.lock but not installed",
                     "d==4 is installed but not in requirements.lock"]


def _report(*dependencies: dict) -> dict:
    return {"dependencies": list(dependencies), "fixes": []}


VULN = {"id": "PYSEC-2026-1", "aliases": ["CVE-2026-1234", "GHSA-abcd-efgh-jkmp"], "fix_versions": ["2.0"]}


def _exception(identifier: str, package: str = "somepkg") -> object:
    return audit.VulnerabilityException(identifier, package, "only the X feature, which deskstream never calls")


def test_a_vulnerability_without_an_exception_fails_the_audit() -> None:
    verdict = audit.judge(_report({"name": "SomePkg", "version": "1.0", "vulns": [VULN]},
                                  {"name": "other", "version": "3.1", "vulns": []}), [])
    assert not verdict.passed
    assert verdict.audited == 2
    assert verdict.unexcused == ("somepkg 1.0 PYSEC-2026-1 (fixed in: 2.0)",)


def test_an_exception_matches_by_id_or_alias_and_only_for_its_package() -> None:
    report = _report({"name": "somepkg", "version": "1.0", "vulns": [VULN]})
    assert audit.judge(report, [_exception("CVE-2026-1234")]).passed
    assert audit.judge(report, [_exception("PYSEC-2026-1")]).passed
    elsewhere = audit.judge(report, [_exception("CVE-2026-1234", package="otherpkg")])
    assert elsewhere.unexcused and elsewhere.stale


def test_an_exception_that_matches_nothing_any_more_fails_the_audit() -> None:
    verdict = audit.judge(_report({"name": "somepkg", "version": "2.0", "vulns": []}), [_exception("PYSEC-2026-1")])
    assert not verdict.passed
    assert [e.id for e in verdict.stale] == ["PYSEC-2026-1"]


def test_a_package_that_could_not_be_audited_fails_the_audit() -> None:
    """What an unreachable or refusing vulnerability service looks like in the report:
    never a pass."""
    verdict = audit.judge(_report(
        {"name": "aiohttp", "skip_reason": "Dependency not found on PyPI and could not be audited: aiohttp (3.14.5)"},
        {"name": "other", "version": "3.1", "vulns": []}), [])
    assert not verdict.passed
    assert verdict.audited == 1
    assert verdict.unaudited == ("aiohttp: Dependency not found on PyPI and could not be audited: aiohttp (3.14.5)",)


@pytest.mark.parametrize("text", [
    '[[vulnerability]]\nid = "PYSEC-2026-1"\npackage = "somepkg"\n',  # no reason
    '[[vulnerability]]\nid = "PYSEC-2026-1"\npackage = "somepkg"\nreason = "fine"\n',  # no real reason
    '[[vulnerability]]\nid = "SOMETHING-1"\npackage = "somepkg"\nreason = "only the X feature, never called"\n',
    '[[vulnerability]]\nid = "PYSEC-2026-1"\nreason = "only the X feature, never called here"\n',  # no package
    '[[bandit]]\ntest = "B6O3"\nreason = "a fixed argument list, never a shell"\n',
    '[[bandit]]\ntest = "B603"\nreason = "a fixed argument list, never a shell"\n'
    '[[bandit]]\ntest = "B603"\nreason = "a fixed argument list, never a shell"\n',  # twice
    '[[skip]]\ntest = "B603"\n',
])
def test_malformed_exceptions_are_refused(text: str) -> None:
    with pytest.raises(audit.AuditError):
        audit.parse_exceptions(text)
