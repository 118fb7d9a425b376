"""The scripts make security runs around checkov and pip-audit: what they pass, fail and skip.

Both tools are replaced here by small executables that print the JSON the real ones print, so that
each verdict is exercised; `make security` runs the real tools over the real template and lock.
"""

from __future__ import annotations

import importlib.util
import json
import stat
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"lint_{name}", ROOT / "lint" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


checkov_gate = load_script("checkov_gate")
audit_dependencies = load_script("audit_dependencies")


def fake_tool(directory: Path, name: str, outputs: dict[str, Any], exit_code: int = 0) -> Path:
    """An executable printing ``outputs[<value after --vulnerability-service>]`` (or outputs["*"])."""
    path = directory / name
    path.write_text(
        textwrap.dedent(
            f"""\
            #!{sys.executable}
            import json, sys
            outputs = json.loads({json.dumps(json.dumps(outputs))})
            args = sys.argv[1:]
            flag = "--vulnerability-service"
            key = args[args.index(flag) + 1] if flag in args else "*"
            out = outputs.get(key, outputs.get("*"))
            if isinstance(out, str):
                sys.stderr.write(out + "\\n")
                sys.exit(1)
            print(json.dumps(out))
            sys.exit({exit_code})
            """
        )
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


# ------------------------------------------------------------------------------ pip-audit
REQUIREMENTS = "orjson==3.10.0 --hash=sha256:00\n"


def audit(tmp_path: Path, outputs: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(REQUIREMENTS)
    tool = fake_tool(tmp_path, "pip-audit", outputs)
    code = audit_dependencies.main([str(requirements), "--pip-audit", str(tool)])
    return code, capsys.readouterr().out


def test_an_unreachable_database_is_reported_as_skipped_not_passed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_found = {
        "dependencies": [
            {"name": "orjson", "skip_reason": "Dependency not found on PyPI and could not be audited"}
        ]
    }
    code, out = audit(tmp_path, {"pypi": not_found, "osv": "ConnectionError: Failed to resolve"}, capsys)
    assert code == 0
    assert out.startswith("pip-audit SKIPPED: no vulnerability database is reachable")
    assert "pypi: no dependency could be looked up (1 tried)" in out
    assert "osv: pip-audit exited 1: ConnectionError: Failed to resolve" in out


def test_a_vulnerable_dependency_fails_with_its_advisory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vulnerable = {
        "dependencies": [
            {
                "name": "orjson",
                "version": "3.10.0",
                "vulns": [{"id": "GHSA-xxxx", "fix_versions": ["3.10.1"]}],
            }
        ]
    }
    code, out = audit(tmp_path, {"*": vulnerable}, capsys)
    assert code == 1
    assert "pip-audit: orjson 3.10.0: GHSA-xxxx (fixed in 3.10.1)" in out


def test_a_clean_audit_passes_and_says_which_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean = {"dependencies": [{"name": "orjson", "version": "3.10.0", "vulns": []}]}
    code, out = audit(tmp_path, {"pypi": "ConnectionError", "osv": clean}, capsys)
    assert code == 0
    assert out.strip() == "pip-audit passed: 1 locked dependencies, no known vulnerability (osv)"


def test_a_partly_audited_lock_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    partly = {
        "dependencies": [
            {"name": "orjson", "version": "3.10.0", "vulns": []},
            {"name": "private-lib", "skip_reason": "Dependency not found on PyPI"},
        ]
    }
    code, out = audit(tmp_path, {"*": partly}, capsys)
    assert code == 1
    assert "not audited: private-lib" in out


# ------------------------------------------------------------------------------ checkov
def checkov_report(*failed: tuple[str, str]) -> dict[str, Any]:
    return {
        "check_type": "cloudformation",
        "results": {
            "failed_checks": [
                {"check_id": check, "resource": resource, "check_name": "a check"}
                for check, resource in failed
            ]
        },
        "summary": {"passed": 3, "failed": len(failed), "parsing_errors": 0},
    }


BASELINE = """
- check: CKV_AWS_27
  resources: ["AWS::SQS::Queue.*"]
  reason: Every queue sets SqsManagedSseEnabled, which the check does not read.
"""
TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: [AWS::LanguageExtensions, AWS::Serverless-2016-10-31]
Resources:
  Fn::ForEach::Queues:
    - Name
    - [Generic, BlueConic]
    - ${Name}Queue:
        Type: AWS::SQS::Queue
"""


def gate(
    tmp_path: Path, report: dict[str, Any], baseline: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    (tmp_path / "baseline.yaml").write_text(baseline)
    tool = fake_tool(tmp_path, "checkov", {"*": report}, exit_code=1)
    code = checkov_gate.main(
        ["--checkov", str(tool), str(tmp_path / "template.yaml"), str(tmp_path / "baseline.yaml")]
    )
    return code, capsys.readouterr().out


def test_checkov_reads_the_template_with_for_each_expanded(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    expanded = checkov_gate.expanded_template(tmp_path / "template.yaml")
    assert sorted(expanded["Resources"]) == ["BlueConicQueue", "GenericQueue"]
    assert expanded["Transform"] == "AWS::Serverless-2016-10-31"


def test_justified_findings_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = checkov_report(
        ("CKV_AWS_27", "AWS::SQS::Queue.GenericQueue"), ("CKV_AWS_27", "AWS::SQS::Queue.BlueConicQueue")
    )
    code, out = gate(tmp_path, report, BASELINE, capsys)
    assert code == 0
    assert "checkov gate passed: 2 finding(s)" in out


def test_a_finding_without_justification_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = checkov_report(
        ("CKV_AWS_27", "AWS::SQS::Queue.GenericQueue"), ("CKV_AWS_21", "AWS::S3::Bucket.Drop")
    )
    code, out = gate(tmp_path, report, BASELINE, capsys)
    assert code == 1
    assert "checkov: CKV_AWS_21 on AWS::S3::Bucket.Drop: a check" in out


def test_a_stale_baseline_entry_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = gate(tmp_path, checkov_report(), BASELINE, capsys)
    assert code == 1
    assert "CKV_AWS_27 for AWS::SQS::Queue.* matches no finding any more" in out


def test_an_entry_without_a_reason_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = checkov_report(("CKV_AWS_27", "AWS::SQS::Queue.GenericQueue"))
    with pytest.raises(SystemExit, match="entry 1 needs a check, its resources and a reason"):
        gate(tmp_path, report, '- {check: CKV_AWS_27, resources: ["*"], reason: ""}', capsys)


def test_the_project_baseline_gives_every_entry_a_reason() -> None:
    justifications = checkov_gate.load_baseline(ROOT / "lint" / "checkov-baseline.yaml")
    assert {j.check_id for j in justifications} >= {"CKV_AWS_27", "CKV_AWS_116"}
