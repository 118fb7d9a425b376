"""A user named by several rows of one file: each row is deduped against what Braze holds after the
earlier rows of the run, not against the state stored before the run, whether those rows share its
chunk or not, are still in flight or were refused."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from cdpbridge.braze import BrazeClient, TrackCap, TrackOutcome, TrackRequest
from cdpbridge.braze.track import ObjectError
from cdpbridge.records import RowPosition, SourceRow
from cdpbridge.state import SqliteFieldStateStore, SqliteSendLedger, value_digest
from cdpbridge.sync import engine as engine_module
from cdpbridge.sync.artifacts import LocalArtifactStore, RejectsWriter
from cdpbridge.sync.engine import EngineOptions, RunResult, SyncEngine
from cdpbridge.sync.retry import RetryEntry
from cdpbridge.updates import AttributeWrite, UserUpdate, WriteMode

WORKSPACE = "w"
SCOPE = "file.csv@1"


class FakeBraze:
    """users.track as Braze applies it: objects in order, each attribute set on its profile.

    ``refuse`` names the objects (by external id and body) Braze answers with an object error, or
    with retries exhausted for the whole request (``exhausted``).
    """

    def __init__(self, refuse: Callable[[dict[str, Any]], bool] = lambda body: False) -> None:
        self.refuse = refuse
        self.exhausted = False
        self.profiles: dict[str, dict[str, Any]] = {}
        self.objects: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def track(self, request: TrackRequest, cap: object = None) -> TrackOutcome:
        with self._lock:
            errors: list[ObjectError] = []
            for index, body in enumerate(request.attributes):
                if self.refuse(body):
                    if self.exhausted:
                        return TrackOutcome("retries_exhausted", 503, "unavailable")
                    errors.append(
                        ObjectError("attributes", index, request.refs["attributes"][index], "refused")
                    )
                    continue
                self.objects.append(body)
                profile = self.profiles.setdefault(body["external_id"], {})
                profile.update({name: value for name, value in body.items() if name != "external_id"})
            return TrackOutcome("partial" if errors else "accepted", 201, "success", errors)

    def snapshot(self) -> dict[str, Any]:
        return {}

    def sent(self, external_id: str, attribute: str) -> list[Any]:
        """The values of ``attribute`` Braze took for the user, in order."""
        return [o[attribute] for o in self.objects if o["external_id"] == external_id and attribute in o]


def first_time(
    refused_body: dict[str, Any], refused: list[dict[str, Any]]
) -> Callable[[dict[str, Any]], bool]:
    """Refuses ``refused_body`` the first time only, noting it in ``refused``."""

    def refuse(body: dict[str, Any]) -> bool:
        if body == refused_body and not refused:
            refused.append(body)
            return True
        return False

    return refuse


class Rows:
    def __init__(self, rows: list[tuple[str, dict[str, Any]]]) -> None:
        self.rows = [
            SourceRow(RowPosition("file.csv", number, 0), {"id": user, **values})
            for number, (user, values) in enumerate(rows, start=1)
        ]

    def __iter__(self) -> Iterator[SourceRow]:
        return iter(self.rows)

    def resume_point(self) -> None:
        return None


class Mapper:
    """Every column but ``id`` is an attribute, written with ``mode`` unless ``by_row`` names
    another for the row's number."""

    def __init__(self, mode: WriteMode = WriteMode.SET, by_row: dict[int, WriteMode] | None = None) -> None:
        self.mode = mode
        self.by_row = by_row or {}

    def map_row(self, row: SourceRow) -> UserUpdate:
        user = row.values["id"]
        mode = self.by_row.get(row.position.row, self.mode)
        attributes = {name: AttributeWrite(value, mode) for name, value in row.values.items() if name != "id"}
        return UserUpdate(row.position, f"external_id:{user}", {"external_id": user}, attributes=attributes)


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.state_path = tmp_path / "state.sqlite3"
        self.store = SqliteFieldStateStore(self.state_path)
        self.retry: list[RetryEntry] = []

    def stored(self, user: str, **values: Any) -> None:
        """State a previous run committed for the user."""
        self.store.apply(WORKSPACE, {f"external_id:{user}": {n: value_digest(v) for n, v in values.items()}})

    def digests(self, user: str) -> dict[str, bytes]:
        return self.store.get_many(WORKSPACE, [f"external_id:{user}"]).get(f"external_id:{user}", {})

    def engine(self, client: FakeBraze | None, **options: Any) -> SyncEngine:
        return SyncEngine(
            client=cast(BrazeClient | None, client),
            field_state=self.store,
            ledger=SqliteSendLedger(self.state_path),
            options=EngineOptions(workspace=WORKSPACE, dry_run=client is None, **options),
            rejects=RejectsWriter(LocalArtifactStore(self.tmp_path), "rejects"),
            retry_sink=self.retry.extend,
        )

    def run(
        self, client: FakeBraze | None, rows: list[tuple[str, dict[str, Any]]], **options: Any
    ) -> tuple[SyncEngine, RunResult]:
        engine = self.engine(client, **options)
        result = engine.run(Rows(rows), Mapper(), scope=SCOPE)
        return engine, result


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


