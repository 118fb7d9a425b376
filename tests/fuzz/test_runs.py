"""Whole runs (run_part, the engine a Lambda and `cdpbridge run` use) over generated hostile files and
generated mapping configs, against the Braze emulator over real HTTP: a run never crashes or hangs,
every bad row is in the rejects file with its reason, good rows reach Braze as the text they hold,
and the rejects file is safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import json
import string
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from cdpbridge.braze import BrazeClient, BrazeSettings, RetryPolicy
from cdpbridge.mapping import MappingConfigError, load_mapping
from cdpbridge.state import SqliteCheckpointStore, SqliteFieldStateStore, SqliteSendLedger
from cdpbridge.sync.artifacts import LocalArtifactStore, iter_rejects
from cdpbridge.sync.engine import EngineOptions
from cdpbridge.sync.job import JobRequest, JobServices, PartOutcome, run_part
from cdpbridge_local.emulator import EmulatorServer
from tests.fuzz.hostile import FIELD_LIMIT, FORMULAS, HostileFile, fuzz_settings, hostile_files, names
from tests.integration.emulator_admin import Braze

pytestmark = [pytest.mark.fuzz, pytest.mark.integration, pytest.mark.timeout(180)]

# What a spreadsheet runs as a formula when a cell starts with it.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ATTRIBUTE = "display_label"


@pytest.fixture(scope="module")
def braze() -> Iterator[Braze]:
    with EmulatorServer(host="127.0.0.1", port=0) as server:
        yield Braze(server.url, requests.Session())


def _run(braze: Braze, workdir: Path, location: Path, mapping_text: str) -> PartOutcome:
    settings = BrazeSettings(
        rest_endpoint=braze.url, retry=RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.05)
    )
    state = workdir / "state.sqlite3"
    services = JobServices(
        client=BrazeClient(settings, "local-dev-key"),
        field_state=SqliteFieldStateStore(state),
        ledger=SqliteSendLedger(state),
        checkpoints=SqliteCheckpointStore(state),
        artifacts=LocalArtifactStore(workdir / "reports"),
        options=EngineOptions(workspace="fuzz", track_cap=settings.track_cap),
        reports_prefix="",
    )
    mapping = load_mapping(mapping_text)
    request = JobRequest(
        mapping.integration, str(location), "v1", "fuzz-run", datetime(2026, 1, 5, tzinfo=UTC), mapping
    )
    return run_part(request, services)


def _rejects(outcome: PartOutcome) -> list[dict[str, Any]]:
    assert outcome.report is not None
    location = outcome.report["rejects_file"]
    return list(iter_rejects(Path(location).read_bytes())) if location else []


def _assert_spreadsheet_safe(rejects: list[dict[str, Any]]) -> None:
    for reject in rejects:
        for column in ("source", "column", "reason", "detail"):
            assert not reject[column].startswith(FORMULA_STARTS), reject


@given(hostile=hostile_files())
@fuzz_settings(max_examples=40)
def test_a_run_sends_every_good_row_and_rejects_every_damaged_one_with_its_reason(
    braze: Braze, hostile: HostileFile
) -> None:
    braze.reset()
    with tempfile.TemporaryDirectory() as folder:
        # Given a file of any format, encoding, line end and wrapping, of good rows (formula-like
        # text among them) and rows damaged in ways the reader or the mapper finds
        workdir = Path(folder)
        path = workdir / hostile.file_name
        path.write_bytes(hostile.data())
        mapping = f"""\
version: 1
integration: generic
source: {{format: {hostile.format}, max_field_chars: {FIELD_LIMIT}}}
identifier: {{column: id, as: external_id}}
trim: false
fields:
  - {{column: name, attribute: {ATTRIBUTE}, type: string, strategy: set}}
