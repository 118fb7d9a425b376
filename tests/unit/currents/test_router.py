"""Routing files: exact counts over every sample, duplicates routed once, a failure half-way resumed."""

from __future__ import annotations

import gzip
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from cdpbridge.currents import (
    CURRENTS_STATE_TABLE,
    CurrentsRouter,
    DeadlineReachedError,
    DynamoDbCurrentsState,
    LocalOutputStore,
    RouterServices,
    SqliteCurrentsState,
    parse_currents_config,
)
from cdpbridge.currents.engagement_route import ENGAGEMENT_EVENT_TYPES
from cdpbridge.currents.layout import parse_currents_key
from cdpbridge.currents.local_files import avro_files, route_local_file
from cdpbridge.engagement import SqliteEngagementStore
from cdpbridge.state import StateStoreUnavailableError
from cdpbridge_local.currents_data import avro_bytes, land, renamed, synthetic_events, with_optional_field

from .conftest import CURRENTS_FIXTURES

FILES_AND_ENGAGEMENT = """
version: 1
routes:
  files: {enabled: true, event_types: ["*"], destinations: [amperity, blueconic]}
  engagement: {enabled: true}
"""


@dataclass
class Bench:
    """A routing setup on a temporary folder: inbound files, outbound/, SQLite state."""

    root: Path
    config_text: str = FILES_AND_ENGAGEMENT

    def services(self, **overrides: Any) -> RouterServices:
        config = parse_currents_config(self.config_text)
        state = self.root / "state.sqlite3"
        values: dict[str, Any] = {
            "config": config,
            "state": SqliteCurrentsState(state),
            "outputs": LocalOutputStore(self.root / "outbound"),
            "engagement": SqliteEngagementStore(state),
            **overrides,
        }
        return RouterServices(**values)

    def route(self, *paths: Path, **overrides: Any) -> CurrentsRouter:
        router = CurrentsRouter(self.services(**overrides))
        for path in avro_files(paths):
            route_local_file(router, path)
        return router

    def lines(self, destination: str = "amperity") -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for path in sorted((self.root / "outbound" / destination).rglob("*.jsonl.gz")):
            found += [orjson.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
        return found


@pytest.fixture
def bench(tmp_path: Path) -> Bench:
    return Bench(tmp_path)


def land_samples(root: Path) -> None:
    for sample in sorted(CURRENTS_FIXTURES.glob("*.avro")):
        land(root / "inbound", sample.stem, sample.read_bytes())


def test_all_94_samples_route_with_exact_counts(bench: Bench, samples):
    # Given every sample file landed under its key
    land_samples(bench.root)
    # When they are routed
    report = bench.route(bench.root / "inbound").report
    # Then each event went to both destinations once, and the engagement kinds to the profiles
    summary = report.to_dict()
    assert summary["files"] == 94 and summary["records_read"] == 94
    assert summary["routed"] == {"files": 94, "lytics": 0, "engagement": len(ENGAGEMENT_EVENT_TYPES) - 1}
    assert summary["machine_opens_excluded"] == 1  # the sample e-mail open is a machine open
    assert summary["duplicates_skipped"] == 0 and summary["unreadable"] == []
    assert len(summary["outputs"]) == 2 * 94
    assert all(counts["read"] == 1 for counts in summary["event_types"].values())
    assert len(summary["event_types"]) == 94
    # And every output line is the Avro record plus its event type
    lines = {line["event_type"]: line for line in bench.lines()}
    assert lines.keys() == {sample.event_type for sample in samples}
    for sample in samples:
        assert lines[sample.event_type] == {
            **orjson.loads(orjson.dumps(sample.record)),
            "event_type": sample.event_type,
        }
    assert bench.lines("blueconic") == bench.lines("amperity")


def test_output_files_sit_under_destination_currents_event_type_and_day(bench: Bench):
    land(
        bench.root / "inbound",
        "users.behaviors.Purchase",
        (CURRENTS_FIXTURES / "users.behaviors.Purchase.avro").read_bytes(),
        name="abc.avro",
    )
    report = bench.route(bench.root / "inbound").report
    expected = bench.root / "outbound/amperity/currents/users.behaviors.Purchase/2026-12-07/abc.jsonl.gz"
    assert str(expected) in report.outputs
    assert gzip.decompress(expected.read_bytes()).count(b"\n") == 1


def test_files_with_a_new_optional_field_and_a_new_event_type_both_route(bench: Bench, sample_by_type):
    click = sample_by_type["users.messages.email.Click"]
    added = [{**event, "click_region": "eu"} for event in synthetic_events(click.record, 40)]
    land(
        bench.root / "inbound",
        click.event_type,
        avro_bytes(with_optional_field(click.schema, "click_region"), added),
    )
    custom = sample_by_type["users.behaviors.CustomEvent"]
    new_type = "users.behaviors.quantum.Teleport"
    teleports = list(synthetic_events(custom.record, 25, seed=3))
    land(bench.root / "inbound", new_type, avro_bytes(renamed(custom.schema, new_type), teleports))

    report = bench.route(bench.root / "inbound").report

    assert report.to_dict()["routed"] == {"files": 65, "lytics": 0, "engagement": 40}
    lines = bench.lines()
    assert sorted(line["id"] for line in lines if line["event_type"] == new_type) == sorted(
        e["id"] for e in teleports
    )
    assert all(line["click_region"] == "eu" for line in lines if line["event_type"] == click.event_type)


def test_a_duplicate_delivery_routes_nothing_new(bench: Bench, sample_by_type):
    sample = sample_by_type["users.messages.email.Open"]
    data = avro_bytes(sample.schema, list(synthetic_events(sample.record, 300)))
    first = land(bench.root / "inbound", sample.event_type, data, name="a.avro")
    assert bench.route(first).report.routed["files"] == 300
    outputs_before = sorted(p.name for p in (bench.root / "outbound").rglob("*.gz"))

    # The same file delivered again is skipped unread; the same events under another name are duplicates
    again = bench.route(first).report
    copy = land(bench.root / "redelivered", sample.event_type, data, name="b.avro")
    redelivered = bench.route(copy).report

    assert again.files_already_routed == 1 and again.records_read == 0
    assert redelivered.records_read == 300 and redelivered.duplicates_skipped == 300
    assert sum(redelivered.routed.values()) == 0
    assert sorted(p.name for p in (bench.root / "outbound").rglob("*.gz")) == outputs_before
    assert len(bench.lines()) == 300


def test_two_files_sharing_events_route_each_event_once(bench: Bench, sample_by_type):
    sample = sample_by_type["users.behaviors.Purchase"]
    events = list(synthetic_events(sample.record, 200))
    land(bench.root / "inbound", sample.event_type, avro_bytes(sample.schema, events[:120]), name="a.avro")
    land(bench.root / "inbound", sample.event_type, avro_bytes(sample.schema, events[80:]), name="b.avro")
    land(bench.root / "inbound", sample.event_type, avro_bytes(sample.schema, events[:10] * 2), name="c.avro")

    report = bench.route(bench.root / "inbound").report

    assert report.records_read == 120 + 120 + 20
    assert report.duplicates_skipped == 40 + 20
    assert sorted(line["id"] for line in bench.lines()) == sorted(event["id"] for event in events)
    profiles = SqliteEngagementStore(bench.root / "state.sqlite3").profiles(
        [f"user-{n:07d}" for n in range(1000)]
    )
    assert sum(profile.by_kind["purchase"] for profile in profiles.values()) == 200


class FailingOnce:
    """The real SQLite state, made unavailable on one look-up (as DynamoDB is when it keeps throttling)."""

    def __init__(self, state: SqliteCurrentsState, fail_on_call: int) -> None:
        self.state = state
        self.calls = 0
        self.fail_on_call = fail_on_call

    def already_routed(self, keys, segment=None):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise StateStoreUnavailableError("dedupe table kept throttling")
        return self.state.already_routed(keys, segment)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.state, name)


