"""One run (or one part of a fanned-out run) of a file through the engine, with checkpoints and reports.

Shared by the Lambda runtime and the CLI, so a laptop run is the very run a function does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, Self

import orjson
from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field

from cdpbridge.braze import BrazeClient
from cdpbridge.integrations.registry import RecordTransformer, get_integration
from cdpbridge.mapping import MappingConfig, Strategy
from cdpbridge.records import RowIssue, RowPosition
from cdpbridge.sources import ByteRange, ResumePoint, RowStream, SourceError, SourceSpec, open_rows
from cdpbridge.sources.opening import OpenedSource
from cdpbridge.state import Checkpoint, CheckpointStore, FieldStateStore, SendLedger, SnapshotRoster
from cdpbridge.sync.artifacts import ArtifactStore, RejectsWriter, merge_rejects
from cdpbridge.sync.aws_cost import aws_cost
from cdpbridge.sync.columns import declared_columns
from cdpbridge.sync.counters import RunCounters
from cdpbridge.sync.engine import EngineOptions, RunResult, SyncEngine
from cdpbridge.sync.messages import S3Location
from cdpbridge.sync.retry import RetryEntry, decode_retry_file, encode_retry_file
from cdpbridge.sync.snapshots import SnapshotRun, SourceBoundTransformer

logger = Logger(child=True)


@dataclass(frozen=True, slots=True)
class RunPart:
    part_id: str = "0"
    parts: int = 1
    byte_range: ByteRange | None = None
    # Retry files the run's replay (part 0) wrote: the users in them are held in this part too, so
    # their rows follow the objects that are still undelivered instead of overtaking them.
    held_from: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class JobRequest:
    integration: str
    # The object a notification named (bucket and key, as it gave them), or what the CLI was given:
    # a local path or an s3:// location.
    location: S3Location | str
    version: str  # the object's etag (or a local file's size and mtime): identifies what was read
    run_id: str
    started_at: datetime
    mapping: MappingConfig
    part: RunPart = field(default_factory=RunPart)
    # The mapping config's name (file stem or S3 key stem): names a feed when the location does not.
    config_name: str | None = None

    @property
    def scope(self) -> str:
        return f"{self.location}@{self.version}"

    @property
    def report_stem(self) -> str:
        return f"{self.integration}/{self.started_at:%Y-%m-%d}/{self.run_id}"


@dataclass(slots=True)
class JobServices:
    client: BrazeClient | None
    field_state: FieldStateStore
    ledger: SendLedger
    checkpoints: CheckpointStore
    artifacts: ArtifactStore
    options: EngineOptions
    s3_client: Any = None
    reports_prefix: str = "reports/"
    retry_prefix: str = "retry/"
    # Which (user, member) pairs each snapshot of a feed named (cdpbridge.sync.snapshots).
    roster: SnapshotRoster | None = None
    # The function's memory, for the GB-seconds the report prices (the template's MemorySize).
    function_memory_mb: int = 1024

    def engine(
        self,
        rejects: RejectsWriter,
        retry_sink: Callable[[list[RetryEntry]], None],
        counters: RunCounters,
        held_users: set[str] | None = None,
    ) -> SyncEngine:
        return SyncEngine(
            client=self.client,
            field_state=self.field_state,
            ledger=self.ledger,
            options=self.options,
            rejects=rejects,
            retry_sink=retry_sink,
            counters=counters,
            held_users=held_users,
        )


@dataclass(slots=True)
class PartOutcome:
    finished: bool
    counters: RunCounters
    report: dict[str, Any] | None = None
    report_location: str | None = None
    aborted_reason: str | None = None


class PartBookkeeping(BaseModel):
    """What a part carries from one invocation to the next besides the counters and the resume point
    (stored in its checkpoint as ``Checkpoint.parts``)."""

    model_config = ConfigDict(extra="ignore")

    # Rejects segments and retry files written so far, warnings and missing columns said so far.
    rejects: list[str] = Field(default_factory=list)
    retry: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    missing_columns: list[str] = Field(default_factory=list)
    invocations: int = 0
    # Part 0 stopped while replaying retry files: the next invocation replays on before reading.
    replaying: bool = False

    def add_warnings(self, more: Iterable[str]) -> None:
        _extend_unique(self.warnings, more)

    def add_missing_columns(self, more: Iterable[str]) -> None:
        _extend_unique(self.missing_columns, more)


class PartSummary(BaseModel):
    """An ended part, as mark_done stores it: what the run's one report merges."""

    model_config = ConfigDict(extra="ignore")

    counters: dict[str, Any] = Field(default_factory=dict)  # RunCounters.to_dict()
    failure: str | None = None
    rejects: list[str] = Field(default_factory=list)
    retry: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    missing_columns: list[str] = Field(default_factory=list)
    finished_at: float = 0.0


