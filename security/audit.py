"""`make audit`, which `make test` runs first: the supply-chain checks of issue 12.

1. The virtual environment is exactly requirements.lock: every package and version
   pip reports installed (pip and setuptools included, deskstream's own editable
   install excepted) is the one the lock pins, and nothing else. So the list audited in
   step 2 is what the tests ran on; the Makefile installs the venv with the lock as
   constraints and the Dockerfile builds the image with it.
2. pip-audit: every package of requirements.lock against PyPI's vulnerability data
   (the PyPA advisory database), by the pinned versions as written (no re-resolution).
   A package that could not be audited, or a vulnerability service that cannot be
   reached, is a failure: an audit that did not happen must not read as a clean one.
3. bandit over the code that runs or is run by hand (deskstream/, services/, bench/;
   the tests are not shipped).

Exceptions live in security/audit-exceptions.toml, each with its reason; a vulnerability
exception that no longer matches a finding fails the audit too, so the file cannot
collect stale excuses. bandit findings are otherwise fixed in the code or carry an inline
`# nosec BXXX  # reason` (tests/security/test_audit_exceptions.py checks every one names
its test and gives a reason).

Run as `python security/audit.py` (the Makefile does, with the venv's interpreter); pure
functions here are tested in tests/security/test_audit_exceptions.py.
"""
from __future__ import annotations

import json
import re
import subprocess  # nosec B404  # runs pip, pip-audit and bandit from this venv, never a shell
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
EXCEPTIONS = ROOT / "security" / "audit-exceptions.toml"
BANDIT_TARGETS = ("deskstream", "services", "bench")
VULNERABILITY_ID = re.compile(r"(PYSEC-\d{4}-\d+|GHSA(-[23456789cfghjmpqrvwx]{4}){3}|CVE-\d{4}-\d{4,}|OSV-\d{4}-\d+)")
BANDIT_ID = re.compile(r"B\d{3}")
MIN_REASON_CHARS = 20
UNREACHABLE_HINT = ("pip-audit could not get vulnerability data for the locked packages; the audit did NOT run "
                    "(a failure, not a pass). It needs PyPI's JSON API per release "
                    "(https://pypi.org/pypi/<name>/<version>/json) or, with AUDIT_SERVICE=osv, api.osv.dev.")


class AuditError(Exception):
    """The audit could not be carried out, or its configuration is wrong."""


@dataclass(frozen=True, slots=True)
class VulnerabilityException:
    """A known vulnerability in a pinned dependency that is accepted, and why."""

    id: str
    package: str
    reason: str


@dataclass(frozen=True, slots=True)
class BanditException:
    """A bandit test skipped over the whole code base, and why."""

    test: str
    reason: str


@dataclass(frozen=True, slots=True)
class Exceptions:
    vulnerabilities: tuple[VulnerabilityException, ...]
    bandit: tuple[BanditException, ...]


def canonical(name: str) -> str:
    """A package name as PyPI compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _reason(entry: Mapping[str, Any], where: str) -> str:
    reason = entry.get("reason")
    if not isinstance(reason, str) or len(reason.strip()) < MIN_REASON_CHARS:
        raise AuditError(f"{where}: needs a reason (at least {MIN_REASON_CHARS} characters) saying why it is accepted")
    return reason.strip()


def parse_exceptions(text: str) -> Exceptions:
    """The exceptions file's entries, each checked for an id of the right shape and a reason."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise AuditError(f"{EXCEPTIONS.name} is not valid TOML: {error}") from None
    unknown = set(data) - {"vulnerability", "bandit"}
    if unknown:
        raise AuditError(f"{EXCEPTIONS.name}: unknown sections {sorted(unknown)}")
    vulnerabilities = []
    for index, entry in enumerate(data.get("vulnerability", [])):
        where = f"vulnerability #{index + 1}"
        identifier, package = entry.get("id"), entry.get("package")
        if not isinstance(identifier, str) or not VULNERABILITY_ID.fullmatch(identifier):
            raise AuditError(f"{where}: id must be a PYSEC-, GHSA-, CVE- or OSV- identifier, got {identifier!r}")
        if not isinstance(package, str) or not package:
            raise AuditError(f"{where} ({identifier}): package must name the affected package")
        vulnerabilities.append(VulnerabilityException(identifier, canonical(package), _reason(entry, f"{where} ({identifier})")))
    bandit = []
    for index, entry in enumerate(data.get("bandit", [])):
        test = entry.get("test")
        if not isinstance(test, str) or not BANDIT_ID.fullmatch(test):
            raise AuditError(f"bandit #{index + 1}: test must be a bandit test id such as B101, got {test!r}")
        bandit.append(BanditException(test, _reason(entry, f"bandit {test}")))
    for kind, ids in (("vulnerability", [v.id for v in vulnerabilities]), ("bandit", [b.test for b in bandit])):
        if len(set(ids)) != len(ids):
            raise AuditError(f"{EXCEPTIONS.name}: a {kind} exception is listed twice")
    return Exceptions(tuple(vulnerabilities), tuple(bandit))