def test_a_file_that_fails_half_way_resumes_without_routing_its_first_half_again(
    bench: Bench, sample_by_type
):
    bench.config_text = FILES_AND_ENGAGEMENT + "chunk_records: 100\n"
    sample = sample_by_type["users.messages.pushnotification.Open"]
    events = list(synthetic_events(sample.record, 1000))
    path = land(bench.root / "inbound", sample.event_type, avro_bytes(sample.schema, events), name="big.avro")

    # When the state fails on the 5th chunk's look-up
    failing = FailingOnce(SqliteCurrentsState(bench.root / "state.sqlite3"), fail_on_call=5)
    first = CurrentsRouter(bench.services(state=failing))
    with pytest.raises(StateStoreUnavailableError):
        route_local_file(first, path)
    # Then the four chunks before it are committed
    assert first.report.routed["files"] == 400 and first.report.routed["engagement"] == 400

    # When it is delivered again
    second = bench.route(path).report

    # Then it resumed at the failing chunk: every event routed once, in two output files
    assert second.files_resumed == 1 and second.records_read == 600
    assert second.routed["files"] == 600 and second.duplicates_skipped == 0
    assert sorted(line["id"] for line in bench.lines()) == sorted(event["id"] for event in events)
    names = sorted(p.name for p in (bench.root / "outbound" / "amperity").rglob("*.gz"))
    assert names == ["big.400.jsonl.gz", "big.jsonl.gz"]
    profiles = SqliteEngagementStore(bench.root / "state.sqlite3").profiles(
        [f"user-{n:07d}" for n in range(1000)]
    )
    assert sum(profile.total for profile in profiles.values()) == 1000


