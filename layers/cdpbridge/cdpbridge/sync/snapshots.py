"""Runs of files that are complete snapshots of a feed: what a snapshot leaves out has left.

The engine sees a snapshot as any other file: its transformer turns each row into member changes
(``WriteMode.MEMBERS``), planned against the state Braze acknowledged. Around that, this module adds
what a snapshot needs and a change file does not:

- before reading: whether the run is the feed's first snapshot (``SnapshotRoster.begin``); a
  transformer whose partner does not send existing members then only records them;
- while reading: every (user, member) pair the rows name is marked seen by the run, in pages, and
  always before a checkpoint, so a resumed run still knows what it saw;
- after the last row: the pairs earlier snapshots named and this one did not are read back page by
  page, each user's absent members removed, and the pairs forgotten.

Memory is one page of pairs, whatever the feed's size; the job calls this for single-part runs
only (the import runtime and the CLI never fan a snapshot out: the absent phase needs every row
of the file read first).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from aws_lambda_powertools import Logger

from cdpbridge.records import RowPosition, SourceRow
from cdpbridge.state.snapshot_roster import PAGE_SIZE, RosterEntry, SnapshotRoster
from cdpbridge.sync.counters import RunCounters

if TYPE_CHECKING:
    from collections.abc import Iterable

    from cdpbridge.integrations.registry import RecordTransformer
    from cdpbridge.mapping import ColumnCheck, MappingConfig
    from cdpbridge.sync.engine import RowMapper, SyncEngine
    from cdpbridge.updates import UserUpdate

logger = Logger(child=True)


@runtime_checkable
class SourceBoundTransformer(Protocol):
    """A transformer whose records depend on where the file came from (a feed named by its folder)."""

    def for_source(self, location: str, config_name: str | None) -> RecordTransformer: ...


@runtime_checkable
class SnapshotTransformer(Protocol):
    """A RecordTransformer whose files may be complete snapshots of a feed's (user, member) pairs."""

    @property
    def snapshot_scope(self) -> str | None:
        """The feed this file is a complete snapshot of; None when its records are changes."""
        ...

    @property
    def config(self) -> MappingConfig: ...

    def map_row(self, row: SourceRow) -> UserUpdate: ...

    def check_columns(self, columns: Iterable[str]) -> ColumnCheck: ...

    def without_columns(self, columns: Iterable[str]) -> Self: ...

    @property
    def sends_first_snapshot(self) -> bool:
        """False: the feed's first snapshot only records its members; nothing is sent."""
        ...

    def recording_only(self) -> Self: ...

    def seen_members(self, update: UserUpdate) -> tuple[str, ...]:
        """The members ``update`` (made by ``map_row``) says its user holds in the feed."""
        ...

    def absent_members(
        self, position: RowPosition, user_key: str, identifier: dict[str, Any], members: tuple[str, ...]
    ) -> UserUpdate:
        """The update that removes ``members``, which the snapshot left out, from the user."""
        ...


def reads_whole_file(mapping: MappingConfig) -> bool:
    """Whether files of ``mapping`` are snapshots, which one part must read whole (never fanned out)."""
    from cdpbridge.integrations.registry import get_integration  # noqa: PLC0415 - the registry imports the mapping

    transformer = get_integration(mapping.integration).transformer(mapping)
    return isinstance(transformer, SnapshotTransformer) and transformer.snapshot_scope is not None