@dataclass(slots=True)
class _PartInvocation:
    """One invocation of a part: what it resumed from, and what it writes (rejects, retry files)."""

    request: JobRequest
    services: JobServices
    counters: RunCounters
    book: PartBookkeeping
    rejects: RejectsWriter
    resume: ResumePoint | None
    # Part 0 replays earlier runs' retry files before it reads (``to_replay``, oldest first); a
    # retry file written meanwhile must not take the name of one of them.
    replays: bool = False
    to_replay: list[str] = field(default_factory=list)
    next_retry_number: int = 0
    # When the invocation's seconds were last added to the counters.
    counted_until: float = field(default_factory=time.monotonic)

    @classmethod
    def begin(cls, request: JobRequest, services: JobServices, checkpoint: Checkpoint | None) -> Self:
        book = PartBookkeeping.model_validate(checkpoint.parts) if checkpoint else PartBookkeeping()
        book.invocations += 1
        prefix = f"{services.reports_prefix}{request.report_stem}"
        invocation = cls(
            request,
            services,
            RunCounters.from_dict(checkpoint.counters) if checkpoint else RunCounters(),
            book,
            RejectsWriter(services.artifacts, f"{prefix}.p{request.part.part_id}.i{book.invocations}"),
            ResumePoint.from_dict(checkpoint.resume) if checkpoint and checkpoint.resume else None,
            next_retry_number=len(book.retry),
        )
        invocation.counters.invocations += 1
        invocation.counters.checkpoint_reads += 1
        # Part 0 replays first: in its first invocation, and in those after one that stopped replaying.
        invocation.replays = (
            request.part.part_id == "0"
            and not services.options.dry_run
            and (checkpoint is None or book.replaying)
        )
        if invocation.replays:
            # The retry files this part already wrote hold what failed again: the next run sends those.
            already = set(book.retry)
            invocation.to_replay = [
                key for key in _retry_files_to_replay(request, services) if key not in already
            ]
        return invocation

    def write_retry(self, entries: list[RetryEntry]) -> None:
        while True:
            key = _retry_file_key(self.services, self.request, self.book.invocations, self.next_retry_number)
            self.next_retry_number += 1
            # An attempt of this invocation that died after replaying may have left files of these
            # names; they are replayed now and must not be overwritten before they are.
            if key not in self.to_replay:
                break
        self.services.artifacts.put(key, encode_retry_file(entries), "application/x-ndjson")
        self.book.retry.append(key)

    def count_seconds(self, counters: RunCounters) -> None:
        """Adds the seconds this invocation ran since they were last counted."""
        now = time.monotonic()
        counters.invocation_seconds += now - self.counted_until
        self.counted_until = now

    def save_checkpoint(self, resume_point: Any, counters: RunCounters, *, replaying: bool = False) -> None:
        self.count_seconds(counters)
        counters.checkpoint_writes += 1
        book = self.book.model_copy(
            update={"rejects": self.book.rejects + self.rejects.segment_keys, "replaying": replaying}
        )
        self.services.checkpoints.save(
            Checkpoint(
                run_id=self.request.run_id,
                scope=self.request.scope,
                resume=resume_point.to_dict() if resume_point is not None else {},
                counters=counters.to_dict(),
                updated_at=time.time(),
                parts=book.model_dump(),
            ),
            self.request.part.part_id,
        )


@dataclass(frozen=True, slots=True)
class _ReadOutcome:
    result: RunResult
    failure: str | None = None


