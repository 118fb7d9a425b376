"""One run (or one part of a fanned-out run) of a file through the engine, with checkpoints and reports.

Shared by the Lambda runtime and the CLI, so a laptop run is the very run a function does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aws_lambda_powertools import Logger

from cdpbridge.braze import BrazeClient
from cdpbridge.integrations.registry import RecordTransformer, get_integration
from cdpbridge.mapping import MappingConfig, Strategy
from cdpbridge.records import RowIssue, RowPosition
from cdpbridge.sources import ByteRange, ResumePoint, SourceError, SourceSpec, open_rows
from cdpbridge.state import Checkpoint, CheckpointStore, FieldStateStore, SendLedger
from cdpbridge.sync.artifacts import ArtifactStore, RejectsWriter, merge_rejects
from cdpbridge.sync.columns import read_declared_columns
from cdpbridge.sync.counters import RunCounters
from cdpbridge.sync.engine import EngineOptions, RunResult, SyncEngine
from cdpbridge.sync.retry import RetryEntry, decode_retry_file, encode_retry_file

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
    location: str  # s3://bucket/key or a local path
    version: str  # the object's etag (or a local file's size and mtime): identifies what was read
    run_id: str
    started_at: datetime
    mapping: MappingConfig
    part: RunPart = field(default_factory=RunPart)

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


def run_part(
    request: JobRequest,
    services: JobServices,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[RunCounters], None] | None = None,
    on_replayed: Callable[[list[str]], None] | None = None,
) -> PartOutcome:
    """Runs one part until it ends or ``should_stop``; a stopped part leaves a checkpoint to resume.

    Part 0's first invocation first replays the retry files of earlier runs, then calls
    ``on_replayed`` with the retry files that replay wrote (what failed again): a fanned-out run
    whose other parts wait for the replay starts them there, holding those files' users.
    """
    part = request.part
    checkpoint = services.checkpoints.load(request.run_id, part.part_id)
    if checkpoint is not None and checkpoint.done and part.parts > 1:
        # A redelivered message of a part that already ended: reading its range again would find
        # everything sent, and its summary would replace the counters of the invocation that sent it.
        return _end_part_again(request, services, checkpoint.summary or {})
    counters = RunCounters.from_dict(checkpoint.counters) if checkpoint else RunCounters()
    earlier: dict[str, Any] = checkpoint.parts if checkpoint else {}
    segments: list[str] = list(earlier.get("rejects", []))
    retry_keys: list[str] = list(earlier.get("retry", []))
    warnings: list[str] = list(earlier.get("warnings", []))
    missing_columns: list[str] = list(earlier.get("missing_columns", []))
    invocation = int(earlier.get("invocations", 0)) + 1
    resume = ResumePoint.from_dict(checkpoint.resume) if checkpoint and checkpoint.resume else None

    prefix = f"{services.reports_prefix}{request.report_stem}"
    rejects = RejectsWriter(services.artifacts, f"{prefix}.p{part.part_id}.i{invocation}")
    # Part 0 replays first: in its first invocation, and in those after one that stopped replaying.
    replaying = (
        part.part_id == "0"
        and not services.options.dry_run
        and (checkpoint is None or bool(earlier.get("replaying")))
    )
    # The retry files this part already wrote hold what failed again: the next run sends those.
    to_replay = (
        [key for key in _retry_files_to_replay(request, services) if key not in retry_keys]
        if replaying
        else []
    )
    replayed_names = set(to_replay)
    next_retry_number = len(retry_keys)

    def write_retry(entries: list[RetryEntry]) -> None:
        nonlocal next_retry_number
        while True:
            key = _retry_file_key(services, request, invocation, next_retry_number)
            next_retry_number += 1
            # An attempt of this invocation that died after replaying may have left files of these
            # names; they are replayed now and must not be overwritten before they are.
            if key not in replayed_names:
                break
        services.artifacts.put(key, encode_retry_file(entries), "application/x-ndjson")
        retry_keys.append(key)

    def save_checkpoint(resume_point: Any, current: RunCounters, *, still_replaying: bool = False) -> None:
        services.checkpoints.save(
            Checkpoint(
                run_id=request.run_id,
                scope=request.scope,
                resume=resume_point.to_dict() if resume_point is not None else {},
                counters=current.to_dict(),
                updated_at=time.time(),
                parts={
                    "rejects": segments + rejects.segment_keys,
                    "retry": retry_keys,
                    "invocations": invocation,
                    "warnings": warnings,
                    "missing_columns": missing_columns,
                    "replaying": still_replaying,
                },
            ),
            part.part_id,
        )

    # Users with an undelivered object: of the retry files this part wrote in earlier invocations
    # and those of the run's replay; the replay and the run below add to it.
    held_users = _users_in_retry_files(services, [*retry_keys, *part.held_from])
    if replaying:
        replayed_all = _replay_retry_files(
            to_replay,
            services,
            counters,
            rejects,
            write_retry,
            held_users=held_users,
            should_stop=should_stop,
        )
        if not replayed_all:
            # Near the deadline: the next invocation goes on replaying before any row is read.
            save_checkpoint(None, counters, still_replaying=True)
            logger.info("replay paused at a checkpoint", extra={"run_id": request.run_id})
            return PartOutcome(False, counters)
        if on_replayed is not None:
            on_replayed(list(retry_keys))
            # The other parts are started: a redelivered message of this invocation must not
            # replay and start them again.
            save_checkpoint(None, counters)

    engine = services.engine(rejects, write_retry, counters, held_users)
    mapper = get_integration(request.mapping.integration).transformer(request.mapping)
    spec = SourceSpec.model_validate(request.mapping.source.model_dump())

    failure: str | None = None
    result: RunResult
    try:
        # Checked by every invocation, resumed ones too: a continuation loads the mapping again, and
        # reading a header costs a few small reads.
        fit = _fit_columns(request, spec, mapper, services)
        _extend_unique(warnings, fit.warnings)
        _extend_unique(missing_columns, fit.missing)
        if fit.failure is not None:
            # Nothing of the file is sent: rows mapped without the columns would write nothing
            # where values were meant, or unset attributes for every user.
            result = RunResult(engine.counters, finished=True)
            failure = fit.failure
        else:
            with open_rows(
                request.location,
                spec,
                s3_client=services.s3_client,
                resume=resume,
                byte_range=part.byte_range,
            ) as rows:
                result = engine.run(
                    rows,
                    fit.mapper,
                    scope=request.scope,
                    should_stop=should_stop,
                    on_drained=save_checkpoint,
                    progress=progress,
                )
    except SourceError as error:
        # The file cannot be read on (bad header, corrupt block, object replaced mid-read): what was
        # read is applied and committed; the report says where and why reading stopped.
        logger.error("source unreadable", extra={"run_id": request.run_id, "reason": error.reason})
        engine.counters.reject("unreadable file")
        rejects.add(
            RowIssue(
                RowPosition(error.source, error.row or 0, error.offset), None, "unreadable file", error.reason
            )
        )
        rejects.flush()
        result = RunResult(engine.counters, finished=True, aborted_reason=None)
        failure = str(error)
    if not result.finished:
        save_checkpoint(result.resume, result.counters)
        logger.info(
            "run paused at a checkpoint",
            extra={"run_id": request.run_id, "part": part.part_id, "rows_read": result.counters.rows_read},
        )
        return PartOutcome(False, result.counters, aborted_reason=result.aborted_reason)

    all_segments = segments + rejects.segment_keys
    summary = {
        "counters": result.counters.to_dict(),
        "failure": failure,
        "rejects": all_segments,
        "retry": retry_keys,
        "warnings": warnings,
        "missing_columns": missing_columns,
        "finished_at": time.time(),
    }
    if part.parts > 1:
        if not services.checkpoints.mark_done(request.run_id, part.part_id, summary, total_parts=part.parts):
            return PartOutcome(True, result.counters)
        return _report_parts(request, services)
    report, location = _write_report(
        request,
        services,
        counters=result.counters,
        reject_segments=all_segments,
        retry_keys=retry_keys,
        failure=failure,
        warnings=warnings,
        missing_columns=missing_columns,
    )
    return PartOutcome(True, result.counters, report, location)


def _end_part_again(request: JobRequest, services: JobServices, summary: dict[str, Any]) -> PartOutcome:
    """A part that already ended ends again from its stored summary, without reading anything.

    mark_done answers True again only to the part that completed the run, so a completing
    invocation that died before the report was written still writes it, and no other does.
    """
    part = request.part
    logger.info("part already ended; not read again", extra={"run_id": request.run_id, "part": part.part_id})
    if not services.checkpoints.mark_done(request.run_id, part.part_id, summary, total_parts=part.parts):
        return PartOutcome(True, RunCounters.from_dict(summary.get("counters", {})))
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
    segments: list[str] = []
    retry_keys: list[str] = []
    warnings: list[str] = []
    missing_columns: list[str] = []
    failures: dict[str, list[str]] = {}
    for done in done_parts:
        summary = done.summary or {}
        segments.extend(summary.get("rejects", []))
        retry_keys.extend(summary.get("retry", []))
        _extend_unique(warnings, summary.get("warnings", []))
        _extend_unique(missing_columns, summary.get("missing_columns", []))
        if summary.get("failure"):
            failures.setdefault(str(summary["failure"]), []).append(done.part)
    merged = _merged_counters(done_parts)
    # Every part checks the same header: one failure of them all is said once, naming its parts.
    failure = "; ".join(
        f"part{'s' if len(parts) > 1 else ''} {', '.join(parts)}: {message}"
        for message, parts in failures.items()
    )
    report, location = _write_report(
        request,
        services,
        counters=merged,
        reject_segments=segments,
        retry_keys=retry_keys,
        failure=failure or None,
        warnings=warnings,
        missing_columns=sorted(missing_columns),
    )
    return PartOutcome(True, merged, report, location)


def _merged_counters(done_parts: list[Checkpoint]) -> RunCounters:
    merged = RunCounters()
    for done in done_parts:
        merged.merge(RunCounters.from_dict((done.summary or {}).get("counters", {})))
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
    request: JobRequest, spec: SourceSpec, mapper: RecordTransformer, services: JobServices
) -> ColumnFit:
    """Checks the file's header (or Avro schema) against the mapping before any row is mapped.

    A column the mapping names but the file lacks is empty in every row, and nothing says so
    otherwise. Messages name files and columns, never cell values.
    """
    declared = read_declared_columns(request.location, spec, s3_client=services.s3_client)
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
    # One mapper reads every member of a zip: an optional field can only be left out for all of
    # them, and a clear field left in would unset its attribute for the members without the column.
    partly = skipped_somewhere - (skipped_everywhere or set())
    cleared_partly = sorted(
        {
            field.column
            for field in mapper.config.fields
            if field.column in partly and field.strategy is Strategy.CLEAR
        }
    )
    for column in cleared_partly:
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


def _report_key(request: JobRequest, services: JobServices) -> str:
    return f"{services.reports_prefix}{request.report_stem}.json"


def _write_report(
    request: JobRequest,
    services: JobServices,
    *,
    counters: RunCounters,
    reject_segments: list[str],
    retry_keys: list[str],
    failure: str | None,
    warnings: list[str],
    missing_columns: list[str],
) -> tuple[dict[str, Any], str]:
    stem = f"{services.reports_prefix}{request.report_stem}"
    rejects_location = merge_rejects(services.artifacts, reject_segments, f"{stem}.rejects.csv")
    finished = datetime.now(UTC)
    report: dict[str, Any] = {
        "run_id": request.run_id,
        "status": "failed" if failure else "completed",
        "failure": failure,
        "integration": request.integration,
        "source": request.location,
        "version": request.version,
        "started_at": request.started_at.isoformat(),
        "finished_at": finished.isoformat(),
        "duration_s": round((finished - request.started_at).total_seconds(), 3),
        "parts": request.part.parts,
        "dry_run": services.options.dry_run,
        "full_refresh": services.options.full_refresh,
        "track_cap": {"mode": services.options.track_cap.mode, "limit": services.options.track_cap.limit},
        **counters.to_dict(),
        "rejects_file": rejects_location,
        "retry_files": [f"{key}" for key in retry_keys],
        "missing_columns": missing_columns,
        "warnings": warnings,
    }
    location = services.artifacts.put(
        _report_key(request, services), orjson.dumps(report, option=orjson.OPT_INDENT_2), "application/json"
    )
    report["report_file"] = location
    return report, location
