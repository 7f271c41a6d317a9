"""`make audit`, which `make test` runs first: the supply-chain checks of issue 12.

1. The virtual environment is exactly requirements.lock: every package and version
   pip reports installed (pip and setuptools included, deskstream's own editable
   install excepted) is the one the lock pins, and nothing else. So the list audited in
   step 2 is what the tests ran on; the Makefile installs the venv with the lock as
   constraints and the Dockerfile builds the image with it.
2. pip-audit: every package of requirements.lock against PyPI's vulnerability data
   (the PyPA advisory database), by the pinned versions as written (no re-resolution).
   pip-audit reads it per release (https://pypi.org/pypi/<name>/<version>/json); where
   that answers 404 (a PyPI mirror, as on our CI's network), a package it skipped is
   audited from PyPI's project JSON (https://pypi.org/pypi/<name>/json), whose
   `vulnerabilities` are the same data for the latest release (`info.version`) only: so
   only when the lock pins exactly that release. A package pinned behind it cannot be
   audited there and fails, unless an `[[unaudited]]` entry of the exceptions file names
   it at its locked version with the reason it is held back. Any other package that
   could not be audited, or a source that cannot be reached (pip-audit's service, or the
   project JSON), is a failure: an audit that did not happen must not read as a clean one.
   The output says how many packages each source audited, which were excused, and the
   vulnerabilities found.
3. bandit over the code that runs or is run by hand (deskstream/, services/, bench/;
   the tests are not shipped).

Exceptions live in security/audit-exceptions.toml, each with its reason; a vulnerability
exception that no longer matches a finding fails the audit too, and so does an
`[[unaudited]]` entry whose package is not locked at its version or is locked at its
latest release (where pip-audit audits a held-back package itself, its entry stays, not
needed there but still needed where only the project JSON answers), so the file cannot
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
import urllib.request
from concurrent.futures import ThreadPoolExecutor
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
VERSION = re.compile(r"[A-Za-z0-9.+!_-]+")
# PyPI's project JSON: `info.version` is the latest release and `vulnerabilities` that
# release's advisories (the data pip-audit's PyPI service reads per release).
PROJECT_JSON = "https://pypi.org/pypi/{name}/json"
PROJECT_TIMEOUT_SECONDS = 30
PROJECT_FETCHES = 8  # at once: about 80 MB of JSON for the whole lock
UNREACHABLE_HINT = ("pip-audit could not get vulnerability data for the locked packages; the audit did NOT run "
                    "(a failure, not a pass). It needs PyPI's JSON API per release "
                    "(https://pypi.org/pypi/<name>/<version>/json) or its project JSON (https://pypi.org/pypi/<name>/json) "
                    "or, with AUDIT_SERVICE=osv, api.osv.dev.")


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
class UnauditedException:
    """A package pinned behind its latest release, so that PyPI's project data (which
    describes only the latest release) cannot audit it where pip-audit could not, and
    why it is held back there."""

    package: str
    version: str
    reason: str


@dataclass(frozen=True, slots=True)
class Exceptions:
    vulnerabilities: tuple[VulnerabilityException, ...]
    bandit: tuple[BanditException, ...]
    unaudited: tuple[UnauditedException, ...] = ()


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
    unknown = set(data) - {"vulnerability", "bandit", "unaudited"}
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
    unaudited = []
    for index, entry in enumerate(data.get("unaudited", [])):
        package, version = entry.get("package"), entry.get("version")
        if not isinstance(package, str) or not package:
            raise AuditError(f"unaudited #{index + 1}: package must name a package of requirements.lock")
        if not isinstance(version, str) or not VERSION.fullmatch(version):
            raise AuditError(f"unaudited #{index + 1} ({package}): version must be the locked version, got {version!r}")
        unaudited.append(UnauditedException(canonical(package), version, _reason(entry, f"unaudited {package}")))
    for kind, ids in (("vulnerability", [v.id for v in vulnerabilities]), ("bandit", [b.test for b in bandit]),
                      ("unaudited", [u.package for u in unaudited])):
        if len(set(ids)) != len(ids):
            raise AuditError(f"{EXCEPTIONS.name}: a {kind} exception is listed twice")
    return Exceptions(tuple(vulnerabilities), tuple(bandit), tuple(unaudited))


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


def unique_vulnerabilities(entries: Iterable[Any]) -> list[dict[str, Any]]:
    """PyPI's `vulnerabilities` list in pip-audit's report shape (id, aliases,
    fix_versions), as pip-audit's PyPI service reads it: withdrawn advisories dropped,
    and one advisory published under several ids (a PYSEC and its GHSA, each the other's
    alias) kept once, under its PYSEC id, with every alias."""
    current = []
    for entry in entries:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("id"), str):
            raise AuditError(f"a vulnerability entry without an id: {entry!r}"[:200])
        if entry.get("withdrawn") is not None:
            continue
        identifier = entry["id"]
        current.append({"id": identifier, "aliases": sorted(set(entry.get("aliases") or ()) - {identifier}),
                        "fix_versions": list(entry.get("fixed_in") or ())})
    current.sort(key=lambda vulnerability: not vulnerability["id"].startswith("PYSEC"))  # stable: PYSEC first
    unique: list[dict[str, Any]] = []
    for vulnerability in current:
        names = {vulnerability["id"], *vulnerability["aliases"]}
        same = next((u for u in unique if names & {u["id"], *u["aliases"]}), None)
        if same is None:
            unique.append(vulnerability)
            continue
        same["aliases"] = sorted({*same["aliases"], *names} - {same["id"]})
        same["fix_versions"] += [v for v in vulnerability["fix_versions"] if v not in same["fix_versions"]]
    return unique


@dataclass(frozen=True, slots=True)
class ProjectData:
    """What PyPI's project JSON (https://pypi.org/pypi/<name>/json) tells of one locked
    package: its latest release and, when the lock pins exactly that release, that
    release's vulnerabilities (None when the lock pins an older release: the project JSON
    describes only the latest one, so it says nothing about the pinned one)."""

    latest: str
    vulns: tuple[dict[str, Any], ...] | None


def project_data(version: str, project: Mapping[str, Any]) -> ProjectData:
    """PyPI's project JSON read for the locked `version`. The JSON must carry PyPI's
    vulnerability data (a `vulnerabilities` list, empty when there is none): a mirror that
    leaves it out would otherwise read as a clean audit."""
    info = project.get("info")
    latest = info.get("version") if isinstance(info, Mapping) else None
    if not isinstance(latest, str) or not latest:
        raise AuditError("the project JSON has no info.version")
    if latest != version:
        return ProjectData(latest, None)
    entries = project.get("vulnerabilities")
    if not isinstance(entries, list):
        raise AuditError("the project JSON has no `vulnerabilities` list: no vulnerability data to audit with")
    return ProjectData(latest, tuple(unique_vulnerabilities(entries)))


@dataclass(frozen=True, slots=True)
class Verdict:
    """pip-audit's report, completed with PyPI's project data, judged against the exceptions."""

    audited: int  # packages whose vulnerabilities pip-audit looked up
    unaudited: tuple[str, ...]  # "name ...: why" for each package neither source audited, nor excused
    found: tuple[str, ...]  # every vulnerability pip-audit found, "package version ID"
    unexcused: tuple[str, ...]  # found and not excepted: "package version ID (fixed in ...)"
    stale: tuple[VulnerabilityException, ...]  # excepted but no longer found
    from_project: tuple[str, ...] = ()  # "name version" audited from PyPI's project data
    found_from_project: tuple[str, ...] = ()  # every vulnerability found there, "package version ID"
    excused: tuple[str, ...] = ()  # "name version (latest X)": unaudited, held back for its [[unaudited]] reason
    stale_unaudited: tuple[str, ...] = ()  # [[unaudited]] entries that excuse nothing, and why

    @property
    def passed(self) -> bool:
        return not (self.unaudited or self.unexcused or self.stale or self.stale_unaudited)


def judge(report: Mapping[str, Any], exceptions: Iterable[VulnerabilityException], *,
          locked: Mapping[str, str] | None = None, projects: Mapping[str, ProjectData | str] | None = None,
          excuses: Iterable[UnauditedException] = ()) -> Verdict:
    """pip-audit's JSON report (`-f json`) against the accepted exceptions. An exception
    matches a finding by its id or one of the finding's aliases (a CVE id for a PYSEC
    one), and only for the package it names.

    A package pip-audit skipped (PyPI's per-release API answered 404) is judged from
    `projects`, PyPI's project data for it (ProjectData, or a string saying why it could
    not be read, which fails): audited when the lock (`locked`, {name: version}) pins its
    latest release; otherwise unaudited, which fails unless an `excuses` entry names it at
    the locked version. An excuse fails as stale when its package is not locked at its
    version, or is locked at its latest release (the project data audits it); when
    pip-audit audited the package here, the excuse is merely not needed here, as long as
    the package is still behind (`projects` must then hold its project data too)."""
    excepted = list(exceptions)
    locked = locked or {}
    projects = projects or {}
    by_package = {excuse.package: excuse for excuse in excuses}
    used: set[VulnerabilityException] = set()
    audited, pip_audited = 0, set()
    unaudited: list[str] = []
    found: list[str] = []
    from_project: list[str] = []
    found_from_project: list[str] = []
    excused: list[str] = []
    unexcused: list[str] = []

    def check(name: str, version: str | None, vulnerabilities: Iterable[Mapping[str, Any]], into: list[str],
              source: str) -> None:
        for vulnerability in vulnerabilities:
            ids = {vulnerability["id"], *vulnerability.get("aliases", [])}
            into.append(f"{name} {version} {vulnerability['id']}")
            matches = [e for e in excepted if e.package == name and e.id in ids]
            used.update(matches)
            if not matches:
                fixes = ", ".join(vulnerability.get("fix_versions", [])) or "no fixed release"
                unexcused.append(f"{name} {version} {vulnerability['id']} (fixed in: {fixes}){source}")

    reported = set()
    for dependency in report.get("dependencies", []):
        name, version = canonical(dependency["name"]), dependency.get("version")
        reported.add(name)
        if "skip_reason" not in dependency:
            audited += 1
            pip_audited.add(name)
            check(name, version, dependency.get("vulns", []), found, "")
            continue
        version, data = locked.get(name), projects.get(name)
        if version is None or data is None:
            unaudited.append(f"{name}: {dependency['skip_reason']}")
        elif isinstance(data, str):
            unaudited.append(f"{name} {version}: pip-audit skipped it and PyPI's project data could not be read: {data}")
        elif data.vulns is not None:
            from_project.append(f"{name} {version}")
            check(name, version, data.vulns, found_from_project, " [PyPI project data]")
        elif name in by_package and by_package[name].version == version:
            excused.append(f"{name} {version} (latest {data.latest})")
        else:
            unaudited.append(f"{name} {version}: pinned behind its latest release {data.latest}, the only one PyPI's "
                             f"project data describes; upgrade the pin, or say why it is held back in [[unaudited]]")
    for name in sorted(set(locked) - reported):
        unaudited.append(f"{name} {locked[name]}: missing from pip-audit's report")
    stale_unaudited: list[str] = []
    for name, excuse in by_package.items():
        version, data = locked.get(name), projects.get(name)
        if version is None:
            stale_unaudited.append(f"{name}: not in requirements.lock")
        elif version != excuse.version:
            stale_unaudited.append(f"{name} {excuse.version}: requirements.lock pins {version}")
        elif isinstance(data, ProjectData) and data.latest == version:
            stale_unaudited.append(f"{name} {version}: its latest release, which PyPI's project data audits")
        elif not isinstance(data, ProjectData) and name in pip_audited:
            unaudited.append(f"{name} {version}: whether its [[unaudited]] entry is still needed is unknown, PyPI's "
                             f"project data could not be read: {data or 'not fetched'}")
    stale = tuple(e for e in excepted if e not in used)
    return Verdict(audited, tuple(unaudited), tuple(found), tuple(unexcused), stale, tuple(from_project),
                   tuple(found_from_project), tuple(excused), tuple(stale_unaudited))


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


def fetch_project(name: str) -> Mapping[str, Any]:
    """PyPI's project JSON of one package (standard library only, with a timeout)."""
    request = urllib.request.Request(PROJECT_JSON.format(name=name),
                                     headers={"Accept": "application/json", "User-Agent": "deskstream-audit"})
    with urllib.request.urlopen(request, timeout=PROJECT_TIMEOUT_SECONDS) as response:  # nosec B310  # a fixed https://pypi.org URL, a canonical package name in it
        return json.load(response)