def run_part(
    request: JobRequest,
    services: JobServices,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[RunCounters], None] | None = None,
    on_replayed: Callable[[list[str]], None] | None = None,
) -> PartOutcome:
    """Runs one part until it ends or ``should_stop``; a stopped part leaves a checkpoint to resume.

    Phases: replay (part 0's first invocation replays the retry files of earlier runs, then calls
    ``on_replayed`` with the retry files that replay wrote: a fanned-out run whose other parts wait
    for the replay starts them there, holding those files' users), check the header, read and send,
    (for a snapshot feed: remove what the snapshot left out, ``cdpbridge.sync.snapshots``), report.
    """
    checkpoint = services.checkpoints.load(request.run_id, request.part.part_id)
    if checkpoint is not None and checkpoint.done and request.part.parts > 1:
        # A redelivered message of a part that already ended: reading its range again would find
        # everything sent, and its summary would replace the counters of the invocation that sent it.
        return _end_part_again(request, services, PartSummary.model_validate(checkpoint.summary or {}))
    invocation = _PartInvocation.begin(request, services, checkpoint)
    with _s3_requests_counted(services.s3_client, invocation.counters):
        return _run_invocation(
            invocation, should_stop=should_stop, progress=progress, on_replayed=on_replayed
        )


def _run_invocation(
    invocation: _PartInvocation,
    *,
    should_stop: Callable[[], bool],
    progress: Callable[[RunCounters], None] | None,
    on_replayed: Callable[[list[str]], None] | None,
) -> PartOutcome:
    request, services = invocation.request, invocation.services
    # Users with an undelivered object: of the retry files this part wrote in earlier invocations
    # and those of the run's replay; the replay and the run below add to it.
    held_users = _users_in_retry_files(services, [*invocation.book.retry, *request.part.held_from])
    if invocation.replays and not _replay_phase(invocation, held_users, should_stop, on_replayed):
        return PartOutcome(False, invocation.counters)
    engine = services.engine(invocation.rejects, invocation.write_retry, invocation.counters, held_users)
    mapper = get_integration(request.mapping.integration).transformer(request.mapping)
    if isinstance(mapper, SourceBoundTransformer):
        mapper = mapper.for_source(str(request.location), request.config_name)
    snapshot = (
        SnapshotRun.begin(mapper, services.roster, request.run_id, services.options.workspace)
        if request.part.parts == 1 and not services.options.dry_run
        else None
    )
    if snapshot is not None:
        mapper = snapshot.mapper
    spec = request.mapping.source.reader_spec()
    try:
        with open_rows(
            str(request.location),
            spec,
            s3_client=services.s3_client,
            resume=invocation.resume,
            byte_range=request.part.byte_range,
        ) as rows:
            # Checked by every invocation, resumed ones too (a continuation loads the mapping again),
            # on the object the rows are then read from.
            fit = _fit_columns(request, rows.opened, spec, mapper)
            read = _read_and_send_phase(
                invocation, engine, rows, fit, should_stop=should_stop, progress=progress, snapshot=snapshot
            )
    except SourceError as error:
        read = _unreadable(invocation, engine, error)
    if snapshot is not None:
        snapshot.flush()
        if read.failure is not None:
            # A snapshot read in part says nothing of who left; the feed's next one is compared instead.
            snapshot.failed()
        elif read.result.finished:
            absent = services.engine(invocation.rejects, invocation.write_retry, RunCounters(), held_users)
            snapshot.remove_absent(absent, read.result.counters)
    if not read.result.finished:
        invocation.save_checkpoint(read.result.resume, read.result.counters)
        logger.info(
            "run paused at a checkpoint",
            extra={
                "run_id": request.run_id,
                "part": request.part.part_id,
                "rows_read": read.result.counters.rows_read,
            },
        )
        return PartOutcome(False, read.result.counters, aborted_reason=read.result.aborted_reason)
    return _report_phase(invocation, read)


def _replay_phase(
    invocation: _PartInvocation,
    held_users: set[str],
    should_stop: Callable[[], bool],
    on_replayed: Callable[[list[str]], None] | None,
) -> bool:
    """Replays earlier runs' retry files; False when it stopped near the deadline (checkpointed)."""
    replayed_all = _replay_retry_files(
        invocation.to_replay,
        invocation.services,
        invocation.counters,
        invocation.rejects,
        invocation.write_retry,
        held_users=held_users,
        should_stop=should_stop,
    )
    if not replayed_all:
        # Near the deadline: the next invocation goes on replaying before any row is read.
        invocation.save_checkpoint(None, invocation.counters, replaying=True)
        logger.info("replay paused at a checkpoint", extra={"run_id": invocation.request.run_id})
        return False
    if on_replayed is not None:
        on_replayed(list(invocation.book.retry))
        # The other parts are started: a redelivered message of this invocation must not
        # replay and start them again.
        invocation.save_checkpoint(None, invocation.counters)
    return True