@pytest.mark.parametrize("chunk_rows", [1500, 2, 1], ids=["same chunk", "across chunks", "row by row"])
def test_a_value_changed_and_changed_back_ends_as_the_files_last_word(setup: Setup, chunk_rows: int) -> None:
    # Given Braze holds Paris for u1, as the stored state says
    setup.stored("u1", city="Paris")
    braze = FakeBraze()
    braze.profiles["u1"] = {"city": "Paris"}
    # When a file moves u1 to Lyon, then back to Paris (another user between them)
    _, result = setup.run(
        braze,
        [("u1", {"city": "Lyon"}), ("u2", {"city": "Rome"}), ("u1", {"city": "Paris"})],
        chunk_rows=chunk_rows,
    )
    # Then both writes are sent in file order, and Braze and the state end with Paris
    assert result.finished
    assert braze.sent("u1", "city") == ["Lyon", "Paris"]
    assert braze.profiles["u1"] == {"city": "Paris"}
    assert setup.digests("u1") == {"city": value_digest("Paris")}
    assert result.counters.attributes_sent == 3
    assert result.counters.attributes_unchanged == 0


@pytest.mark.parametrize("chunk_rows", [1500, 2, 1], ids=["same chunk", "across chunks", "row by row"])
def test_a_value_repeated_by_later_rows_is_sent_once(setup: Setup, chunk_rows: int) -> None:
    # Given Braze holds Paris for u1
    setup.stored("u1", city="Paris")
    braze = FakeBraze()
    # When a file sets Lyon for u1 three times, the stored Paris again once, then Lyon again
    rows = [
        ("u1", {"city": "Lyon", "tier": "gold"}),
        ("u2", {"city": "Rome"}),
        ("u1", {"city": "Lyon", "tier": "gold"}),
        ("u1", {"city": "Lyon", "tier": "silver"}),
        ("u1", {"city": "Paris"}),
        ("u1", {"city": "Lyon"}),
    ]
    _, result = setup.run(braze, rows, chunk_rows=chunk_rows)
    # Then each value goes out only when it changes what Braze will hold
    assert braze.sent("u1", "city") == ["Lyon", "Paris", "Lyon"]
    assert braze.sent("u1", "tier") == ["gold", "silver"]
    assert result.counters.attributes_unchanged == 3
    assert result.counters.data_points_saved == 3
    assert setup.digests("u1") == {"city": value_digest("Lyon"), "tier": value_digest("silver")}


def test_a_write_braze_rejected_leaves_the_value_unknown_so_a_later_row_resends_it(setup: Setup) -> None:
    # Given Braze holds Paris for u1, and refuses u1's first move back to Paris
    setup.stored("u1", city="Paris")
    refused: list[dict[str, Any]] = []
    braze = FakeBraze(first_time({"external_id": "u1", "city": "Paris"}, refused))
    braze.profiles["u1"] = {"city": "Paris"}
    # And one object a request, one request at a time: the refusal is known before the last row
    # is planned (the rows of u2 and u3 make the engine wait for the requests before theirs)
    rows = [
        ("u1", {"city": "Lyon"}),
        ("u1", {"city": "Paris"}),
        ("u2", {"city": "Rome"}),
        ("u3", {"city": "Oslo"}),
        ("u1", {"city": "Paris"}),
    ]
    # When the file runs
    _, result = setup.run(braze, rows, chunk_rows=1, in_flight=1, track_cap=TrackCap(limit=1))
    # Then the last row is sent although an earlier row planned the same value, and the file's
    # last word holds
    assert refused
    assert braze.sent("u1", "city") == ["Lyon", "Paris"]
    assert braze.profiles["u1"] == {"city": "Paris"}
    assert setup.digests("u1") == {"city": value_digest("Paris")}
    assert result.counters.objects_rejected_by_braze == 1