def read_projects(locked: Mapping[str, str], names: Iterable[str]) -> dict[str, ProjectData | str]:
    """PyPI's project data of each named locked package, or why it could not be read
    (which fails the audit: an unreachable source is never a clean one)."""
    def one(name: str) -> tuple[str, ProjectData | str]:
        try:
            return name, project_data(locked[name], fetch_project(name))
        except (OSError, ValueError, AuditError) as error:  # URLError, HTTPError, timeouts; bad JSON
            return name, f"{PROJECT_JSON.format(name=name)}: {error}"
    with ThreadPoolExecutor(PROJECT_FETCHES) as pool:
        return dict(pool.map(one, sorted(set(names) & set(locked))))


def run_pip_audit(exceptions: Exceptions, service: str) -> int:
    locked = parse_lock(LOCK.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "pip-audit.json"
        # --disable-pip --no-deps: audit the pins as written, not a fresh resolution.
        # Not --strict: a package pip-audit could not look up is judged here (judge()),
        # from PyPI's project data, or failing with the list of them.
        result = _run([sys.executable, "-m", "pip_audit", "--requirement", str(LOCK), "--disable-pip", "--no-deps",
                       "--vulnerability-service", service, "--format", "json", "--output", str(output),
                       "--progress-spinner", "off", "--desc", "off", "--timeout", "30"])
        if not output.exists():
            print(f"FAIL pip-audit: {UNREACHABLE_HINT}\n  pip-audit exited with {result.returncode}:")
            print("\n".join("    " + line for line in result.stderr.strip().splitlines()[-6:]))
            return 1
        report = json.loads(output.read_text(encoding="utf-8"))
    skipped = {canonical(d["name"]) for d in report.get("dependencies", []) if "skip_reason" in d}
    projects = read_projects(locked, skipped | {excuse.package for excuse in exceptions.unaudited})
    verdict = judge(report, exceptions.vulnerabilities, locked=locked, projects=projects, excuses=exceptions.unaudited)
    where = EXCEPTIONS.relative_to(ROOT)
    print(f"     audited by pip-audit ({service}): {verdict.audited} packages, {len(verdict.found)} known vulnerabilities")
    if skipped:
        print(f"     pip-audit could not audit {len(skipped)}; audited from PyPI's project data "
              f"({PROJECT_JSON.format(name='<name>')}, the pinned release being the latest): {len(verdict.from_project)} packages, "
              f"{len(verdict.found_from_project)} known vulnerabilities")
    print(f"     excused as unaudited (pinned behind the latest release, [[unaudited]] in {where}): "
          f"{len(verdict.excused)} packages{': ' if verdict.excused else ''}{', '.join(verdict.excused)}")
    if verdict.unaudited:
        print(f"FAIL pip-audit: {len(verdict.unaudited)} of {len(locked)} locked packages could not be audited "
              f"and are not excused:")
        for line in verdict.unaudited[:10]:
            print(f"  {line}")
        if len(verdict.unaudited) > 10:
            print(f"  ... and {len(verdict.unaudited) - 10} more")
        if len(verdict.unaudited) == len(locked):
            print(f"  {UNREACHABLE_HINT}")
    for line in verdict.unexcused:
        print(f"FAIL pip-audit: {line}: upgrade the pin (make lock), or justify it in {where}")
    for stale in verdict.stale:
        print(f"FAIL pip-audit: the exception {stale.id} ({stale.package}) matches no finding any more: remove it")
    for line in verdict.stale_unaudited:
        print(f"FAIL pip-audit: the [[unaudited]] entry {line}: remove or correct it in {where}")
    if verdict.passed:
        print(f"ok   pip-audit: all {len(locked)} locked packages audited ({verdict.audited} by pip-audit, "
              f"{len(verdict.from_project)} from PyPI's project data) or excused ({len(verdict.excused)}); "
              f"{len(verdict.found) + len(verdict.found_from_project)} known vulnerabilities, "
              f"all {len(exceptions.vulnerabilities)} excepted ones justified in {where}")
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
