"""`make audit` (security/audit.py): every accepted exception has its reason and still
applies, every `# nosec` names its test and says why, the lock pins what pyproject.toml
asks for, and the judgement of pip-audit's report, completed from PyPI's project JSON
where pip-audit could not audit a package (canned JSON here, no network), fails on what
it must fail on.

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


# -- PyPI's project data, where pip-audit's per-release API answers 404 ------------------

SKIPPED = "Dependency not found on PyPI and could not be audited: {} ({})"


def _skipped(name: str, version: str) -> dict:
    return {"name": name, "skip_reason": SKIPPED.format(name, version)}


def _project(latest: str, *vulnerabilities: dict) -> dict:
    """PyPI's project JSON (https://pypi.org/pypi/<name>/json), the parts the audit reads."""
    return {"info": {"name": "somepkg", "version": latest}, "releases": {"1.0": [], latest: []},
            "urls": [], "vulnerabilities": list(vulnerabilities)}


# As PyPI serves one advisory: under its PYSEC id and again under its GHSA id.
PYPI_PYSEC = {"id": "PYSEC-2026-1", "aliases": ["CVE-2026-1234", "GHSA-abcd-efgh-jkmp"], "fixed_in": ["2.1"],
              "details": "...", "link": "https://osv.dev/vulnerability/PYSEC-2026-1", "source": "osv",
              "summary": None, "withdrawn": None}
PYPI_GHSA = {**PYPI_PYSEC, "id": "GHSA-abcd-efgh-jkmp", "aliases": ["CVE-2026-1234", "PYSEC-2026-1"]}
PYPI_WITHDRAWN = {**PYPI_PYSEC, "id": "PYSEC-2026-9", "aliases": [], "withdrawn": "2026-05-01T00:00:00Z"}


def _excuse(package: str = "heldpkg", version: str = "1.0") -> object:
    return audit.UnauditedException(package, version, "its dependant requires heldpkg<2, its newest release")


def test_the_project_json_audits_a_package_pinned_at_its_latest_release() -> None:
    data = audit.project_data("2.0", _project("2.0", PYPI_PYSEC, PYPI_GHSA, PYPI_WITHDRAWN))
    assert data.latest == "2.0"
    # one advisory under two ids is one finding, under its PYSEC id; a withdrawn one is none
    assert data.vulns == ({"id": "PYSEC-2026-1", "aliases": ["CVE-2026-1234", "GHSA-abcd-efgh-jkmp"],
                           "fix_versions": ["2.1"]},)
    assert audit.project_data("2.0", _project("2.0")).vulns == ()


def test_the_project_json_says_nothing_of_a_release_behind_the_latest() -> None:
    """Its vulnerabilities are the latest release's: for an older pin they would read as
    clean whatever that pin carries."""
    data = audit.project_data("1.0", _project("2.0", PYPI_PYSEC))
    assert data == audit.ProjectData("2.0", None)


@pytest.mark.parametrize("project", [
    {"info": {"version": "2.0"}},  # no vulnerability data at all (a mirror leaving it out)
    {"info": {"version": "2.0"}, "vulnerabilities": None},
    {"info": {}, "vulnerabilities": []},
    {"vulnerabilities": []},
    {"info": {"version": "2.0"}, "vulnerabilities": [{"aliases": []}]},
])
def test_a_project_json_without_vulnerability_data_audits_nothing(project: dict) -> None:
    with pytest.raises(audit.AuditError):
        audit.project_data("2.0", project)


def test_a_package_pip_audit_skipped_is_audited_from_the_project_data() -> None:
    verdict = audit.judge(_report(_skipped("SomePkg", "2.0"), {"name": "other", "version": "3.1", "vulns": []}), [],
                          locked={"somepkg": "2.0", "other": "3.1"},
                          projects={"somepkg": audit.project_data("2.0", _project("2.0"))})
    assert verdict.passed
    assert (verdict.audited, verdict.from_project, verdict.excused) == (1, ("somepkg 2.0",), ())


def test_a_vulnerability_found_in_the_project_data_fails_unless_excepted() -> None:
    report, locked = _report(_skipped("somepkg", "2.0")), {"somepkg": "2.0"}
    projects = {"somepkg": audit.project_data("2.0", _project("2.0", PYPI_GHSA, PYPI_PYSEC))}
    verdict = audit.judge(report, [], locked=locked, projects=projects)
    assert not verdict.passed
    assert verdict.found_from_project == ("somepkg 2.0 PYSEC-2026-1",)
    assert verdict.unexcused == ("somepkg 2.0 PYSEC-2026-1 (fixed in: 2.1) [PyPI project data]",)
    for identifier in ("GHSA-abcd-efgh-jkmp", "CVE-2026-1234"):  # by any of its ids
        assert audit.judge(report, [_exception(identifier)], locked=locked, projects=projects).passed
    elsewhere = audit.judge(report, [_exception("CVE-2026-1234", package="otherpkg")], locked=locked, projects=projects)
    assert elsewhere.unexcused and elsewhere.stale


def test_a_package_behind_its_latest_release_fails_unless_excused() -> None:
    report, locked = _report(_skipped("heldpkg", "1.0")), {"heldpkg": "1.0"}
    projects = {"heldpkg": audit.project_data("1.0", _project("2.0", PYPI_PYSEC))}
    verdict = audit.judge(report, [], locked=locked, projects=projects)
    assert not verdict.passed
    assert verdict.from_project == () and verdict.excused == ()
    assert verdict.unaudited[0].startswith("heldpkg 1.0: pinned behind its latest release 2.0")
    excused = audit.judge(report, [], locked=locked, projects=projects, excuses=[_excuse()])
    assert excused.passed
    assert excused.excused == ("heldpkg 1.0 (latest 2.0)",)
    # an excuse for another version excuses nothing, and is stale itself
    other = audit.judge(report, [], locked=locked, projects=projects, excuses=[_excuse(version="0.9")])
    assert not other.passed
    assert other.unaudited and other.stale_unaudited == ("heldpkg 0.9: requirements.lock pins 1.0",)