def test_after_a_write_goes_to_the_retry_file_the_users_later_rows_follow_it_there(setup: Setup) -> None:
    # Given Braze holds Paris for u1, and u1's move back to Paris exhausts its retries
    setup.stored("u1", city="Paris")
    exhausted: list[dict[str, Any]] = []
    braze = FakeBraze(first_time({"external_id": "u1", "city": "Paris"}, exhausted))
    braze.exhausted = True
    braze.profiles["u1"] = {"city": "Paris"}
    rows = [
        ("u1", {"city": "Lyon"}),
        ("u1", {"city": "Paris"}),
        ("u2", {"city": "Rome"}),
        ("u3", {"city": "Oslo"}),
        ("u1", {"city": "Nice"}),
    ]
    # When the file runs, one object a request, one request at a time
    _, result = setup.run(braze, rows, chunk_rows=1, in_flight=1, track_cap=TrackCap(limit=1))
    # Then u1's last row is not sent ahead of the undelivered one: both wait in the retry file, in
    # file order, so replaying it leaves Nice, the file's last word, and never Paris after Nice
    assert exhausted
    assert braze.sent("u1", "city") == ["Lyon"]
    assert [(entry.ref.position.row, entry.ref.body) for entry in setup.retry] == [
        (2, {"external_id": "u1", "city": "Paris"}),
        (5, {"external_id": "u1", "city": "Nice"}),
    ]
    assert result.counters.objects_to_retry_file == 2
    # And the other users go through
    assert braze.sent("u2", "city") == ["Rome"]
    assert braze.sent("u3", "city") == ["Oslo"]
    # And the state holds only what Braze acknowledged, and not even that for city: Braze may have
    # taken Paris without its answer coming back, so no value of city is known any more
    assert setup.digests("u1") == {}
    assert setup.digests("u2") == {"city": value_digest("Rome")}


def test_an_add_leaves_the_value_unknown_so_a_later_set_is_sent(setup: Setup) -> None:
    # Given Braze holds ["a"] for tags
    setup.stored("u1", tags=["a"])
    braze = FakeBraze()
    engine = setup.engine(braze)
    rows = Rows([("u1", {"tags": ["b"]}), ("u1", {"tags": ["a"]})])
    # When a row adds "b", then a later one sets exactly what was stored
    engine.run(rows, Mapper(by_row={1: WriteMode.ADD}), scope=SCOPE)
    # Then the set is sent: after the add, what Braze holds is not the stored value
    assert braze.objects == [
        {"external_id": "u1", "tags": {"add": ["b"]}},
        {"external_id": "u1", "tags": ["a"]},
    ]


@pytest.mark.parametrize("chunk_rows", [1500, 1], ids=["same chunk", "across chunks"])
def test_a_later_set_if_empty_sees_the_earlier_one_of_the_run(setup: Setup, chunk_rows: int) -> None:
    # Given a dry run (Braze is not asked: an unknown set_if_empty is planned as a write)
    engine = setup.engine(None, chunk_rows=chunk_rows)
    rows = [("u1", {"first_seen": "Mon"}), ("u1", {"first_seen": "Tue"}), ("u2", {"first_seen": "Wed"})]
    # When u1's first_seen is set if empty twice
    engine.run(Rows(rows), Mapper(WriteMode.SET_IF_EMPTY), scope=SCOPE)
    # Then only the first fills it: after it, the attribute is not empty
    assert engine.counters.attributes_sent == 2
    assert engine.counters.attributes_set_if_empty_skipped == 1


def test_a_set_after_a_pending_set_if_empty_is_sent(setup: Setup) -> None:
    # Given a dry run, and rows of u1 in one chunk: set if empty, then set, then set if empty
    engine = setup.engine(None)
    rows = Rows([("u1", {"a": "x"}), ("u1", {"a": "x"}), ("u1", {"a": "y"})])
    # When they are planned
    engine.run(rows, Mapper(WriteMode.SET_IF_EMPTY, by_row={2: WriteMode.SET}), scope=SCOPE)
    # Then the set is sent (the lookup's outcome was not known when it was planned) and the last
    # set_if_empty is skipped
    assert engine.counters.attributes_sent == 2
    assert engine.counters.attributes_set_if_empty_skipped == 1


