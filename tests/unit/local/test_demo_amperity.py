"""The demo's Amperity results: a valid config over the generated columns, known and unknown ids."""

from __future__ import annotations

import csv
from pathlib import Path

from cdpbridge.integrations.registry import get_integration
from cdpbridge.mapping import load_mapping
from cdpbridge.records import RowPosition, SourceRow
from cdpbridge_local.demo_amperity import UNKNOWN_CUSTOMERS, demo_mapping_yaml, write_amperity_results


def test_the_demo_results_map_without_issues_under_the_demo_config(tmp_path: Path) -> None:
    config = load_mapping(demo_mapping_yaml())
    assert config.integration == "amperity" and config.update_existing_only
    transformer = get_integration("amperity").transformer(config)
    path = write_amperity_results(tmp_path / "results.csv", known=20)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert transformer.check_columns(reader.fieldnames or []).errors == ()
        rows = list(reader)
    assert len(rows) == 20 + UNKNOWN_CUSTOMERS
    assert rows[0]["customer_id"] == "C00000000"
    for number, values in enumerate(rows, 1):
        update = transformer.map_row(SourceRow(RowPosition("results.csv", number), values))
        assert update.issues == [] and len(update.attributes) == 8
