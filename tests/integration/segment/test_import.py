"""Segment's S3 files through run_part into the emulator, as the import function runs them."""

from __future__ import annotations

import gzip
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cdpbridge.braze import BrazeClient, BrazeSettings, RetryPolicy
from cdpbridge.integrations.segment import EXAMPLE_FILE_PATH, EXAMPLE_MAPPING_PATH
from cdpbridge.mapping import MappingConfig, load_mapping
from cdpbridge.state import SqliteCheckpointStore, SqliteFieldStateStore, SqliteSendLedger
from cdpbridge.sync.artifacts import LocalArtifactStore
from cdpbridge.sync.engine import EngineOptions
from cdpbridge.sync.job import JobRequest, JobServices, PartOutcome, run_part

from ..emulator_admin import API_KEY, Braze

pytestmark = pytest.mark.integration


def run(workdir: Path, braze_url: str, path: Path, mapping: MappingConfig) -> PartOutcome:
    settings = BrazeSettings(rest_endpoint=braze_url, retry=RetryPolicy(max_attempts=3, base_delay_s=0.01))
    state = workdir / "state.sqlite3"
    services = JobServices(
        client=BrazeClient(settings, API_KEY),
        field_state=SqliteFieldStateStore(state),
        ledger=SqliteSendLedger(state),
        checkpoints=SqliteCheckpointStore(state),
        artifacts=LocalArtifactStore(workdir / "reports"),
        options=EngineOptions(workspace="w", track_cap=settings.track_cap),
        reports_prefix="",
    )
    request = JobRequest(
        integration="segment",
        location=str(path),
        version=f"{path.stat().st_size}-{time.monotonic_ns()}",
        run_id=f"run-{time.monotonic_ns()}",
        started_at=datetime.now(UTC),
        mapping=mapping,
    )
    return run_part(request, services)


def test_the_example_file_gzipped_as_segment_writes_it(braze: Braze, tmp_path: Path) -> None:
    # Given the example calls gzipped under Segment's layout
    path = tmp_path / "1796115900-example.gz"
    path.write_bytes(gzip.compress(EXAMPLE_FILE_PATH.read_bytes()))

    # When they run with the example config
    outcome = run(tmp_path, braze.url, path, load_mapping(EXAMPLE_MAPPING_PATH))

    # Then the latest value of each trait wins, a repeated call counts once, the page call is an event
    # and the group call is skipped
    assert outcome.finished
    counters = outcome.counters
    assert counters.rows_read == 9
    assert counters.rows_rejected == 0
    assert counters.attributes_superseded == 1
    assert counters.skipped_by_reason == {"duplicate messageId": 1, "group call not mapped": 1}
    first = braze.attributes("u-1001")
    assert first["last_product_viewed_item"] == "Sweater"
    assert first["dormant_shopper"] is True
    second = braze.user("u-1002")
    assert second is not None
    assert second["custom_attributes"]["last_product_viewed_item"] == "Boots"  # 10:00 beats 08:00
    assert second["attributes"]["first_name"] == "Ada"
    assert [event["name"] for event in second["events"]] == ["Page Viewed"]
    assert outcome.report is not None


def test_with_the_minimal_config_anonymous_calls_are_rejects_and_page_calls_skipped(
    braze: Braze, tmp_path: Path
) -> None:
    minimal = load_mapping("version: 1\nintegration: segment\nsource: {format: jsonl}\n")
    outcome = run(tmp_path, braze.url, EXAMPLE_FILE_PATH, minimal)
    counters = outcome.counters
    assert counters.rows_rejected == 1
    assert counters.rejects_by_reason == {"no userId (anonymous call)": 1}
    assert counters.skipped_by_reason["page call not mapped"] == 1
    assert braze.attributes("u-1002")["firstName"] == "Ada"  # each trait keeps its name unless mapped