@dataclass(slots=True)
class SnapshotRun:
    """The snapshot phases of one run (see the module docstring)."""

    transformer: SnapshotTransformer
    roster: SnapshotRoster
    scope: str
    run_id: str
    first: bool
    _seen: list[RosterEntry] = field(default_factory=list)
    _kept: list[str] = field(default_factory=list)

    @classmethod
    def begin(
        cls, transformer: object, roster: SnapshotRoster | None, run_id: str, workspace: str
    ) -> Self | None:
        """The phases of a run, or None when ``transformer`` does not read a snapshot."""
        if not isinstance(transformer, SnapshotTransformer) or transformer.snapshot_scope is None:
            return None
        if roster is None:
            raise ValueError("a snapshot feed needs a snapshot roster store; none is configured")
        scope = f"{workspace}/{transformer.snapshot_scope}"
        first = roster.begin(scope, run_id)
        if first and not transformer.sends_first_snapshot:
            transformer = transformer.recording_only()
        logger.info(
            "snapshot run", extra={"run_id": run_id, "feed": transformer.snapshot_scope, "first": first}
        )
        return cls(transformer, roster, scope, run_id, first)

    @property
    def mapper(self) -> RecordTransformer:
        """The transformer the run reads with (recording only on a first snapshot, if so asked)."""
        return self.transformer

    def marking(self, mapper: RowMapper) -> RowMapper:
        """``mapper`` (the transformer, maybe without some columns) marking what it maps as seen."""
        return _MarkingMapper(mapper, self)

    def saw(self, update: UserUpdate) -> None:
        if not update.user_key:
            return
        if update.issues:
            # Part of the row could not be read: its user keeps every audience the feed had for it,
            # rather than losing those the unreadable part may have named.
            self._kept.append(update.user_key)
        if not update.rejected:
            for member in self.transformer.seen_members(update):
                self._seen.append(RosterEntry(update.user_key, member, update.identifier))
        if len(self._seen) + len(self._kept) >= PAGE_SIZE:
            self.flush()

    def flush(self) -> None:
        """Stores the pairs marked so far (before every checkpoint, and when reading ends)."""
        if self._seen:
            self.roster.mark_seen(self.scope, self.run_id, self._seen)
            self._seen = []
        if self._kept:
            self.roster.keep_users(self.scope, self.run_id, self._kept)
            self._kept = []

    def checkpointing(self, save: Callable[[Any, RunCounters], None]) -> Callable[[Any, RunCounters], None]:
        def save_after_marks(resume_point: Any, counters: RunCounters) -> None:
            self.flush()
            save(resume_point, counters)

        return save_after_marks

    def failed(self) -> None:
        """The run could not read its snapshot whole: a first snapshot is first again next time."""
        self.flush()
        if self.first:
            self.roster.release(self.scope, self.run_id)

    def remove_absent(self, engine: SyncEngine, counters: RunCounters) -> None:
        """Removes, user by user, the members earlier snapshots named and this one did not.

        ``engine`` counts into counters of its own: what it sends and saves is added to ``counters``
        (the run's), its rows are not rows of the file."""
        self.flush()
        if self.first:
            # Nothing earlier to compare with (and a first snapshot that only records sends nothing).
            return
        absent_counters = engine.counters
        source = f"{self.scope} (absent from the snapshot)"
        mapper = _AbsentMapper(self.transformer)
        for page in self.roster.unseen(self.scope, self.run_id):
            rows = _PageRows(source, page)
            engine.run(rows, mapper, scope=f"{self.scope}@{self.run_id}#absent")
            absent_counters.snapshot_members_absent += len(page)
            # The removes are acknowledged or in a retry file by now (engine.run drains).
            self.roster.forget(self.scope, page)
        absent_counters.rows_read = absent_counters.users = 0
        counters.merge(absent_counters)


class _MarkingMapper:
    def __init__(self, mapper: RowMapper, run: SnapshotRun) -> None:
        self._mapper = mapper
        self._run = run

    def map_row(self, row: SourceRow) -> UserUpdate:
        update = self._mapper.map_row(row)
        self._run.saw(update)
        return update


class _AbsentMapper:
    """Rows of ``_PageRows`` (one user's absent members each) into the updates removing them."""

    def __init__(self, transformer: SnapshotTransformer) -> None:
        self._transformer = transformer

    def map_row(self, row: SourceRow) -> UserUpdate:
        values = row.values
        return self._transformer.absent_members(
            row.position, values["user_key"], values["identifier"], values["members"]
        )


class _PageRows:
    """One page of absent pairs as rows, one per user (pairs come ordered by user)."""

    def __init__(self, source: str, page: list[RosterEntry]) -> None:
        self._source = source
        self._page = page

    def __iter__(self) -> Iterator[SourceRow]:
        for number, (user_key, entries) in enumerate(groupby(self._page, key=lambda e: e.user_key), 1):
            pairs = list(entries)
            yield SourceRow(
                RowPosition(self._source, number),
                {
                    "user_key": user_key,
                    "identifier": pairs[-1].identifier,
                    "members": tuple(entry.member for entry in pairs),
                },
            )

    def resume_point(self) -> None:
        return None