def _read_and_send_phase(
    invocation: _PartInvocation,
    engine: SyncEngine,
    rows: RowStream,
    fit: ColumnFit,
    *,
    should_stop: Callable[[], bool],
    progress: Callable[[RunCounters], None] | None,
    snapshot: SnapshotRun | None = None,
) -> _ReadOutcome:
    """Streams the part's rows through the engine, unless the header check found the file unfit."""
    invocation.book.add_warnings(fit.warnings)
    invocation.book.add_missing_columns(fit.missing)
    if fit.failure is not None:
        # Nothing of the file is sent: rows mapped without the columns would write nothing
        # where values were meant, or unset attributes for every user.
        return _ReadOutcome(RunResult(engine.counters, finished=True), fit.failure)
    result = engine.run(
        rows,
        fit.mapper if snapshot is None else snapshot.marking(fit.mapper),
        scope=invocation.request.scope,
        should_stop=should_stop,
        on_drained=invocation.save_checkpoint
        if snapshot is None
        else snapshot.checkpointing(invocation.save_checkpoint),
        progress=progress,
    )
    return _ReadOutcome(result)


def _unreadable(invocation: _PartInvocation, engine: SyncEngine, error: SourceError) -> _ReadOutcome:
    """The file cannot be read on (bad header, corrupt block, object replaced mid-read): what was
    read is applied and committed; the report says where and why reading stopped."""
    logger.error("source unreadable", extra={"run_id": invocation.request.run_id, "reason": error.reason})
    engine.counters.reject("unreadable file")
    invocation.rejects.add(
        RowIssue(
            RowPosition(error.source, error.row or 0, error.offset), None, "unreadable file", error.reason
        )
    )
    invocation.rejects.flush()
    return _ReadOutcome(RunResult(engine.counters, finished=True, aborted_reason=None), str(error))


def _report_phase(invocation: _PartInvocation, read: _ReadOutcome) -> PartOutcome:
    """An ended part: alone, it writes the run's report; fanned out, the last part to end does."""
    request, services, book = invocation.request, invocation.services, invocation.book
    invocation.count_seconds(read.result.counters)
    if request.part.parts > 1:
        read.result.counters.checkpoint_writes += 1  # mark_done
    summary = PartSummary(
        counters=read.result.counters.to_dict(),
        failure=read.failure,
        rejects=book.rejects + invocation.rejects.segment_keys,
        retry=book.retry,
        warnings=book.warnings,
        missing_columns=book.missing_columns,
        finished_at=time.time(),
    )
    if request.part.parts > 1:
        if not services.checkpoints.mark_done(
            request.run_id, request.part.part_id, summary.model_dump(), total_parts=request.part.parts
        ):
            return PartOutcome(True, read.result.counters)
        return _report_parts(request, services)
    report, location = _write_report(request, services, read.result.counters, summary)
    return PartOutcome(True, read.result.counters, report, location)


def _end_part_again(request: JobRequest, services: JobServices, summary: PartSummary) -> PartOutcome:
    """A part that already ended ends again from its stored summary, without reading anything.

    mark_done answers True again only to the part that completed the run, so a completing
    invocation that died before the report was written still writes it, and no other does.
    """
    part = request.part
    logger.info("part already ended; not read again", extra={"run_id": request.run_id, "part": part.part_id})
    if not services.checkpoints.mark_done(
        request.run_id, part.part_id, summary.model_dump(), total_parts=part.parts
    ):
        return PartOutcome(True, RunCounters.from_dict(summary.counters))
    stored = services.artifacts.get(_report_key(request, services))
    if stored is None:
        return _report_parts(request, services)
    # The report was written before the message came back: it stays as it is (its finish time
    # included), and the rejects segments it merged are gone anyway.
    report: dict[str, Any] = orjson.loads(stored)
    location = services.artifacts.put(_report_key(request, services), stored, "application/json")
    report["report_file"] = location
    return PartOutcome(
        True, _merged_counters(services.checkpoints.list_parts(request.run_id)), report, location
    )