def test_near_the_deadline_progress_is_committed_and_the_next_delivery_finishes(bench: Bench, sample_by_type):
    bench.config_text = FILES_AND_ENGAGEMENT + "chunk_records: 100\n"
    sample = sample_by_type["users.behaviors.Purchase"]
    events = list(synthetic_events(sample.record, 500))
    path = land(bench.root / "inbound", sample.event_type, avro_bytes(sample.schema, events), name="p.avro")
    remaining = iter([100.0, 100.0, 5.0])
    router = CurrentsRouter(bench.services(time_left_s=lambda: next(remaining), deadline_margin_s=10.0))
    with pytest.raises(DeadlineReachedError, match="stopped at record 300"):
        route_local_file_raising(router, path)
    finished = bench.route(path).report
    assert finished.files_resumed == 1 and finished.routed["files"] == 200
    assert len(bench.lines()) == 500


def route_local_file_raising(router: CurrentsRouter, path: Path) -> None:
    stat = path.stat()
    with path.open("rb") as stream:
        router.route(
            stream,
            parse_currents_key(str(path)),
            location=str(path),
            version=f"{stat.st_size}-{stat.st_mtime_ns}",
        )


def test_files_that_cannot_be_routed_are_reported_with_their_reason(bench: Bench):
    inbound = bench.root / "inbound"
    land(
        inbound,
        "users.messages.email.Click",
        (CURRENTS_FIXTURES / "users.messages.email.Open.avro").read_bytes(),
    )
    land(inbound, "users.behaviors.Purchase", b"not avro at all", name="broken.avro")
    stray = inbound / "stray.avro"
    shutil.copy(CURRENTS_FIXTURES / "users.behaviors.Purchase.avro", stray)

    report = bench.route(inbound).report.to_dict()

    reasons = sorted(item["reason"].split(": ", 1)[-1][:40] for item in report["unreadable"])
    assert report["unreadable_files"] == 3 and report["records_read"] == 0
    assert any(
        "the key says event_type=users.messages.email.Click" in item["reason"]
        for item in report["unreadable"]
    )
    assert any("not a readable Avro file" in item["reason"] for item in report["unreadable"])
    assert any("not in Braze's Currents layout" in item["reason"] for item in report["unreadable"])
    assert len(reasons) == 3


class _CutOffAfterFirstMarks:
    """A DynamoDB client whose second BatchWriteItem fails: a commit cut off between its mark writes,
    as when the function dies there (some events marked routed, the file's progress not saved)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.batch_writes = 0

    def batch_write_item(self, **request: Any) -> Any:
        self.batch_writes += 1
        if self.batch_writes == 2:
            raise ConnectionError("connection reset mid-commit")
        return self._client.batch_write_item(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_commit_cut_off_between_its_mark_writes_keeps_every_event_in_the_rewritten_output(
    bench: Bench, sample_by_type, make_table, dynamodb_client
):
    # Given a file of 300 clicks in one segment, and a DynamoDB state whose commit marks the first
    # 25 events routed and then fails (the JSON-lines output is written by then)
    sample = sample_by_type["users.messages.email.Click"]
    events = list(synthetic_events(sample.record, 300))
    path = land(bench.root / "inbound", sample.event_type, avro_bytes(sample.schema, events), name="cut.avro")
    table = make_table(CURRENTS_STATE_TABLE)
    cut_off = _CutOffAfterFirstMarks(dynamodb_client)
    first = CurrentsRouter(bench.services(state=DynamoDbCurrentsState(table, client=cut_off, concurrency=1)))
    route_local_file(first, path)
    assert [item.reason for item in first.report.unreadable] == ["connection reset mid-commit"]

    # When the message comes back and the file is routed from its last saved progress (none)
    second = CurrentsRouter(bench.services(state=DynamoDbCurrentsState(table, client=dynamodb_client)))
    route_local_file(second, path)

    # Then the segment's output, written again under the same name, still holds every event once
    assert sorted(line["id"] for line in bench.lines()) == sorted(event["id"] for event in events)
    names = sorted(p.name for p in (bench.root / "outbound" / "amperity").rglob("*.gz"))
    assert names == ["cut.jsonl.gz"]
