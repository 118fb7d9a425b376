"""A job after a crash or a redelivery: retry files outlive an invocation that dies replaying them,
a part that already ended is not read again, and a resumed run reports every retry file it wrote."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from cdpbridge.braze import TrackOutcome
from cdpbridge.records import RowPosition
from cdpbridge.sources import SourceSpec, plan_byte_ranges
from cdpbridge.sync.artifacts import LocalArtifactStore, iter_rejects
from cdpbridge.sync.job import JobRequest, PartOutcome, RunPart, run_part
from cdpbridge.sync.objects import ObjectRef
from cdpbridge.sync.retry import RetryEntry, decode_retry_file, encode_retry_file
from tests.unit.sync.job_helpers import ACCEPTED, DOWN, FakeBraze, InvocationDied, Workdir, job_request

MAPPING = """\
version: 1
integration: generic
source: {format: csv}
identifier: {column: id, as: external_id}
fields:
  - {column: tier, attribute: tier, type: string, strategy: set}
  - {column: points, attribute: points, type: integer, strategy: set}
events:
  - {name: Visit, time_column: at}
"""


def write_users(workdir: Workdir, name: str, rows: int, start: int = 0) -> Path:
    """Users u<start>... with a tier, points and one Visit event each."""
    lines = [f"u{n},gold,{n},2024-01-0{1 + n % 9}T10:00:00Z" for n in range(start, start + rows)]
    return workdir.write(name, "id,tier,points,at", lines)


def event_times(objects: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((event["external_id"], event["time"]) for event in objects)


# -------------------------------------------------------------------------- replaying retry files


def test_a_retry_file_outlives_an_invocation_that_dies_while_replaying_it(workdir: Workdir) -> None:
    # Given run A's objects in a retry file, Braze having been down for the whole of run A
    run_part(
        job_request(MAPPING, write_users(workdir, "a.csv", 200), "runA"),
        workdir.services(FakeBraze(lambda n: DOWN)),
    )
    assert workdir.retry_files() == ["retry/generic/runA.p0.i1.000.jsonl"]
    entries = list(decode_retry_file(workdir.artifacts.get(workdir.retry_files()[0]) or b"", "a"))

    # When run B's invocation dies after Braze took the first request of the replay
    def die_on_the_second_call(number: int) -> TrackOutcome:
        if number == 2:
            raise InvocationDied
        return ACCEPTED

    first_attempt = FakeBraze(die_on_the_second_call)
    other = write_users(workdir, "b.csv", 1, start=1000)
    with pytest.raises(InvocationDied):
        run_part(job_request(MAPPING, other, "runB"), workdir.services(first_attempt))

    # Then the retry file is still there, whole
    assert workdir.retry_files() == ["retry/generic/runA.p0.i1.000.jsonl"]
    assert len(first_attempt.objects("events")) > 0

    # And when the message is delivered again, every object arrives and each event exactly once
    second_attempt = FakeBraze()
    outcome = run_part(job_request(MAPPING, other, "runB"), workdir.services(second_attempt))
    assert outcome.report is not None and outcome.report["status"] == "completed"
    events = first_attempt.objects("events") + second_attempt.objects("events")
    expected = [
        (entry.ref.body["external_id"], entry.ref.body["time"])
        for entry in entries
        if entry.ref.kind == "events"
    ]
    assert len(expected) == 200
    assert event_times(events) == sorted([*expected, ("u1000", "2024-01-02T10:00:00Z")])
    users_set = {item["external_id"] for item in second_attempt.objects("attributes")}
    assert {f"u{n}" for n in range(200)} <= users_set
    assert workdir.retry_files() == []


def test_a_retry_file_is_deleted_only_after_what_failed_again_is_in_a_new_one(workdir: Workdir) -> None:
    # Given a retry file left by an attempt of run B that died after replaying (it bears run B's name)
    left_behind = "retry/generic/runB.p0.i1.000.jsonl"
    entries = [
        RetryEntry(
            "old.csv@v0",
            ObjectRef(
                RowPosition("old.csv", n),
                f"external_id:o{n}",
                "attributes",
                {"external_id": f"o{n}", "tier": "x"},
            ),
            "unavailable",
        )
        for n in range(1, 4)
    ]
    workdir.artifacts.put(left_behind, encode_retry_file(entries), "application/x-ndjson")

    # When run B runs again while Braze is still down
    outcome = run_part(
        job_request(MAPPING, write_users(workdir, "b.csv", 2), "runB"),
        workdir.services(FakeBraze(lambda n: DOWN)),
    )

    # Then every object is still in a retry file the report lists, and nothing the report lists is gone
    assert outcome.report is not None
    listed = outcome.report["retry_files"]
    assert sorted(listed) == workdir.retry_files()
    assert left_behind not in listed
    kept = [entry for key in listed for entry in decode_retry_file(workdir.artifacts.get(key) or b"", key)]
    assert sorted(entry.ref.user_key for entry in kept if entry.scope == "old.csv@v0") == [
        "external_id:o1",
        "external_id:o2",
        "external_id:o3",
    ]


def test_a_damaged_line_in_a_retry_file_is_a_reject_and_the_other_lines_are_sent(workdir: Workdir) -> None:
    # Given a retry file whose second line is damaged
    good = [
        RetryEntry(
            "old.csv@v0",
            ObjectRef(
                RowPosition("old.csv", n),
                f"external_id:o{n}",
                "attributes",
                {"external_id": f"o{n}", "tier": "x"},
            ),
            "unavailable",
        )
        for n in (1, 3)
    ]
    lines = encode_retry_file(good).splitlines(keepends=True)
    damaged = lines[0] + b'{"scope": "old.csv@v0", "kind": "attributes", "secret@example.com"\n' + lines[1]
    workdir.artifacts.put("retry/generic/runA.p0.i1.000.jsonl", damaged, "application/x-ndjson")

    # When the next run replays it
    braze = FakeBraze()
    outcome = run_part(
        job_request(MAPPING, write_users(workdir, "b.csv", 1), "runB"), workdir.services(braze)
    )

    # Then the good lines reached Braze, the damaged one is a reject naming the file and line (and
    # not its content), and the file is gone
    assert {item["external_id"] for item in braze.objects("attributes")} == {"o1", "o3", "u0"}
    assert outcome.report is not None and outcome.report["rejects_file"]
    rejects = list(iter_rejects(Path(outcome.report["rejects_file"]).read_bytes()))
    assert [(r["source"], r["row"], r["reason"]) for r in rejects] == [
        ("retry/generic/runA.p0.i1.000.jsonl", "2", "unreadable retry entry")
    ]
    assert "secret" not in rejects[0]["detail"]
    assert workdir.retry_files() == []


# ---------------------------------------------------------------------------- resumed invocations


def test_a_resumed_run_reports_the_retry_files_of_every_invocation(workdir: Workdir) -> None:
    # Given Braze down, and a run that stops after its first chunk and resumes in a new invocation
    path = write_users(workdir, "a.csv", 300)
    request = job_request(MAPPING, path, "run1")
    paused = run_part(
        request, workdir.services(FakeBraze(lambda n: DOWN), chunk_rows=100), should_stop=lambda: True
    )
    assert not paused.finished

    # When the run resumes to the end
    outcome = run_part(request, workdir.services(FakeBraze(lambda n: DOWN), chunk_rows=100))

    # Then the report lists the retry files of both invocations, which hold every object
    assert outcome.report is not None
    listed = outcome.report["retry_files"]
    assert sorted(listed) == workdir.retry_files()
    assert len(listed) == 2
    held = [entry for key in listed for entry in decode_retry_file(workdir.artifacts.get(key) or b"", key)]
    assert len(held) == outcome.report["objects_to_retry_file"] == 600  # 300 attribute objects, 300 events


# ------------------------------------------------------------------------------- redelivered parts


def two_parts(path: Path, run_id: str) -> list[JobRequest]:
    spec = SourceSpec(format="csv")
    ranges = plan_byte_ranges(str(path), spec, target_bytes=path.stat().st_size // 2)
    assert len(ranges) == 2
    request = job_request(MAPPING, path, run_id)
    return [
        replace(request, part=RunPart(str(index), 2, byte_range)) for index, byte_range in enumerate(ranges)
    ]


def write_with_bad_rows(workdir: Workdir) -> Path:
    path = write_users(workdir, "a.csv", 400)
    text = (
        path.read_text().replace("u10,gold,10,", "u10,gold,ten,").replace("u390,gold,390,", "u390,gold,3.5,")
    )
    path.write_text(text)
    return path


REPORTED = (
    "rows_read",
    "rows_rejected",
    "users_written",
    "attributes_sent",
    "attributes_unchanged",
    "events_sent",
)


def test_a_redelivered_part_that_already_ended_reads_nothing_and_the_report_stands(workdir: Workdir) -> None:
    # Given a run in two parts that has ended, with a rejected row in each part
    parts = two_parts(write_with_bad_rows(workdir), "run1")
    braze = FakeBraze()
    zero = run_part(parts[0], workdir.services(braze))
    completed = run_part(parts[1], workdir.services(braze))
    assert completed.report is not None
    first = {name: completed.report[name] for name in REPORTED}
    assert first["rows_read"] == 400 and first["rows_rejected"] == 2 and first["events_sent"] == 398
    calls = braze.calls

    # When SQS delivers both part messages again
    again_1 = run_part(parts[1], workdir.services(braze))
    again_0 = run_part(parts[0], workdir.services(braze))

    # Then nothing is read or sent, the completing part gives the same report, the other none
    assert braze.calls == calls
    assert again_1.report is not None
    assert {name: again_1.report[name] for name in REPORTED} == first
    assert again_1.counters.rows_read == 400
    assert again_0.report is None
    assert again_0.counters.to_dict() == zero.counters.to_dict()
    stored = orjson.loads(Path(again_1.report["report_file"]).read_bytes())
    assert {name: stored[name] for name in REPORTED} == first
    rejects = list(iter_rejects(Path(again_1.report["rejects_file"]).read_bytes()))
    assert sorted(int(r["row"]) for r in rejects) == [11, 391]


class ReportWriteDies:
    """An artifact store whose first write of a run report dies, as an invocation killed right after
    the last part was counted done would."""

    def __init__(self, store: LocalArtifactStore) -> None:
        self.store = store
        self.died = False

    def put(self, key: str, data: bytes, content_type: str) -> str:
        if key.endswith(".json") and not self.died:
            self.died = True
            raise InvocationDied
        return self.store.put(key, data, content_type)

    def get(self, key: str) -> bytes | None:
        return self.store.get(key)

    def list(self, prefix: str) -> list[str]:
        return self.store.list(prefix)

    def delete(self, key: str) -> None:
        self.store.delete(key)


def test_a_completing_part_that_died_before_the_report_writes_it_when_delivered_again(
    workdir: Workdir,
) -> None:
    # Given a run in two parts whose completing invocation died before writing the report
    parts = two_parts(write_with_bad_rows(workdir), "run1")
    braze = FakeBraze()
    zero: PartOutcome = run_part(parts[0], workdir.services(braze))
    assert zero.report is None
    with pytest.raises(InvocationDied):
        run_part(parts[1], workdir.services(braze, artifacts=ReportWriteDies(workdir.artifacts)))
    calls = braze.calls

    # When its message is delivered again
    outcome = run_part(parts[1], workdir.services(braze))

    # Then the report is written from what the parts did, without reading or sending anything again
    assert braze.calls == calls
    assert outcome.report is not None
    assert outcome.report["rows_read"] == 400
    assert outcome.report["rows_rejected"] == 2
    assert outcome.report["users_written"] == 398
    assert outcome.report["attributes_sent"] == 2 * 398
    assert outcome.report["attributes_unchanged"] == 0
    assert outcome.report["events_sent"] == 398
    rejects = list(iter_rejects(Path(outcome.report["rejects_file"]).read_bytes()))
    assert sorted(int(r["row"]) for r in rejects) == [11, 391]