def _report_parts(request: JobRequest, services: JobServices) -> PartOutcome:
    """Merges the summaries of every part of the run into the run's one report."""
    done_parts = services.checkpoints.list_parts(request.run_id)
    merged_summary = PartSummary()
    failures: dict[str, list[str]] = {}
    for done in done_parts:
        summary = PartSummary.model_validate(done.summary or {})
        merged_summary.rejects.extend(summary.rejects)
        merged_summary.retry.extend(summary.retry)
        _extend_unique(merged_summary.warnings, summary.warnings)
        _extend_unique(merged_summary.missing_columns, summary.missing_columns)
        if summary.failure:
            failures.setdefault(summary.failure, []).append(done.part)
    merged = _merged_counters(done_parts)
    # Every part checks the same header: one failure of them all is said once, naming its parts.
    merged_summary.failure = (
        "; ".join(
            f"part{'s' if len(parts) > 1 else ''} {', '.join(parts)}: {message}"
            for message, parts in failures.items()
        )
        or None
    )
    merged_summary.missing_columns.sort()
    report, location = _write_report(request, services, merged, merged_summary)
    return PartOutcome(True, merged, report, location)


def _merged_counters(done_parts: list[Checkpoint]) -> RunCounters:
    merged = RunCounters()
    for done in done_parts:
        merged.merge(RunCounters.from_dict(PartSummary.model_validate(done.summary or {}).counters))
    return merged


def _extend_unique(items: list[str], more: Iterable[str]) -> None:
    for item in more:
        if item not in items:
            items.append(item)


@dataclass(frozen=True, slots=True)
class ColumnFit:
    """What the file's declared columns mean for this run: the mapper to use, or why not to run."""

    mapper: RecordTransformer
    failure: str | None = None
    warnings: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


def _fit_columns(
    request: JobRequest, opened: OpenedSource, spec: SourceSpec, mapper: RecordTransformer
) -> ColumnFit:
    """Checks the file's header (or Avro schema) against the mapping before any row is mapped.

    A column the mapping names but the file lacks is empty in every row, and nothing says so
    otherwise. Messages name files and columns, never cell values.
    """
    declared = declared_columns(opened, spec)
    if not declared:
        return ColumnFit(mapper)
    problems: list[str] = []
    warnings: list[str] = []
    missing: set[str] = set()
    skipped_somewhere: set[str] = set()
    skipped_everywhere: set[str] | None = None
    for member in declared:
        check = mapper.check_columns(member.columns)
        missing.update(check.missing)
        skipped_somewhere.update(check.skipped)
        skipped_everywhere = (
            set(check.skipped) if skipped_everywhere is None else skipped_everywhere & set(check.skipped)
        )
        if check.errors:
            problems.append(f"{member.source}: {'; '.join(str(error) for error in check.errors)}")
            continue
        warnings.extend(f"{member.source}: {warning}" for warning in check.warnings)
        if check.missing:
            names = ", ".join(f"'{column}'" for column in check.missing)
            warnings.append(f"{member.source}: the file has no column {names}: nothing is written from it")
    for column in _cleared_in_some_members(mapper, skipped_somewhere, skipped_everywhere or set()):
        problems.append(
            f"{request.location}: some members have the column '{column}' and some do not: its clear "
            "field would unset the attribute for the users of the members without it"
        )
    context = {"run_id": request.run_id, "part": request.part.part_id, "missing_columns": sorted(missing)}
    if problems:
        logger.error(
            "the file does not fit the mapping; nothing is sent", extra={**context, "problems": problems}
        )
        failure = f"the file does not fit the mapping, so none of its rows were sent: {' | '.join(problems)}"
        return ColumnFit(mapper, failure, tuple(warnings), tuple(sorted(missing)))
    if warnings:
        logger.warning("the file lacks columns the mapping names", extra={**context, "warnings": warnings})
    if skipped_everywhere:
        logger.info(
            "optional columns absent; their fields write nothing",
            extra={"run_id": request.run_id, "columns": sorted(skipped_everywhere)},
        )
        mapper = mapper.without_columns(skipped_everywhere)
    return ColumnFit(mapper, None, tuple(warnings), tuple(sorted(missing)))


