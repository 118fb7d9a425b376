"""`cdpbridge currents route`: the report file and summary, unreadable files with their reason, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from cdpbridge_local.cli import main
from cdpbridge_local.currents_data import land

from .conftest import CURRENTS_FIXTURES


def run(tmp_path: Path, *paths: Path, config: str | None = None) -> tuple[int, dict | None]:
    argv = ["currents", "route", *map(str, paths), "--state", str(tmp_path / "state.sqlite3")]
    argv += ["--out", str(tmp_path / "outbound"), "--report-dir", str(tmp_path / "reports")]
    if config is not None:
        (tmp_path / "currents.yaml").write_text(config)
        argv += ["--config", str(tmp_path / "currents.yaml")]
    code = main(argv)
    reports = sorted((tmp_path / "reports").glob("currents-*.json"))
    return code, json.loads(reports[-1].read_text()) if reports else None


def test_the_report_counts_reads_routes_per_event_type_and_unreadable_files(tmp_path, capsys):
    inbound = tmp_path / "inbound"
    for name in ("users.behaviors.Purchase", "users.messages.email.Click", "users.messages.email.Open"):
        land(inbound, name, (CURRENTS_FIXTURES / f"{name}.avro").read_bytes())
    land(inbound, "users.behaviors.CustomEvent", b"garbage", name="broken.avro")

    code, report = run(
        tmp_path, inbound, config="version: 1\nroutes: {files: {destinations: [amperity, blueconic]}}"
    )

    out = capsys.readouterr().out
    assert code == 1  # a file was unreadable
    assert report["records_read"] == 3
    assert report["routed"] == {"files": 3, "lytics": 0, "engagement": 2}
    assert report["machine_opens_excluded"] == 1
    assert report["event_types"]["users.behaviors.Purchase"] == {
        "read": 1,
        "duplicates_skipped": 0,
        "routed": {"files": 1, "lytics": 0, "engagement": 1},
    }
    (unreadable,) = report["unreadable"]
    assert unreadable["file"].endswith("broken.avro") and unreadable["record"] is None
    assert "not a readable Avro file" in unreadable["reason"]
    assert len(report["outputs"]) == 6
    assert "records read 3; routed: files 3, lytics 0, engagement 2" in out
    assert "broken.avro" in out


def test_a_second_run_with_the_same_state_routes_nothing(tmp_path):
    land(
        tmp_path / "inbound",
        "users.behaviors.Purchase",
        (CURRENTS_FIXTURES / "users.behaviors.Purchase.avro").read_bytes(),
    )
    assert run(tmp_path, tmp_path / "inbound")[0] == 0
    code, report = run(tmp_path, tmp_path / "inbound")
    assert code == 0
    assert report["files_already_routed"] == 1 and sum(report["routed"].values()) == 0


def test_a_bad_config_or_a_lytics_route_without_its_url_stops_before_routing(tmp_path, capsys):
    land(
        tmp_path / "inbound",
        "users.messages.email.Click",
        (CURRENTS_FIXTURES / "users.messages.email.Click.avro").read_bytes(),
    )
    code, report = run(tmp_path, tmp_path / "inbound", config="version: 1\nroutes: {lytic: {enabled: true}}")
    assert code == 2 and report is None
    assert "routes.lytic" in capsys.readouterr().err
    code, _ = run(tmp_path, tmp_path / "inbound", config="version: 1\nroutes: {lytics: {enabled: true}}")
    assert code == 2
    assert "no Lytics URL and token" in capsys.readouterr().err