"""

        # When it runs
        outcome = _run(braze, workdir, path, mapping)

        # Then the run completes having read every row
        assert outcome.report is not None
        report = outcome.report
        assert report["status"] == "completed", report["failure"]
        assert report["rows_read"] == len(hostile.rows)
        # And each damaged row is in the rejects file, with its reason, and nothing else is
        rejects = _rejects(outcome)
        assert sorted({int(reject["row"]) for reject in rejects}) == hostile.bad_numbers
        assert report["rows_rejected"] == len(hostile.bad_numbers)
        assert all(reject["reason"].strip() for reject in rejects)
        _assert_spreadsheet_safe(rejects)
        # And every good row is in Braze with the text it holds (a formula stays text)
        for _, row in hostile.good:
            assert braze.attributes(row.id).get(ATTRIBUTE) == row.name, row


# --- generated mapping configs ----------------------------------------------------------------

COLUMNS = ("id", "email", "phone", "first", "points", "score", "vip", "tags", "joined", "meta", "note")
_TYPES = ("string", "integer", "float", "decimal", "boolean", "date", "datetime", "array", "object", None)
_CELLS = st.one_of(
    names,
    st.sampled_from(
        (
            "",
            "12",
            "-3",
            "2.5",
            "1e999",
            "NaN",
            "true",
            "no",
            "2024-01-31",
            "2024-01-31T10:00:00+02:00",
            "31/01/2024",
            "1706700000",
            '["a","b"]',
            '{"k": 1}',
            "[1,",
            "a|b|c",
            "ann@example.com",
            "+4915112345678",
            "EUR",
            *FORMULAS,
        )
    ),
)
_ATTRIBUTE_NAMES = st.one_of(
    st.text(string.ascii_lowercase + "_", min_size=1, max_size=12),
    st.sampled_from(("$bad", "", "email", "first_name", "x" * 256, "a.b")),
)


def _weighted(*choices: tuple[Any, int]) -> st.SearchStrategy[Any]:
    return st.sampled_from([value for value, weight in choices for _ in range(weight)])


# Mostly coherent configs, so that most runs send rows; the rest probe the config checks.
_STRATEGY_CHOICES = _weighted(
    ("set", 6), ("clear", 2), ("set_if_empty", 2), ("sum", 1), ("add", 1), ("remove", 1)
)
_TYPE_FOR_STRATEGY = {"sum": "integer", "add": "array", "remove": "array"}


@st.composite
def _field(draw: st.DrawFn) -> dict[str, Any]:
    strategy = draw(_STRATEGY_CHOICES)
    field: dict[str, Any] = {"column": draw(st.sampled_from(COLUMNS[1:])), "strategy": strategy}
    coherent = _TYPE_FOR_STRATEGY.get(strategy)
    field_type = coherent if coherent and draw(st.integers(0, 4)) else draw(st.sampled_from(_TYPES))
    if field_type is not None:
        field["type"] = field_type
    if draw(st.integers(0, 3)) == 0:
        field["attribute"] = draw(_ATTRIBUTE_NAMES)
    if draw(st.integers(0, 4)) == 0:
        field["optional"] = True
    if field_type == "array" and draw(st.booleans()):
        field["separator"] = draw(st.sampled_from(("|", ",", ";")))
        field["max_items"] = draw(st.integers(1, 5))
    return field


def _identifier_value(kind: str, number: int) -> str:
    if kind == "email":
        return f"user{number}@example.com"
    if kind == "phone":
        return f"+4915112{number:06d}"
    if kind == "braze_id":
        return f"{number:024x}"
    return f"user-{number}"


@st.composite
def generated_runs(draw: st.DrawFn) -> tuple[dict[str, Any], tuple[str, ...], list[list[str]]]:
    """A mapping config, and a CSV header and rows that mostly fit it (hostile cells among them)."""
    kind = draw(_weighted(("external_id", 4), ("email", 1), ("phone", 1), ("braze_id", 1), ("user_alias", 1)))
    identifier: dict[str, Any] = {"column": "id", "as": kind}
    if kind == "user_alias":
        identifier["alias_label"] = "crm"
    fields = draw(st.lists(_field(), max_size=5, unique_by=lambda field: field["column"]))
    config: dict[str, Any] = {
        "version": 1,
        "integration": "generic",
        "source": {"format": "csv", "max_field_chars": FIELD_LIMIT},
        "identifier": identifier,
        "fields": fields,
        "on_invalid": draw(st.sampled_from(("reject_row", "skip_field"))),
        "strict": draw(st.integers(0, 4)) == 0,
        "trim": draw(st.booleans()),
    }
    if draw(st.booleans()):
        config["create_missing"] = draw(st.booleans())
    if draw(st.integers(0, 3)) == 0:
        config["null_values"] = draw(st.lists(st.sampled_from(("", "-", "n/a", "NULL")), max_size=3))
    if draw(st.integers(0, 3)) == 0:
        config["remaining"] = {"prefix": "x_", "strategy": "set"}
    if draw(st.integers(0, 3)) == 0:
        config["events"] = [
            {
                "name": "Fuzzed",
                "time_column": draw(st.sampled_from(COLUMNS[1:])),
                "properties": {"p": draw(st.sampled_from(COLUMNS[1:]))},
            }
        ]
    if draw(st.integers(0, 3)) == 0:
        config["purchases"] = [
            {
                "product_id_column": draw(st.sampled_from(COLUMNS[1:])),
                "currency": "EUR",
                "price_column": draw(st.sampled_from(COLUMNS[1:])),
                "time_column": draw(st.sampled_from(COLUMNS[1:])),
            }
        ]
    named = {field["column"] for field in fields}
    extra = draw(st.lists(st.sampled_from(COLUMNS[1:]), max_size=3))
    columns = ["id", *sorted(named | set(extra))]
    if len(columns) > 1 and draw(st.integers(0, 5)) == 0:
        columns.remove(draw(st.sampled_from(columns)))  # a column the config names is missing
    rows = []
    for number in range(draw(st.integers(0, 12))):
        cells = draw(st.lists(_CELLS, min_size=len(columns), max_size=len(columns)))
        if columns[0] == "id" and draw(st.integers(0, 5)):
            cells[0] = _identifier_value(kind, number)
        rows.append(cells)
    return config, tuple(columns), rows


@given(run=generated_runs())
@fuzz_settings(max_examples=60)
def test_a_run_under_any_generated_mapping_ends_with_a_report_or_a_config_error(
    braze: Braze, run: tuple[dict[str, Any], tuple[str, ...], list[list[str]]]
) -> None:
    braze.reset()
    with tempfile.TemporaryDirectory() as folder:
        # Given a generated mapping config and a CSV whose columns may or may not fit it
        workdir = Path(folder)
        config, header, rows = run
        path = workdir / "users.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
        text = json.dumps(config)

        # When the config is loaded and the file run under it
        try:
            load_mapping(text)
        except MappingConfigError as error:
            # Then a config that cannot work is refused with the key and the reason
            assert str(error).strip()
            return
        outcome = _run(braze, workdir, path, text)

        # Then the run ends with a report: completed having read every row, or failed saying why
        assert outcome.report is not None
        report = outcome.report
        assert report["status"] in ("completed", "failed")
        if report["status"] == "failed":
            assert report["failure"]
        else:
            assert report["rows_read"] == len(rows)
        rejects = _rejects(outcome)
        assert all(reject["reason"].strip() for reject in rejects)
        _assert_spreadsheet_safe(rejects)