def test_what_the_run_planned_stays_bounded_and_a_far_repeat_is_still_exact(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a small bound on the users whose planned values are kept
    kept = 200
    monkeypatch.setattr(engine_module, "_PLANNED_USERS_KEPT", kept)
    users = 3000
    # And a file naming every user twice, far apart: a changed city for odd users, the same for even
    first = [(f"u{n}", {"city": f"c{n}"}) for n in range(users)]
    second = [(f"u{n}", {"city": f"c{n}" if n % 2 == 0 else f"d{n}"}) for n in range(users)]
    braze = FakeBraze()
    engine = setup.engine(
        braze, chunk_rows=50, in_flight=2, track_cap=TrackCap(limit=10), state_flush_users=20
    )
    sizes: list[int] = []
    # When it runs
    engine.run(
        Rows(first + second),
        Mapper(),
        scope=SCOPE,
        progress=lambda counters: sizes.append(len(engine._planned)),
    )
    # Then the planned values never covered more than the bound and a chunk
    assert max(sizes) <= kept + 50
    # And every repeat was deduped exactly against the state committed meanwhile
    assert engine.counters.attributes_sent == users + users // 2
    assert engine.counters.attributes_unchanged == users // 2
    assert all(braze.profiles[f"u{n}"]["city"] == second[n][1]["city"] for n in range(users))


def test_a_new_run_starts_from_the_store_not_from_the_last_runs_plans(setup: Setup) -> None:
    # Given a dry run that planned Lyon for u1 (a dry run commits nothing)
    engine = setup.engine(None)
    engine.run(Rows([("u1", {"city": "Lyon"})]), Mapper(), scope=SCOPE)
    # When the same engine runs the same file again
    engine.run(Rows([("u1", {"city": "Lyon"})]), Mapper(), scope=SCOPE)
    # Then it plans the write again
    assert engine.counters.attributes_sent == 2


def test_retry_entries_keep_the_digests_they_were_built_with(setup: Setup) -> None:
    # Given a Braze that never takes u1's Lyon, and a later row of u1 planned after that is known
    braze = FakeBraze(lambda body: body.get("city") == "Lyon")
    braze.exhausted = True
    rows = [("u1", {"city": "Lyon", "tier": "gold"}), ("u2", {"city": "Rome"}), ("u3", {"city": "Oslo"})]
    rows.append(("u1", {"city": "Lyon"}))
    # When the file runs
    setup.run(braze, rows, chunk_rows=1, in_flight=1, track_cap=TrackCap(limit=1))
    # Then the retry file commits what each object carried once Braze takes it, unchanged by the
    # run forgetting what it had planned
    digests = [entry.ref.digests for entry in setup.retry if entry.ref.user_key == "external_id:u1"]
    assert digests == [
        {"city": value_digest("Lyon"), "tier": value_digest("gold")},
        {"city": value_digest("Lyon")},
    ]


def test_a_users_object_already_in_the_next_request_follows_the_undelivered_one(setup: Setup) -> None:
    # Given Braze is unreachable for the request naming u1's first row
    braze = FakeBraze(lambda body: body == {"external_id": "u1", "city": "Paris"})
    braze.exhausted = True
    # And two objects a request, one request at a time: u1's next row is already packed in the next
    # request (with u4's) when the first request's fate becomes known
    rows = [
        ("u1", {"city": "Paris"}),
        ("u2", {"city": "Rome"}),
        ("u1", {"city": "Nice"}),
        ("u4", {"city": "Oslo"}),
        ("u5", {"city": "Bern"}),
    ]
    # When the file runs
    _, result = setup.run(braze, rows, chunk_rows=1, in_flight=1, track_cap=TrackCap(limit=2))
    # Then u1's later object is taken out of that request and follows the first to the retry file,
    # with u2's (same request as the first): the rows in file order
    assert [entry.ref.position.row for entry in setup.retry] == [1, 2, 3]
    assert setup.retry[2].reason == engine_module.HELD_BEHIND_RETRY
    # And the rest of that request still goes, and so does the file after it
    assert braze.sent("u1", "city") == []
    assert braze.sent("u4", "city") == ["Oslo"]
    assert braze.sent("u5", "city") == ["Bern"]
    assert result.counters.objects_to_retry_file == 3
    # And the requests counted are those sent: the failed one, u4's alone, u5's
    assert result.counters.requests == 3
    assert result.counters.objects_sent == 4