def parse_lock(text: str) -> dict[str, str]:
    """requirements.lock as {canonical name: version}; every line must be `name==version`."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)", line)
        if match is None:
            raise AuditError(f"requirements.lock line {number} is not an exact pin (name==version): {line!r}")
        name = canonical(match.group(1))
        if name in pins:
            raise AuditError(f"requirements.lock pins {name} twice")
        pins[name] = match.group(2)
    return pins


def lock_drift(locked: Mapping[str, str], installed: Mapping[str, str]) -> list[str]:
    """How the installed environment differs from the lock, one line per package."""
    drift = []
    for name in sorted(set(locked) | set(installed)):
        want, have = locked.get(name), installed.get(name)
        if want == have:
            continue
        if want is None:
            drift.append(f"{name}=={have} is installed but not in requirements.lock")
        elif have is None:
            drift.append(f"{name}=={want} is in requirements.lock but not installed")
        else:
            drift.append(f"{name} is {have} here but {want} in requirements.lock")
    return drift


@dataclass(frozen=True, slots=True)
class Verdict:
    """pip-audit's report judged against the exceptions."""

    audited: int  # packages whose vulnerabilities were looked up
    unaudited: tuple[str, ...]  # "name version: why" for each package pip-audit skipped
    found: tuple[str, ...]  # every vulnerability found, "package version ID"
    unexcused: tuple[str, ...]  # found and not excepted: "package version ID (fixed in ...)"
    stale: tuple[VulnerabilityException, ...]  # excepted but no longer found

    @property
    def passed(self) -> bool:
        return not (self.unaudited or self.unexcused or self.stale)


def judge(report: Mapping[str, Any], exceptions: Iterable[VulnerabilityException]) -> Verdict:
    """pip-audit's JSON report (`-f json`) against the accepted exceptions. An exception
    matches a finding by its id or one of the finding's aliases (a CVE id for a PYSEC
    one), and only for the package it names."""
    excepted = list(exceptions)
    used: set[VulnerabilityException] = set()
    audited, unaudited, found, unexcused = 0, [], [], []
    for dependency in report.get("dependencies", []):
        name, version = canonical(dependency["name"]), dependency.get("version")
        if "skip_reason" in dependency:
            unaudited.append(f"{name}: {dependency['skip_reason']}")
            continue
        audited += 1
        for vulnerability in dependency.get("vulns", []):
            ids = {vulnerability["id"], *vulnerability.get("aliases", [])}
            found.append(f"{name} {version} {vulnerability['id']}")
            matches = [e for e in excepted if e.package == name and e.id in ids]
            used.update(matches)
            if not matches:
                fixes = ", ".join(vulnerability.get("fix_versions", [])) or "no fixed release"
                unexcused.append(f"{name} {version} {vulnerability['id']} (fixed in: {fixes})")
    stale = tuple(e for e in excepted if e not in used)
    return Verdict(audited, tuple(unaudited), tuple(found), tuple(unexcused), stale)


def nosec_without_reason(source: str) -> list[int]:
    """Lines of a source file whose `# nosec` names no bandit test id, or gives no reason
    after the id(s): `# nosec B603, B607  # the argument list is fixed`. (The reason goes
    after a second `#`: bandit reads every word up to it as a test name.)"""
    bad = []
    for number, line in enumerate(source.splitlines(), start=1):
        match = re.search(r"#\s*nosec\b(.*)$", line)
        if match is None:
            continue
        ids = re.match(r"\s*B\d{3}(\s*,\s*B\d{3})*\s*#\s*(.*)$", match.group(1))
        if ids is None or len(ids.group(2).strip()) < 10:
            bad.append(number)
    return bad


# -- the shell: runs the tools ------------------------------------------------------


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT)  # nosec B603  # a fixed argument list, no shell


