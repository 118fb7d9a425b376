"""Retry order across runs, invocations and parts: once an object of a user waits in a retry file,
the user's later rows follow it there ("held"), so the next run delivers them in file order and an
older value never lands in Braze after a newer one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from cdpbridge.braze import TrackCap, TrackOutcome, TrackRequest
from cdpbridge.records import RowPosition
from cdpbridge.sources import SourceSpec, plan_byte_ranges
from cdpbridge.state import value_digest
from cdpbridge.sync.engine import HELD_BEHIND_RETRY
from cdpbridge.sync.job import JobRequest, PartOutcome, RunPart, retry_file_order, run_part
from cdpbridge.sync.objects import ObjectRef
from cdpbridge.sync.retry import RetryEntry, decode_retry_file, encode_retry_file
from tests.unit.sync.job_helpers import ACCEPTED, DOWN, FakeBraze, InvocationDied, Workdir, job_request

MAPPING = """\
version: 1
integration: generic
source: {format: csv}
identifier: {column: id, as: external_id}
fields:
  - {column: city, attribute: store_city, type: string, strategy: set}
"""
ATTRIBUTE = "store_city"

# Run ids begin with their start time, as the runtime and the CLI make them.
RUN_A = "20260101T000000Z-aaaaaaaaaaaa"
RUN_B = "20260102T000000Z-bbbbbbbbbbbb"
RUN_C = "20260103T000000Z-cccccccccccc"

Item = dict[str, Any]


class Braze(FakeBraze):
    """users.track that is down (retries exhausted) for any request carrying an object ``down``
    picks, and dies with the invocation for any request carrying an object ``dies`` picks; it takes
    every other request. Keeps the bodies it took, in the order it took them."""

    def __init__(
        self,
        down: Callable[[Item], bool] = lambda item: False,
        dies: Callable[[Item], bool] = lambda item: False,
    ) -> None:
        super().__init__()
        self.down = down
        self.dies = dies
        self.refused: list[Item] = []

    def track(self, request: TrackRequest, cap: object = None) -> TrackOutcome:
        body = orjson.loads(request.to_body())
        items = [item for kind in ("attributes", "events", "purchases") for item in body.get(kind, [])]
        with self._lock:
            self.calls += 1
            if any(self.dies(item) for item in items):
                raise InvocationDied
            if any(self.down(item) for item in items):
                self.refused.extend(items)
                return DOWN
            self.taken.append(body)
            return ACCEPTED

    def cities(self, user: str) -> list[str]:
        """The cities Braze took for ``user``, in the order it took them."""
        return [
            item[ATTRIBUTE]
            for item in self.objects("attributes")
            if item["external_id"] == user and ATTRIBUTE in item
        ]


def is_(user: str, city: str | None = None) -> Callable[[Item], bool]:
    return lambda item: item.get("external_id") == user and (city is None or item.get(ATTRIBUTE) == city)


def write_cities(workdir: Workdir, name: str, rows: list[tuple[str, str]]) -> Path:
    return workdir.write(name, "id,city", [f"{user},{city}" for user, city in rows])


def two_parts(path: Path, run_id: str) -> list[JobRequest]:
    ranges = plan_byte_ranges(str(path), SourceSpec(format="csv"), target_bytes=path.stat().st_size // 2)
    assert len(ranges) == 2
    return [
        job_request(MAPPING, path, run_id, RunPart(str(index), 2, byte_range))
        for index, byte_range in enumerate(ranges)
    ]


def retried(workdir: Workdir, keys: list[str] | None = None) -> list[RetryEntry]:
    """The entries of the retry files (all of them unless ``keys``), in the order a replay reads them."""
    listed = workdir.retry_files() if keys is None else keys
    return [
        entry
        for key in sorted(listed, key=retry_file_order)
        for entry in decode_retry_file(workdir.artifacts.get(key) or b"", key)
    ]


def cities_retried(workdir: Workdir, user: str, keys: list[str] | None = None) -> list[str]:
    return [
        entry.ref.body[ATTRIBUTE] for entry in retried(workdir, keys) if entry.ref.body["external_id"] == user
    ]


def retry_entry(source: str, row: int, user: str, city: str) -> RetryEntry:
    """An attribute object as a run of ``source`` built it and left it in a retry file."""
    ref = ObjectRef(
        RowPosition(source, row),
        f"external_id:{user}",
        "attributes",
        {"external_id": user, ATTRIBUTE: city},
        {ATTRIBUTE: value_digest(city)},
        None,
        1,
    )
    return RetryEntry(f"{source}@v0", ref, "unavailable")


def leave_retry_file(workdir: Workdir, key: str, entries: list[RetryEntry]) -> None:
    workdir.artifacts.put(key, encode_retry_file(entries), "application/x-ndjson")


def next_run_with_braze_up(workdir: Workdir, run_id: str) -> Braze:
    """A later run of an unrelated file, Braze up: it replays every retry file left."""
    braze = Braze()
    outcome = run_part(
        job_request(MAPPING, write_cities(workdir, f"{run_id}.csv", [("u9", "Lima")]), run_id),
        workdir.services(braze),
    )
    assert outcome.report is not None and outcome.report["status"] == "completed"
    assert workdir.retry_files() == []
    return braze


# ----------------------------------------------------------------------------- retry file order


def test_retry_files_sort_by_run_then_part_invocation_and_number_as_numbers() -> None:
    # Given retry files whose names sort differently as text and as numbers
    keys = [
        f"retry/generic/{RUN_B}.p0.i1.000.jsonl",
        f"retry/generic/{RUN_A}.p10.i1.000.jsonl",
        f"retry/generic/{RUN_A}.p2.i10.000.jsonl",
        f"retry/generic/{RUN_A}.p2.i9.1000.jsonl",
        f"retry/generic/{RUN_A}.p2.i9.999.jsonl",
        f"retry/generic/{RUN_A}.p2.i9.000.jsonl",
    ]
    # When they are sorted for a replay
    ordered = sorted(keys, key=retry_file_order)
    # Then the older run comes first, and within it part 2 before part 10, invocation 9 before
    # invocation 10, and file 999 before file 1000
    assert ordered == [
        f"retry/generic/{RUN_A}.p2.i9.000.jsonl",
        f"retry/generic/{RUN_A}.p2.i9.999.jsonl",
        f"retry/generic/{RUN_A}.p2.i9.1000.jsonl",
        f"retry/generic/{RUN_A}.p2.i10.000.jsonl",
        f"retry/generic/{RUN_A}.p10.i1.000.jsonl",
        f"retry/generic/{RUN_B}.p0.i1.000.jsonl",
    ]


@pytest.mark.parametrize(
    "odd",
    [
        "retry/generic/notes.txt",
        "retry/generic/run.pX.i1.000.jsonl",
        "retry/generic/run.p1.iZ.000.jsonl",
        "retry/generic/run.p1.i1.abc.jsonl",
        "retry/generic/a.b.c.d.e.f",
        "retry/generic/",
        "",
    ],
)
def test_a_key_outside_the_naming_pattern_still_sorts(odd: str) -> None:
    # Given a key that is not named as the runs name retry files, among keys that are
    keys = [f"retry/generic/{RUN_A}.p0.i10.000.jsonl", odd, f"retry/generic/{RUN_A}.p0.i9.000.jsonl"]
    # When they are sorted, Then nothing raises and the well-named ones keep their numeric order
    ordered = sorted(keys, key=retry_file_order)
    assert sorted(ordered) == sorted(keys)
    named = [key for key in ordered if key != odd]
    assert named == [f"retry/generic/{RUN_A}.p0.i9.000.jsonl", f"retry/generic/{RUN_A}.p0.i10.000.jsonl"]


def test_a_replay_reads_invocation_9_before_invocation_10(workdir: Workdir) -> None:
    # Given a run whose 9th invocation left u1 = Paris and whose 10th left u1 = Nice in retry files
    leave_retry_file(
        workdir, f"retry/generic/{RUN_A}.p0.i9.000.jsonl", [retry_entry("a.csv", 10, "u1", "Paris")]
    )
    leave_retry_file(
        workdir, f"retry/generic/{RUN_A}.p0.i10.000.jsonl", [retry_entry("a.csv", 20, "u1", "Nice")]
    )
    # When the next run replays them, Braze up
    braze = next_run_with_braze_up(workdir, RUN_B)
    # Then Braze took them in the order they were written and holds the later value
    assert braze.cities("u1") == ["Paris", "Nice"]


# ------------------------------------------------------------------------- held behind a replay


def test_a_user_whose_replay_fails_again_is_held_and_the_next_run_ends_on_the_newest_value(
    workdir: Workdir,
) -> None:
    # Given run A could not deliver u1 = Paris: it waits in a retry file
    run_a = run_part(
        job_request(MAPPING, write_cities(workdir, "a.csv", [("u1", "Paris")]), RUN_A),
        workdir.services(Braze(down=is_("u1"))),
    )
    assert run_a.report is not None
    assert cities_retried(workdir, "u1") == ["Paris"]

    # When run B, with a newer row u1 = Nice among other users, runs while Braze is still down for
    # u1 = Paris (and would take u1 = Nice)
    braze_b = Braze(down=is_("u1", "Paris"))
    rows = [("u2", "Rome"), ("u1", "Nice"), ("u3", "Oslo")]
    run_b = run_part(
        job_request(MAPPING, write_cities(workdir, "b.csv", rows), RUN_B), workdir.services(braze_b)
    )

    # Then the replay of Paris failed again, and Nice was not sent ahead of it
    assert [item[ATTRIBUTE] for item in braze_b.refused if item["external_id"] == "u1"] == ["Paris"]
    assert braze_b.cities("u1") == []
    # And the retry files of run B hold Paris then Nice, in that order, Nice as held behind Paris
    assert run_b.report is not None and run_b.report["status"] == "completed"
    listed = run_b.report["retry_files"]
    assert sorted(listed) == workdir.retry_files()
    assert all(key.startswith(f"retry/generic/{RUN_B}.") for key in listed)
    assert cities_retried(workdir, "u1") == ["Paris", "Nice"]
    assert [entry.reason for entry in retried(workdir) if entry.ref.body[ATTRIBUTE] == "Nice"] == [
        HELD_BEHIND_RETRY
    ]
    assert run_b.report["objects_to_retry_file"] == 2
    # And the other users of the file went through
    assert braze_b.cities("u2") == ["Rome"]
    assert braze_b.cities("u3") == ["Oslo"]

    # And when run C runs with Braze up, the replay delivers Paris then Nice: Braze ends on Nice
    braze_c = next_run_with_braze_up(workdir, RUN_C)
    assert braze_c.cities("u1") == ["Paris", "Nice"]


def test_a_user_held_by_an_earlier_invocation_stays_held_in_the_continuation(workdir: Workdir) -> None:
    # Given a run whose first invocation sent u1 = Paris into a retry file (Braze down for it) and
    # stopped at a checkpoint after that row
    path = write_cities(workdir, "a.csv", [("u1", "Paris"), ("u2", "Rome"), ("u1", "Nice"), ("u3", "Oslo")])
    request = job_request(MAPPING, path, RUN_A)
    first = Braze(down=is_("u1", "Paris"))
    paused = run_part(request, workdir.services(first, chunk_rows=1), should_stop=lambda: True)
    assert not paused.finished
    assert paused.counters.rows_read == 1
    assert cities_retried(workdir, "u1") == ["Paris"]

    # When the next invocation resumes the run, Braze up
    second = Braze()
    outcome = run_part(request, workdir.services(second, chunk_rows=1))

    # Then u1's later row was not sent: it followed Paris into a retry file of the second invocation
    assert second.cities("u1") == []
    assert outcome.report is not None
    listed = outcome.report["retry_files"]
    assert sorted(listed) == workdir.retry_files()
    first_file, second_file = sorted(listed, key=retry_file_order)
    assert first_file.startswith(f"retry/generic/{RUN_A}.p0.i1.")
    assert second_file.startswith(f"retry/generic/{RUN_A}.p0.i2.")
    assert cities_retried(workdir, "u1") == ["Paris", "Nice"]
    # And the other users went through
    assert second.cities("u2") == ["Rome"]
    assert second.cities("u3") == ["Oslo"]
    # And the next run ends u1 on Nice
    assert next_run_with_braze_up(workdir, RUN_B).cities("u1") == ["Paris", "Nice"]


# ----------------------------------------------------------------------------------- on_replayed


def test_on_replayed_is_called_once_after_the_replay_with_what_it_wrote(workdir: Workdir) -> None:
    # Given run A left u1 = Paris and u4 = Bern in a retry file, and run B's file in two parts, the
    # first of which has a newer row for u1
    leave_retry_file(
        workdir,
        f"retry/generic/{RUN_A}.p0.i1.000.jsonl",
        [retry_entry("a.csv", 1, "u1", "Paris"), retry_entry("a.csv", 2, "u4", "Bern")],
    )
    rows = [("u1", "Nice"), ("u2", "Rome"), *[(f"u{n}", "Oslo") for n in range(10, 20)]]
    parts = two_parts(write_cities(workdir, "b.csv", rows), RUN_B)

    # When part 0's first invocation replays (Braze still down for u1 = Paris) and then dies on its
    # first request of the file
    first = Braze(down=is_("u1", "Paris"), dies=is_("u2"))
    calls: list[tuple[list[str], list[str], list[str]]] = []

    def on_replayed(keys: list[str]) -> None:
        taken = [item["external_id"] for item in first.objects("attributes")]
        calls.append((keys, workdir.retry_files(), taken))

    with pytest.raises(InvocationDied):
        # One object a request: u4's object is not refused along with u1's.
        run_part(parts[0], workdir.services(first, track_cap=TrackCap(limit=1)), on_replayed=on_replayed)

    # Then on_replayed was called once, with the retry file the replay wrote, after the replay had
    # drained (run A's file replayed and deleted, u4 delivered) and before any row of the file was sent
    replay_file = f"retry/generic/{RUN_B}.p0.i1.000.jsonl"
    assert calls == [([replay_file], [replay_file], ["u4"])]
    assert cities_retried(workdir, "u1", [replay_file]) == ["Paris"]

    # And when the message is delivered again, Braze still down for u1 = Paris
    second = Braze(down=is_("u1", "Paris"))
    outcome: PartOutcome = run_part(parts[0], workdir.services(second), on_replayed=on_replayed)

    # Then neither the replay nor on_replayed happens again
    assert len(calls) == 1
    assert second.refused == []
    assert outcome.finished
    # And u1 is still held behind the replay's file: Nice was sent in neither attempt
    assert first.cities("u1") == second.cities("u1") == []
    assert second.cities("u2") == ["Rome"]
    assert replay_file in workdir.retry_files()
    assert cities_retried(workdir, "u1")[0] == "Paris"
    assert set(cities_retried(workdir, "u1")[1:]) == {"Nice"}


def test_on_replayed_hears_of_no_files_when_the_replay_delivered_everything(workdir: Workdir) -> None:
    # Given a retry file of run A and run B's file with a newer row for its user
    leave_retry_file(
        workdir, f"retry/generic/{RUN_A}.p0.i1.000.jsonl", [retry_entry("a.csv", 1, "u1", "Paris")]
    )
    calls: list[list[str]] = []
    # When run B runs with a callback, Braze up
    braze = Braze()
    outcome = run_part(
        job_request(MAPPING, write_cities(workdir, "b.csv", [("u1", "Nice")]), RUN_B),
        workdir.services(braze),
        on_replayed=calls.append,
    )
    # Then the callback hears that the replay wrote nothing, and the run ends on the newer value
    assert calls == [[]]
    assert outcome.report is not None and outcome.report["status"] == "completed"
    assert braze.cities("u1") == ["Paris", "Nice"]


# ------------------------------------------------------------------------------------- held_from


def test_a_part_holds_the_users_of_the_retry_files_it_is_handed(workdir: Workdir) -> None:
    # Given part 0 of run B replayed and failed again for u1 = Paris: its retry file holds it
    replay_file = f"retry/generic/{RUN_B}.p0.i1.000.jsonl"
    leave_retry_file(workdir, replay_file, [retry_entry("a.csv", 1, "u1", "Paris")])
    # And part 1 of run B has a newer row for u1
    rows = [*[(f"u{n}", "Oslo") for n in range(10, 20)], ("u3", "Rome"), ("u1", "Nice")]
    parts = two_parts(write_cities(workdir, "b.csv", rows), RUN_B)

    # When part 1 runs, handed that retry file, Braze up
    braze = Braze()
    part = replace(parts[1].part, held_from=(replay_file,))
    outcome = run_part(replace(parts[1], part=part), workdir.services(braze))

    # Then u1's newer row was not sent: it waits behind Paris, in part 1's retry file
    assert outcome.finished
    assert braze.cities("u1") == []
    assert braze.cities("u3") == ["Rome"]
    part_file = f"retry/generic/{RUN_B}.p1.i1.000.jsonl"
    assert workdir.retry_files() == [replay_file, part_file]
    assert [(entry.ref.body, entry.reason) for entry in retried(workdir, [part_file])] == [
        ({"external_id": "u1", ATTRIBUTE: "Nice"}, HELD_BEHIND_RETRY)
    ]
    # And the handed file is left for the next run, which ends u1 on Nice
    assert cities_retried(workdir, "u1") == ["Paris", "Nice"]
    assert next_run_with_braze_up(workdir, RUN_C).cities("u1") == ["Paris", "Nice"]


def test_a_part_handed_no_retry_files_sends_its_rows(workdir: Workdir) -> None:
    # Given the same retry file of part 0, and part 1 with a row for u1, not handed the file
    leave_retry_file(
        workdir, f"retry/generic/{RUN_B}.p0.i1.000.jsonl", [retry_entry("a.csv", 1, "u1", "Paris")]
    )
    rows = [*[(f"u{n}", "Oslo") for n in range(10, 20)], ("u1", "Nice")]
    parts = two_parts(write_cities(workdir, "b.csv", rows), RUN_B)
    # When part 1 runs, Braze up
    braze = Braze()
    run_part(parts[1], workdir.services(braze))
    # Then nothing holds u1 (what held it in the test above is the handed file, nothing else)
    assert braze.cities("u1") == ["Nice"]


def test_a_held_users_row_equal_to_the_stored_value_still_follows_into_the_retry_file(
    workdir: Workdir,
) -> None:
    # Given Braze holds Lyon for u1, acknowledged and in the state
    run_part(
        job_request(
            MAPPING, write_cities(workdir, "z.csv", [("u1", "Lyon")]), "20251231T000000Z-zzzzzzzzzzzz"
        ),
        workdir.services(Braze()),
    )
    # And run A could not deliver u1's move to Paris: it waits in a retry file
    run_part(
        job_request(MAPPING, write_cities(workdir, "a.csv", [("u1", "Paris")]), RUN_A),
        workdir.services(Braze(down=is_("u1"))),
    )
    assert cities_retried(workdir, "u1") == ["Paris"]

    # When run B, whose file moves u1 back to Lyon, runs while Braze is still down for Paris
    run_part(
        job_request(MAPPING, write_cities(workdir, "b.csv", [("u1", "Lyon")]), RUN_B),
        workdir.services(Braze(down=is_("u1", "Paris"))),
    )

    # Then Lyon follows Paris into the retry file: once Paris lands, Braze no longer holds Lyon
    assert cities_retried(workdir, "u1") == ["Paris", "Lyon"]
    # And the next run, Braze up, ends u1 on Lyon, run B's word
    assert next_run_with_braze_up(workdir, RUN_C).cities("u1") == ["Paris", "Lyon"]


# ------------------------------------------------------------------- replay near the deadline


def test_a_replay_near_the_deadline_stops_keeps_the_rest_in_place_and_goes_on_in_the_next_invocation(
    workdir: Workdir,
) -> None:
    # Given two retry files of earlier runs: u1's Paris then u2..u5 in the older one, u1's Nice in
    # the newer one
    older = f"retry/generic/{RUN_A}.p0.i1.000.jsonl"
    newer = f"retry/generic/{RUN_B}.p0.i1.000.jsonl"
    leave_retry_file(
        workdir,
        older,
        [
            retry_entry("a.csv", 1, "u1", "Paris"),
            *[retry_entry("a.csv", n, f"u{n}", "Rome") for n in range(2, 6)],
        ],
    )
    leave_retry_file(workdir, newer, [retry_entry("b.csv", 1, "u1", "Nice")])
    # And a file of run C with a row of u6, split in two parts whose part 1 waits for the replay
    parts = two_parts(write_cities(workdir, "c.csv", [("u6", "Oslo"), ("u7", "Bern"), ("u8", "Kiev")]), RUN_C)
    started: list[list[str]] = []
    # When part 0 runs with the deadline near after three entries of the older file (one check
    # before the file, one before each entry)
    checks = iter([False, False, False, False])
    braze = Braze()
    first = run_part(
        parts[0],
        workdir.services(braze, track_cap=TrackCap(limit=1)),
        should_stop=lambda: next(checks, True),
        on_replayed=started.append,
    )
    # Then it stops without reading a row, the part 1 still waits, and the entries it did not take
    # are back under the older file's name, ahead of the newer file
    assert not first.finished
    assert first.counters.rows_read == 0
    assert started == []
    assert braze.cities("u1") == ["Paris"]
    assert braze.cities("u3") == ["Rome"]
    assert [entry.ref.body["external_id"] for entry in retried(workdir, [older])] == ["u4", "u5"]
    assert workdir.artifacts.get(newer) is not None

    # When the next invocation runs to its end
    second = run_part(parts[0], workdir.services(braze), on_replayed=started.append)
    # Then it finishes the replay in order (u1 ends on Nice, the newer value), starts the waiting
    # part once, then reads its rows
    assert second.finished
    assert braze.cities("u1") == ["Paris", "Nice"]
    assert [user for user in ("u2", "u3", "u4", "u5") if braze.cities(user) != ["Rome"]] == []
    assert started == [[]]
    assert braze.cities("u6") == ["Oslo"]
    assert workdir.retry_files() == []
    assert second.counters.retry_entries_replayed == 6