@pytest.mark.parametrize("excuse, locked, project, why", [
    # the lock now pins the latest release, which the project data audits
    (("heldpkg", "2.0"), {"heldpkg": "2.0"}, _project("2.0"), "heldpkg 2.0: its latest release, which PyPI's project data audits"),
    # the lock moved on from the excused version
    (("heldpkg", "1.0"), {"heldpkg": "1.5"}, _project("2.0"), "heldpkg 1.0: requirements.lock pins 1.5"),
    # the package left the lock
    (("gonepkg", "1.0"), {"heldpkg": "2.0"}, _project("2.0"), "gonepkg: not in requirements.lock"),
])
def test_an_unaudited_entry_that_excuses_nothing_fails_the_audit(excuse: tuple, locked: dict, project: dict,
                                                                 why: str) -> None:
    report = _report(_skipped("heldpkg", locked["heldpkg"]))
    projects = {"heldpkg": audit.project_data(locked["heldpkg"], project)}
    verdict = audit.judge(report, [], locked=locked, projects=projects, excuses=[_excuse(*excuse)])
    assert not verdict.passed
    assert verdict.stale_unaudited == (why,)


def test_an_unaudited_entry_is_kept_where_pip_audit_audits_the_package_itself() -> None:
    """Where PyPI's per-release API answers, pip-audit audits a held-back package and the
    entry is not needed there; it is not stale while the package is behind its latest
    release (it is needed where only the project data can be read), and whether it is
    must be known."""
    report = _report({"name": "heldpkg", "version": "1.0", "vulns": []})
    locked = {"heldpkg": "1.0"}
    behind = audit.judge(report, [], locked=locked, projects={"heldpkg": audit.project_data("1.0", _project("2.0"))},
                         excuses=[_excuse()])
    assert behind.passed and behind.audited == 1 and behind.excused == ()
    latest = audit.judge(report, [], locked=locked, projects={"heldpkg": audit.project_data("1.0", _project("1.0"))},
                         excuses=[_excuse()])
    assert not latest.passed and latest.stale_unaudited
    unknown = audit.judge(report, [], locked=locked, projects={"heldpkg": "https://pypi.org/pypi/heldpkg/json: timed out"},
                          excuses=[_excuse()])
    assert not unknown.passed and unknown.unaudited


def test_project_data_that_could_not_be_read_fails_the_audit_even_for_an_excused_package() -> None:
    """A network failure of the fallback is a failure, never a pass nor an excuse."""
    report = _report(_skipped("somepkg", "2.0"), _skipped("heldpkg", "1.0"))
    locked = {"somepkg": "2.0", "heldpkg": "1.0"}
    unreachable = "https://pypi.org/pypi/{}/json: <urlopen error [Errno 111] Connection refused>"
    verdict = audit.judge(report, [], locked=locked, excuses=[_excuse()],
                          projects={name: unreachable.format(name) for name in locked})
    assert not verdict.passed
    assert verdict.from_project == () and verdict.excused == ()
    assert [line.split(":")[0] for line in verdict.unaudited] == ["somepkg 2.0", "heldpkg 1.0"]


def test_a_locked_package_missing_from_pip_audits_report_fails_the_audit() -> None:
    verdict = audit.judge(_report({"name": "other", "version": "3.1", "vulns": []}), [],
                          locked={"other": "3.1", "somepkg": "2.0"})
    assert not verdict.passed
    assert verdict.unaudited == ("somepkg 2.0: missing from pip-audit's report",)


def test_every_unaudited_entry_is_a_locked_package_at_its_locked_version() -> None:
    """The file's own [[unaudited]] entries against the lock (whether each is still behind
    its latest release is for make audit, which asks PyPI)."""
    locked = audit.parse_lock(audit.LOCK.read_text(encoding="utf-8"))
    for excuse in audit.parse_exceptions(audit.EXCEPTIONS.read_text(encoding="utf-8")).unaudited:
        assert locked.get(excuse.package) == excuse.version, f"{excuse.package}: the lock pins {locked.get(excuse.package)}"
        assert len(excuse.reason) >= audit.MIN_REASON_CHARS


@pytest.mark.parametrize("text", [
    '[[unaudited]]\npackage = "click"\nversion = "8.3.3"\n',  # no reason
    '[[unaudited]]\npackage = "click"\nreason = "faust-streaming requires click<8.4"\n',  # no version
    '[[unaudited]]\nversion = "8.3.3"\nreason = "faust-streaming requires click<8.4"\n',  # no package
    '[[unaudited]]\npackage = "click"\nversion = "<8.4"\nreason = "faust-streaming requires click<8.4"\n',
    '[[unaudited]]\npackage = "click"\nversion = "8.3.3"\nreason = "faust-streaming requires click<8.4"\n'
    '[[unaudited]]\npackage = "Click"\nversion = "8.3.3"\nreason = "faust-streaming requires click<8.4"\n',  # twice
])
def test_malformed_unaudited_entries_are_refused(text: str) -> None:
    with pytest.raises(audit.AuditError):
        audit.parse_exceptions(text)