def check_lock() -> int:
    locked = parse_lock(LOCK.read_text(encoding="utf-8"))
    freeze = _run([sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"])
    if freeze.returncode != 0:
        raise AuditError(f"pip freeze failed: {freeze.stderr.strip()}")
    installed = parse_lock(freeze.stdout)
    drift = lock_drift(locked, installed)
    if drift:
        print("FAIL lock: the virtual environment is not requirements.lock (run `make venv`, or "
              "`make lock` after changing pyproject.toml):", *drift, sep="\n  ")
        return 1
    print(f"ok   lock: the environment is exactly requirements.lock ({len(locked)} packages)")
    return 0


def run_pip_audit(exceptions: Exceptions, service: str) -> int:
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "pip-audit.json"
        # --disable-pip --no-deps: audit the pins as written, not a fresh resolution.
        # Not --strict: a package pip-audit could not look up is judged here (judge()),
        # where it fails the audit with the list of them instead of at the first one.
        result = _run([sys.executable, "-m", "pip_audit", "--requirement", str(LOCK), "--disable-pip", "--no-deps",
                       "--vulnerability-service", service, "--format", "json", "--output", str(output),
                       "--progress-spinner", "off", "--desc", "off", "--timeout", "30"])
        if not output.exists():
            print(f"FAIL pip-audit: {UNREACHABLE_HINT}\n  pip-audit exited with {result.returncode}:")
            print("\n".join("    " + line for line in result.stderr.strip().splitlines()[-6:]))
            return 1
        report = json.loads(output.read_text(encoding="utf-8"))
    verdict = judge(report, exceptions.vulnerabilities)
    total = verdict.audited + len(verdict.unaudited)
    if verdict.unaudited:
        print(f"FAIL pip-audit: {len(verdict.unaudited)} of {total} locked packages could not be audited. {UNREACHABLE_HINT}")
        for line in verdict.unaudited[:10]:
            print(f"  {line}")
        if len(verdict.unaudited) > 10:
            print(f"  ... and {len(verdict.unaudited) - 10} more")
    for line in verdict.unexcused:
        print(f"FAIL pip-audit: {line}: upgrade the pin (make lock), or justify it in {EXCEPTIONS.relative_to(ROOT)}")
    for stale in verdict.stale:
        print(f"FAIL pip-audit: the exception {stale.id} ({stale.package}) matches no finding any more: remove it")
    if verdict.passed:
        print(f"ok   pip-audit ({service}): {verdict.audited} packages, {len(verdict.found)} known vulnerabilities, "
              f"all {len(exceptions.vulnerabilities)} excepted ones justified in {EXCEPTIONS.relative_to(ROOT)}")
        return 0
    return 1


def run_bandit(exceptions: Exceptions) -> int:
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "bandit.json"
        command = [sys.executable, "-m", "bandit", "--recursive", *BANDIT_TARGETS, "--format", "json",
                   "--output", str(output), "--quiet"]
        if exceptions.bandit:
            command += ["--skip", ",".join(e.test for e in exceptions.bandit)]
        result = _run(command)
        if not output.exists():
            raise AuditError(f"bandit did not run ({result.returncode}): {result.stderr.strip()[-500:]}")
        report = json.loads(output.read_text(encoding="utf-8"))
    if report.get("errors"):
        print("FAIL bandit could not read:", *(f"{e['filename']}: {e['reason']}" for e in report["errors"]), sep="\n  ")
        return 1
    findings = report.get("results", [])
    skipped = report.get("metrics", {}).get("_totals", {}).get("skipped_tests", 0)
    if findings:
        print(f"FAIL bandit: {len(findings)} findings (fix them, or add `# nosec BXXX  # reason` on the line):")
        for finding in findings:
            print(f"  {finding['filename']}:{finding['line_number']} {finding['test_id']} "
                  f"[{finding['issue_severity']}/{finding['issue_confidence']}] {finding['issue_text']}")
        return 1
    print(f"ok   bandit: no findings in {', '.join(BANDIT_TARGETS)} ({skipped} lines excused inline with a reason, "
          f"tests skipped everywhere: {', '.join(e.test for e in exceptions.bandit) or 'none'})")
    return 0


def main(argv: list[str]) -> int:
    service = argv[0] if argv else "pypi"
    try:
        exceptions = parse_exceptions(EXCEPTIONS.read_text(encoding="utf-8"))
        unreasoned = [f"{path.relative_to(ROOT)}:{line}" for target in BANDIT_TARGETS
                      for path in sorted((ROOT / target).rglob("*.py"))
                      for line in nosec_without_reason(path.read_text(encoding="utf-8"))]
        if unreasoned:
            raise AuditError("a `# nosec` without its test id and reason (`# nosec B603  # why`): " + ", ".join(unreasoned))
        failures = check_lock() + run_bandit(exceptions) + run_pip_audit(exceptions, service)
    except AuditError as error:
        print(f"FAIL audit: {error}")
        return 2
    print("audit passed" if not failures else f"audit FAILED ({failures} of 3 checks)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
