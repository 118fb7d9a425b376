"""Runs checkov over the template and fails on every finding that lint/checkov-baseline.yaml does not justify.

checkov reads the template after cfn-lint's transforms (Fn::ForEach expanded, SAM Globals merged), so
it sees one resource per integration, each with the settings it is deployed with. Each baseline
entry names a check, the resources it is accepted for (shell patterns over ``Type.LogicalId``) and
the reason. The gate also fails on an entry without a reason and on one that matches no finding any
more, so that the baseline never outlives what it excuses.

Usage (make security runs it):
    python lint/checkov_gate.py --checkov .tools/checkov/bin/checkov template.yaml lint/checkov-baseline.yaml
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cfnlint.decode import decode_str
from cfnlint.template import Template

# checkov runs offline in well under a minute; more means it is stuck.
CHECKOV_TIMEOUT_S = 300


@dataclass(frozen=True, slots=True)
class Finding:
    check_id: str
    resource: str  # "Type.LogicalId", as checkov names it
    check_name: str


@dataclass(frozen=True, slots=True)
class Justification:
    check_id: str
    resources: tuple[str, ...]
    reason: str

    def covers(self, finding: Finding) -> bool:
        return finding.check_id == self.check_id and any(
            fnmatch.fnmatchcase(finding.resource, pattern) for pattern in self.resources
        )


def expanded_template(path: Path) -> dict[str, Any]:
    """The template as cfn-lint validates it: Fn::ForEach expanded and SAM Globals merged."""
    decoded, errors = decode_str(path.read_text(encoding="utf-8"))
    if errors or decoded is None:
        raise SystemExit(f"{path}: cannot be read: {'; '.join(str(error) for error in errors)}")
    template = Template(str(path), decoded, ["us-east-1"])
    problems = template.transform()
    if problems:
        raise SystemExit(f"{path}: cannot be expanded: {'; '.join(str(p) for p in problems)}")
    expanded: dict[str, Any] = json.loads(json.dumps(template.template))
    # Both transforms are applied already; only the SAM one tells checkov how to read the resources.
    expanded["Transform"] = "AWS::Serverless-2016-10-31"
    expanded.pop("Globals", None)
    return expanded


def run_checkov(checkov: str, template: dict[str, Any]) -> list[Finding]:
    with tempfile.TemporaryDirectory() as directory:
        expanded_path = Path(directory) / "template.json"
        expanded_path.write_text(json.dumps(template, indent=1), encoding="utf-8")
        completed = subprocess.run(
            [
                checkov,
                *("--file", str(expanded_path), "--framework", "cloudformation"),
                *("--quiet", "--skip-download", "--output", "json"),
            ],
            capture_output=True,
            text=True,
            timeout=CHECKOV_TIMEOUT_S,
            check=False,
        )
    # checkov exits 1 when a check failed; anything else without a JSON report is its own failure.
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        raise SystemExit(
            f"checkov gave no report (exit {completed.returncode}):\n{completed.stderr[-4000:]}"
        ) from None
    reports = report if isinstance(report, list) else [report]
    findings: list[Finding] = []
    for section in reports:
        summary = section.get("summary", {})
        if summary.get("parsing_errors"):
            raise SystemExit(f"checkov could not parse the expanded template: {summary}")
        for failed in section.get("results", {}).get("failed_checks", []):
            findings.append(Finding(failed["check_id"], failed["resource"], failed.get("check_name", "")))
    if not findings and not any(section.get("summary", {}).get("passed") for section in reports):
        raise SystemExit("checkov ran no check: the template was not recognised as CloudFormation")
    return findings


def load_baseline(path: Path) -> list[Justification]:
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    justifications: list[Justification] = []
    for index, entry in enumerate(entries, start=1):
        reason = str(entry.get("reason") or "").strip()
        check_id = str(entry.get("check") or "").strip()
        resources = tuple(str(pattern) for pattern in entry.get("resources") or ())
        if not check_id or not resources or len(reason) < 20:
            raise SystemExit(
                f"{path}: entry {index} needs a check, its resources and a reason of a sentence at least"
            )
        justifications.append(Justification(check_id, resources, reason))
    return justifications


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--checkov", required=True, help="the checkov executable")
    parser.add_argument("template", type=Path)
    parser.add_argument("baseline", type=Path)
    arguments = parser.parse_args(argv)

    findings = run_checkov(arguments.checkov, expanded_template(arguments.template))
    justifications = load_baseline(arguments.baseline)
    unjustified = [f for f in findings if not any(j.covers(f) for j in justifications)]
    stale = [j for j in justifications if not any(j.covers(f) for f in findings)]
    for finding in unjustified:
        print(f"checkov: {finding.check_id} on {finding.resource}: {finding.check_name}")
    for justification in stale:
        print(
            f"{arguments.baseline}: {justification.check_id} for {', '.join(justification.resources)} "
            "matches no finding any more: remove the entry"
        )
    if unjustified or stale:
        print(
            f"checkov gate failed: {len(unjustified)} finding(s) to fix or justify in {arguments.baseline}, "
            f"{len(stale)} stale entr(ies)"
        )
        return 1
    print(f"checkov gate passed: {len(findings)} finding(s), each justified in {arguments.baseline}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