@dataclass(frozen=True, slots=True)
class FanOut:
    """The parts of a run split into byte ranges, in the order they may start.

    When earlier runs left retry files, part 0 replays them before any other part can send a newer
    row of the same users: only part 0 starts now, and the others start once its replay has drained
    (``run_part`` calls ``on_replayed``), holding the users of the retry files that replay wrote.
    The SQS fan-out and ``cdpbridge run --workers`` both follow this plan.
    """

    start_now: tuple[RunPart, ...]
    after_replay: tuple[RunPart, ...] = ()

    def released(self, replay_retry_files: Iterable[str]) -> tuple[RunPart, ...]:
        """The waiting parts, started once part 0's replay wrote ``replay_retry_files``."""
        held_from = tuple(replay_retry_files)
        return tuple(replace(part, held_from=held_from) for part in self.after_replay)


def plan_fan_out(request: JobRequest, ranges: Sequence[ByteRange], services: JobServices) -> FanOut:
    parts = tuple(RunPart(str(index), len(ranges), byte_range) for index, byte_range in enumerate(ranges))
    if not services.options.dry_run and retry_files_pending(services, request.integration):
        return FanOut(parts[:1], parts[1:])
    return FanOut(parts)


def _cleared_in_some_members(
    mapper: RecordTransformer, skipped_somewhere: set[str], skipped_everywhere: set[str]
) -> list[str]:
    """One mapper reads every member of a zip: an optional field can only be left out for all of
    them, and a clear field left in would unset its attribute for the members without the column."""
    partly = skipped_somewhere - skipped_everywhere
    return sorted(
        {
            field.column
            for field in mapper.config.fields
            if field.column in partly and field.strategy is Strategy.CLEAR
        }
    )


def retry_files_pending(services: JobServices, integration: str) -> bool:
    """Whether objects of earlier runs of ``integration`` wait in retry files."""
    return bool(services.artifacts.list(_retry_folder(services, integration)))


def _retry_folder(services: JobServices, integration: str) -> str:
    return f"{services.retry_prefix}{integration}/"


def _retry_file_key(services: JobServices, request: JobRequest, invocation: int, number: int) -> str:
    """<run id>.p<part>.i<invocation>.<number>.jsonl, which retry_file_order reads back."""
    folder = _retry_folder(services, request.integration)
    return f"{folder}{request.run_id}.p{request.part.part_id}.i{invocation}.{number:03d}.jsonl"


def _retry_files_to_replay(request: JobRequest, services: JobServices) -> list[str]:
    """Retry files of earlier runs, and of an earlier attempt of this very part that died replaying;
    not those other parts of this run write meanwhile (their own report lists them). Oldest first:
    a user's objects are replayed in the order the runs wrote them."""
    folder = _retry_folder(services, request.integration)
    own_run = f"{folder}{request.run_id}.p"
    own_part = f"{own_run}{request.part.part_id}."
    keys = [
        key
        for key in services.artifacts.list(folder)
        if not key.startswith(own_run) or key.startswith(own_part)
    ]
    return sorted(keys, key=retry_file_order)


def retry_file_order(key: str) -> tuple[str, int, int, int, str]:
    """Sorts retry files (named by _retry_file_key) by run, then part, invocation and file number as
    numbers: ``.i10.`` is written after ``.i9.``. Run ids begin with their start time, so runs sort
    oldest first."""
    name = key.rsplit("/", 1)[-1]
    fields = name.split(".")
    if len(fields) == 5 and fields[1][:1] == "p" and fields[2][:1] == "i":
        part, invocation, number = fields[1][1:], fields[2][1:], fields[3]
        if part.isdigit() and invocation.isdigit() and number.isdigit():
            return (fields[0], int(part), int(invocation), int(number), key)
    return (name, 0, 0, 0, key)


def _users_in_retry_files(services: JobServices, keys: list[str]) -> set[str]:
    """The users of the entries in ``keys`` (a file already replayed and deleted has none left)."""
    users: set[str] = set()
    for key in keys:
        data = services.artifacts.get(key)
        if data is not None:
            users.update(
                entry.ref.user_key for entry in decode_retry_file(data, key, lambda line, error: None)
            )
    return users


