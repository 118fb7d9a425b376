"""`cdpbridge run` and the users.track cap, as Braze documents the cap: current workspaces take 75
objects combined per request (the default), legacy workspaces 75 per array (``--track-cap-mode
per_array``). The run report says which cap the run was given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from cdpbridge_local.cli import main
from cdpbridge_local.demo_data import CUSTOMER_MAPPING_YAML, write_customers_csv
from tests.unit.emulator.conftest import EmulatorClient


def run(tmp_path: Path, emulator: EmulatorClient, name: str, *extra: str) -> dict[str, Any]:
    data = write_customers_csv(tmp_path / f"{name}.csv", 30)
    config = tmp_path / "mapping.yaml"
    config.write_text(CUSTOMER_MAPPING_YAML)
    reports = tmp_path / name
    arguments = ["run", str(data), "--config", str(config), "--state", str(tmp_path / f"{name}.sqlite3")]
    arguments += ["--report-dir", str(reports), "--braze-url", emulator.url, "--api-key", "local-dev-key"]
    assert main([*arguments, "--quiet", *extra]) == 0
    [report] = [path for path in reports.rglob("*.json") if "retry" not in path.parts]
    result: dict[str, Any] = orjson.loads(report.read_bytes())
    return result


def test_run_defaults_to_75_combined_and_keeps_per_array_for_legacy_workspaces(
    tmp_path: Path, emulator: EmulatorClient, capsys: pytest.CaptureFixture[str]
) -> None:
    default = run(tmp_path, emulator, "default")
    assert default["track_cap"] == {"mode": "total", "limit": 75} and default["track_cap_lowered_to"] == 0
    emulator.configure(track_cap={"mode": "per_array", "limit": 75})
    legacy = run(tmp_path, emulator, "legacy", "--track-cap-mode", "per_array")
    assert legacy["track_cap"] == {"mode": "per_array", "limit": 75}
    capsys.readouterr()
