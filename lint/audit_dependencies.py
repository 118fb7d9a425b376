"""Audits the layer's locked dependencies with pip-audit, when a vulnerability database can be reached.

pip-audit looks every pinned version up in an online vulnerability database (PyPI's, else OSV's); it
has no offline mode. Where neither answers (a build machine that reaches only a package mirror),
pip-audit itself reports every dependency as "not found" and says "No known vulnerabilities found",
which would read as a pass: this script tells the two apart, prints that the audit was skipped and
why, and exits 0, so that ``make test`` neither fails nor hangs without the internet. Anything
pip-audit did audit and found vulnerable fails the run.

Usage (make security and make audit run it):
    python lint/audit_dependencies.py layers/cdpbridge/requirements.txt
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Per request, and for a whole run: a database that does not answer is not waited for.
REQUEST_TIMEOUT_S = 10
RUN_TIMEOUT_S = 180
SERVICES = ("pypi", "osv")


@dataclass(frozen=True, slots=True)
class AuditResult:
    service: str
    audited: list[dict[str, Any]]
    unaudited: list[str]
    failure: str | None = None

    @property
    def vulnerable(self) -> list[dict[str, Any]]:
        return [dependency for dependency in self.audited if dependency.get("vulns")]


def run_pip_audit(pip_audit: str, requirements: Path, service: str) -> AuditResult:
    command = [
        pip_audit,
        *("--requirement", str(requirements), "--require-hashes", "--disable-pip"),
        *("--vulnerability-service", service, "--timeout", str(REQUEST_TIMEOUT_S)),
        *("--progress-spinner", "off", "--format", "json"),
    ]
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return AuditResult(service, [], [], f"no answer within {RUN_TIMEOUT_S} s")
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        last_line = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        return AuditResult(service, [], [], f"pip-audit exited {completed.returncode}: {last_line}")
    dependencies: list[dict[str, Any]] = report.get("dependencies", [])
    audited = [dependency for dependency in dependencies if "skip_reason" not in dependency]
    unaudited = [f"{d['name']}: {d['skip_reason']}" for d in dependencies if "skip_reason" in d]
    return AuditResult(service, audited, unaudited)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("requirements", type=Path, help="a requirements file pinned with hashes")
    parser.add_argument("--pip-audit", default=str(Path(sys.executable).with_name("pip-audit")))
    arguments = parser.parse_args(argv)

    reasons: list[str] = []
    for service in SERVICES:
        result = run_pip_audit(arguments.pip_audit, arguments.requirements, service)
        if result.failure is not None:
            reasons.append(f"{service}: {result.failure}")
            continue
        if not result.audited:
            # Every look-up failed: the database did not answer, whatever pip-audit concluded.
            reasons.append(f"{service}: no dependency could be looked up ({len(result.unaudited)} tried)")
            continue
        for dependency in result.vulnerable:
            for vulnerability in dependency["vulns"]:
                fixed = ", ".join(vulnerability.get("fix_versions") or []) or "no fixed version yet"
                print(
                    f"pip-audit: {dependency['name']} {dependency['version']}: {vulnerability['id']} "
                    f"(fixed in {fixed})"
                )
        for line in result.unaudited:
            print(f"pip-audit: not audited: {line}")
        if result.vulnerable or result.unaudited:
            print(
                f"pip-audit failed ({service} database): {len(result.vulnerable)} vulnerable, "
                f"{len(result.unaudited)} not audited; upgrade in requirements.in and run `make lock`"
            )
            return 1
        print(
            f"pip-audit passed: {len(result.audited)} locked dependencies, no known vulnerability ({service})"
        )
        return 0
    print(
        "pip-audit SKIPPED: no vulnerability database is reachable from this machine ("
        + "; ".join(reasons)
        + "). The audit needs the internet: run `make audit` where it is reachable."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