def _replay_retry_files(
    keys: list[str],
    services: JobServices,
    counters: RunCounters,
    rejects: RejectsWriter,
    write_retry: Callable[[list[RetryEntry]], None],
    *,
    held_users: set[str],
    should_stop: Callable[[], bool],
) -> bool:
    """Objects an earlier run could not deliver go first, so nothing is lost between runs. Returns
    False when it stopped near the deadline with entries left.

    A file is deleted only once its replay has drained (what failed again is in a new retry file
    by then): if the invocation dies while replaying, the file is still there for the next attempt.
    A replay stopped near the deadline writes the entries it did not take back under the same name,
    so they keep their place in the order.
    Sending a file's objects again is safe: attribute objects set values (the same values again);
    events, purchases and attribute objects with increments carry a ledger id, which replay looks
    up before sending and which is marked sent as soon as Braze acknowledges (SyncEngine.replay and
    _handle_outcome), under the scope the entry was written with. Each retry file is written by one
    engine of one run, so all its entries share that scope.
    """
    for key in keys:
        if should_stop():
            return False
        data = services.artifacts.get(key)
        if data is None:
            continue

        def unreadable(line: int, error: str, key: str = key) -> None:
            # A damaged line cannot be sent; the rest of the file still is, and the line is reported.
            counters.reject("unreadable retry entry")
            rejects.add(RowIssue(RowPosition(key, line), None, "unreadable retry entry", error))

        # Read whole first: the damaged lines are reported once, and what is left can be written back.
        entries = list(decode_retry_file(data, key, unreadable))
        taken = services.engine(rejects, write_retry, counters, held_users).replay(entries, should_stop)
        if taken < len(entries):
            services.artifacts.put(key, encode_retry_file(entries[taken:]), "application/x-ndjson")
            logger.info(
                "retry file partly replayed", extra={"retry_file": key, "entries_left": len(entries) - taken}
            )
            return False
        services.artifacts.delete(key)
        logger.info("replayed a retry file", extra={"retry_file": key})
    return True


# S3 operations billed as GET (class B); DeleteObject is free; every other one is billed as PUT.
_S3_GET_OPERATIONS: Final = frozenset({"GetObject", "HeadObject", "SelectObjectContent", "GetObjectTagging"})
_S3_FREE_OPERATIONS: Final = frozenset({"DeleteObject", "DeleteObjects"})


@contextmanager
def _s3_requests_counted(s3_client: Any, counters: RunCounters) -> Iterator[None]:
    """Counts the S3 requests made through ``s3_client`` while the invocation runs, by price class."""
    events = getattr(getattr(s3_client, "meta", None), "events", None)
    if events is None:
        yield
        return

    def count(model: Any, **_: Any) -> None:
        if model.name in _S3_GET_OPERATIONS:
            counters.s3_get_requests += 1
        elif model.name not in _S3_FREE_OPERATIONS:
            counters.s3_put_requests += 1

    unique_id = f"cdpbridge-s3-requests-{id(counters)}"
    events.register("after-call.s3", count, unique_id=unique_id)
    try:
        yield
    finally:
        events.unregister("after-call.s3", unique_id=unique_id)


def _report_key(request: JobRequest, services: JobServices) -> str:
    return f"{services.reports_prefix}{request.report_stem}.json"


def _write_report(
    request: JobRequest, services: JobServices, counters: RunCounters, summary: PartSummary
) -> tuple[dict[str, Any], str]:
    stem = f"{services.reports_prefix}{request.report_stem}"
    rejects_location = merge_rejects(services.artifacts, summary.rejects, f"{stem}.rejects.csv")
    finished = datetime.now(UTC)
    report: dict[str, Any] = {
        "run_id": request.run_id,
        "status": "failed" if summary.failure else "completed",
        "failure": summary.failure,
        "integration": request.integration,
        "source": str(request.location),
        "version": request.version,
        "started_at": request.started_at.isoformat(),
        "finished_at": finished.isoformat(),
        "duration_s": round((finished - request.started_at).total_seconds(), 3),
        "parts": request.part.parts,
        "dry_run": services.options.dry_run,
        "full_refresh": services.options.full_refresh,
        "track_cap": {"mode": services.options.track_cap.mode, "limit": services.options.track_cap.limit},
        **counters.to_dict(),
        "aws_cost": aws_cost(counters, services.function_memory_mb),
        "rejects_file": rejects_location,
        "retry_files": list(summary.retry),
        "missing_columns": summary.missing_columns,
        "warnings": summary.warnings,
    }
    location = services.artifacts.put(
        _report_key(request, services), orjson.dumps(report, option=orjson.OPT_INDENT_2), "application/json"
    )
    report["report_file"] = location
    return report, location
