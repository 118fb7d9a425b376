"""Braze segment exports into the drop bucket, waited for across invocations, then converted.

One export run goes through these phases:

- ``starting``: POST /users/export/segment (output_format gzip: Braze writes JSON lines into the
  bucket its S3 export credentials name). A 429 "export in progress" (one export per segment at a
  time) is waited out with backoff, never failed.
- ``waiting``: the object prefix ``<path>/segment-export/<segment_id>/<date>/<object_prefix>/`` is
  listed with backoff; the export is ready when files are present and the listing has not changed
  for a quiet period. Braze gives no completion signal in the bucket, and big exports take up to an
  hour, so the whole wait is bounded by ``max_wait_s``.
- ``done`` / ``failed``: the files are streamed (``cdpbridge.sources.open_rows``, gzip JSON lines)
  through the integration's writer into ``outbound/<integration>/<folder>/<YYYY-MM-DD>/<run>.<ext>``
  with a multipart upload (memory stays flat), and a report JSON goes to
  ``reports/<integration>-export/<YYYY-MM-DD>/<run>.json``.

The job is kept in the run-state table through the CheckpointStore after every step, so a wait
longer than what is left of an invocation continues in a new one: the caller gets a delay and puts a
continuation message (DelaySeconds <= 900) on the function's own queue. A continuation carries the
job's ``token``; a message whose token is not the stored one is a duplicate delivery and is dropped.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any, Final, Literal, Protocol, Self

import orjson
import yaml
from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cdpbridge.braze import BrazeClient, BrazePermanentError, ExportInProgress
from cdpbridge.exports.multipart import S3StreamingUpload
from cdpbridge.mapping.config import ConfigYamlLoader
from cdpbridge.records import RejectedRow
from cdpbridge.sources import SourceFormat, SourceSpec, open_rows
from cdpbridge.state import Checkpoint, CheckpointStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = Logger(child=True)

# The part under which an export run keeps its job in the CheckpointStore.
EXPORT_PART: Final = "export"
# SQS refuses a DelaySeconds above 15 minutes.
MAX_SQS_DELAY_S: Final = 900

# Field names /users/export/segment takes in fields_to_export (Braze's export reference). Custom
# attributes are not among them: they come inside custom_attributes.
EXPORT_FIELDS: Final = frozenset(
    {
        "apps",
        "attributed_ad",
        "attributed_adgroup",
        "attributed_campaign",
        "attributed_source",
        "braze_id",
        "campaigns_received",
        "canvases_received",
        "cards_clicked",
        "country",
        "created_at",
        "custom_attributes",
        "custom_events",
        "devices",
        "dob",
        "email",
        "email_opted_in_at",
        "email_subscribe",
        "email_unsubscribed_at",
        "external_id",
        "facebook",
        "first_name",
        "gender",
        "home_city",
        "image_url",
        "bio",
        "language",
        "last_coordinates",
        "last_name",
        "phone",
        "purchases",
        "push_opted_in_at",
        "push_subscribe",
        "push_tokens",
        "push_unsubscribed_at",
        "random_bucket",
        "subscription_groups",
        "time_zone",
        "total_revenue",
        "twitter",
        "uninstalled_at",
        "user_aliases",
    }
)
CUSTOM_ATTRIBUTES: Final = "custom_attributes"
USER_ALIASES: Final = "user_aliases"


class SegmentExportError(Exception):
    """An export that cannot succeed as configured; the message says which segment and why."""


class SegmentResolutionError(SegmentExportError, ValueError):
    """A segment name matched no segment or several, or an id/name is unknown."""


# ------------------------------------------------------------------------------- config models


class ExportModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SegmentRef(ExportModel):
    """Which segment to export: ``{id: ...}``, ``{name: ...}``, or a bare text (an id, else a name)."""

    id: str | None = Field(default=None, min_length=1)
    name: str | None = Field(default=None, min_length=1)
    id_or_name: str | None = Field(default=None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _bare_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"id_or_name": value}
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [name for name in ("id", "name", "id_or_name") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of id and name (or the segment as plain text)")
        return self

    def describe(self) -> str:
        if self.id is not None:
            return f"id {self.id!r}"
        if self.name is not None:
            return f"name {self.name!r}"
        return repr(self.id_or_name)


class SegmentExportConfig(ExportModel):
    """What every segment export config holds; integrations add the shape of their output."""

    segment: SegmentRef
    output_folder: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._=-]{0,127}$",
        description="Folder under outbound/<integration>/; default: the segment id.",
    )

    def export_fields(self) -> list[str]:
        """fields_to_export for /users/export/segment."""
        raise NotImplementedError

    def export_custom_attributes(self) -> list[str] | None:
        """custom_attributes_to_export, or None for every custom attribute."""
        return None


@dataclass(frozen=True, slots=True)
class ResolvedSegment:
    id: str
    name: str | None


def resolve_segment(client: BrazeClient, ref: SegmentRef) -> ResolvedSegment:
    """An id is used as given; a name (or a bare text) is looked up in /segments/list."""
    if ref.id is not None:
        return ResolvedSegment(ref.id, None)
    segments = list(client.list_segments())
    if ref.id_or_name is not None:
        by_id = [segment for segment in segments if segment.id == ref.id_or_name]
        if by_id:
            return ResolvedSegment(by_id[0].id, by_id[0].name)
    wanted = ref.name if ref.name is not None else ref.id_or_name
    assert wanted is not None
    named = [segment for segment in segments if segment.name == wanted]
    if len(named) == 1:
        return ResolvedSegment(named[0].id, named[0].name)
    if not named:
        folded = [s.name for s in segments if s.name.casefold() == wanted.casefold()]
        hint = f"; did you mean {', '.join(repr(n) for n in sorted(folded))}?" if folded else ""
        what = "no segment id or name" if ref.id_or_name is not None else "no segment named"
        raise SegmentResolutionError(
            f"{what} {wanted!r} among the workspace's {len(segments)} segments{hint}"
        )
    ids = ", ".join(sorted(segment.id for segment in named))
    raise SegmentResolutionError(
        f"{len(named)} segments are named {wanted!r} (ids {ids}): give the segment by id instead"
    )


# ------------------------------------------------------------------------------- waiting


@dataclass(frozen=True, slots=True)
class ExportWaitPolicy:
    """How long and how often an export is waited for."""

    initial_s: float = 10.0  # BlueConic polls every 10 s; the first look is no sooner
    max_s: float = 120.0
    factor: float = 1.5
    # Files present and the listing unchanged this long: Braze has finished writing.
    quiet_s: float = 30.0
    # Braze documents big exports taking up to an hour.
    max_wait_s: float = 3600.0

    def delay(self, attempt: int) -> float:
        return min(self.max_s, self.initial_s * self.factor ** max(0, attempt))


Phase = Literal["starting", "waiting", "done", "failed"]


@dataclass(slots=True)
class ExportJob:
    """Everything a later invocation needs to carry on; stored as JSON in the run-state table."""

    run_id: str
    integration: str
    config: dict[str, Any]
    segment_id: str
    segment_name: str | None
    started_at: float
    next_action_at: float
    phase: Phase = "starting"
    object_prefix: str | None = None
    requested_at: float | None = None
    export_prefix: str | None = None
    attempt: int = 0
    start_attempts: int = 0
    in_progress_waits: int = 0
    polls: int = 0
    invocations: int = 1
    listing_digest: str = ""
    listing_count: int = 0
    listing_bytes: int = 0
    stable_since: float | None = None
    ready_at: float | None = None
    token: int = 0
    failure: str | None = None
    report_location: str | None = None
    # Conversions handed to a fresh invocation because this one had too little time left.
    convert_deferrals: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExportJob:
        known = {spec.name: data[spec.name] for spec in fields(cls) if spec.name in data}
        return cls(**known)

    @property
    def started(self) -> datetime:
        return datetime.fromtimestamp(self.started_at, UTC)


class ExportJobStore:
    """Export jobs on the CheckpointStore (the run-state table in Lambda, SQLite on a laptop)."""

    def __init__(self, checkpoints: CheckpointStore) -> None:
        self.checkpoints = checkpoints

    def load(self, run_id: str) -> ExportJob | None:
        checkpoint = self.checkpoints.load(run_id, EXPORT_PART)
        if checkpoint is None or "export_job" not in checkpoint.parts:
            return None
        return ExportJob.from_dict(dict(checkpoint.parts["export_job"]))

    def save(self, job: ExportJob) -> None:
        self.checkpoints.save(
            Checkpoint(
                run_id=job.run_id,
                scope=f"segment-export:{job.integration}:{job.segment_id}",
                updated_at=time.time(),
                parts={"export_job": job.to_dict()},
            ),
            EXPORT_PART,
        )


# ------------------------------------------------------------------------------- reading the export


@dataclass(slots=True)
class ExportReadCounters:
    users: int = 0
    unreadable_lines: int = 0
    files: int = 0
    bytes: int = 0


def iter_exported_users(
    s3: S3Client, bucket: str, keys: Iterable[str], counters: ExportReadCounters
) -> Iterator[dict[str, Any]]:
    """Every user of the export files, one JSON object at a time (gzip, zip or plain JSON lines)."""
    spec = SourceSpec(format=SourceFormat.JSONL)
    for key in keys:
        counters.files += 1
        with open_rows(f"s3://{bucket}/{key}", spec, s3_client=s3) as rows:
            for row in rows:
                if isinstance(row, RejectedRow):
                    counters.unreadable_lines += 1
                    reason = row.issues[0].reason if row.issues else "unreadable"
                    logger.warning(
                        "unreadable export line",
                        extra={"key": key, "line": row.position.row, "reason": reason},
                    )
                    continue
                counters.users += 1
                yield row.values


# ------------------------------------------------------------------------------- the integration side


@dataclass(slots=True)
class OutputCounters:
    rows_written: int = 0
    users_skipped: int = 0  # e.g. no identifier value to write


class OutputWriter(Protocol):
    def __call__(self, config: Any, users: Iterable[dict[str, Any]], out: IO[str]) -> OutputCounters: ...


@dataclass(frozen=True, slots=True)
class ExportIntegration:
    """What an integration adds to a segment export: its config model and its output format."""

    name: str
    config_model: type[SegmentExportConfig]
    write_output: OutputWriter
    file_suffix: str = ".csv"
    content_type: str = "text/csv; charset=utf-8"

    def parse_config(self, data: Any, source: str) -> SegmentExportConfig:
        from pydantic import ValidationError  # noqa: PLC0415 - only on the error path's caller

        try:
            return self.config_model.model_validate(data)
        except ValidationError as error:
            problems = [
                f"{'.'.join(str(part) for part in item['loc']) or '(config)'}: {item['msg']}"
                for item in error.errors(include_url=False)
            ]
            raise SegmentExportError(
                f"{source}: invalid {self.name} export config:\n  " + "\n  ".join(problems)
            ) from None


# ------------------------------------------------------------------------------- running an export


@dataclass(slots=True)
class ExportStep:
    """What ``advance`` left: finished (report written), or to be continued after ``delay_s``."""

    job: ExportJob
    finished: bool
    delay_s: float = 0.0
    report: dict[str, Any] | None = None


@dataclass(slots=True)
class SegmentExporter:
    """Runs export jobs; one instance per invocation, holding the clients it was given."""

    integration: ExportIntegration
    client: BrazeClient
    s3: S3Client
    bucket: str
    jobs: ExportJobStore
    policy: ExportWaitPolicy = field(default_factory=ExportWaitPolicy)
    export_path: str = ""
    outbound_prefix: str = "outbound/"
    reports_prefix: str = "reports/"
    # Waits up to this long are slept inside the invocation; longer ones are handed to a new one.
    inline_wait_max_s: float = 60.0
    # Converting needs at least this much of the invocation left, else it starts in a fresh one.
    convert_min_budget_s: float = 300.0
    part_bytes: int = 8 * 1024 * 1024
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    # -- entry points --------------------------------------------------------------------------

    def begin(self, config: SegmentExportConfig, *, run_id: str | None = None) -> ExportJob:
        """Resolves the segment and stores a new job; the export request itself is the first step."""
        segment = resolve_segment(self.client, config.segment)
        now = self.clock()
        started = datetime.fromtimestamp(now, UTC)
        digest = hashlib.sha256(f"{segment.id}@{now}".encode()).hexdigest()[:10]
        job = ExportJob(
            run_id=run_id or f"{started:%Y%m%dT%H%M%SZ}-{digest}",
            integration=self.integration.name,
            config=config.model_dump(mode="json", exclude_none=True),
            segment_id=segment.id,
            segment_name=segment.name,
            started_at=now,
            next_action_at=now,
        )
        self.jobs.save(job)
        logger.info(
            "segment export run started",
            extra={"run_id": job.run_id, "segment_id": segment.id, "integration": job.integration},
        )
        return job

    def advance(self, job: ExportJob, budget_s: Callable[[], float]) -> ExportStep:
        """Works on the job until it is finished or the next step lies beyond this invocation.

        ``budget_s`` says how many seconds of the invocation are left for work (deadline minus the
        safety margin). The job is saved after every step, so a crash loses at most one step.
        """
        config = self.integration.parse_config(job.config, f"export run {job.run_id}")
        while job.phase in ("starting", "waiting"):
            wait_s = job.next_action_at - self.clock()
            if budget_s() <= 0:
                return ExportStep(job, finished=False, delay_s=max(0.0, wait_s))
            if wait_s > 0:
                if wait_s > self.inline_wait_max_s or wait_s > budget_s():
                    return ExportStep(job, finished=False, delay_s=wait_s)
                self.sleep(wait_s)
            if self.clock() - job.started_at > self.policy.max_wait_s:
                return self._fail(job, self._timeout_reason(job))
            if job.phase == "starting":
                try:
                    self._start(job, config)
                except (BrazePermanentError, SegmentExportError) as error:
                    # Asking again cannot help (unknown segment, missing permission, no S3 export
                    # credentials in Braze): the run ends with a report that says why.
                    return self._fail(job, f"segment {job.segment_id}: {error}")
            else:
                self._poll(job)
            self.jobs.save(job)
        if job.phase == "failed":
            return ExportStep(job, finished=True, report=None)
        if job.report_location is not None:
            return ExportStep(job, finished=True)
        budget = budget_s()
        if budget < self.convert_min_budget_s:
            if job.convert_deferrals == 0:
                # A fresh invocation has the whole timeout for converting.
                job.convert_deferrals += 1
                self.jobs.save(job)
                return ExportStep(job, finished=False, delay_s=0.0)
            # The fresh invocation had no more time than this: the function's timeout is below the
            # configured minimum, and handing on again would loop without end. Convert now.
            logger.warning(
                "converting with less time than EXPORT_CONVERT_MIN_BUDGET_S; raise the function's timeout",
                extra={
                    "run_id": job.run_id,
                    "budget_s": round(budget, 1),
                    "convert_min_budget_s": self.convert_min_budget_s,
                },
            )
        return ExportStep(job, finished=True, report=self._convert(job, config))

    # -- steps ---------------------------------------------------------------------------------

    def _start(self, job: ExportJob, config: SegmentExportConfig) -> None:
        job.start_attempts += 1
        try:
            started = self.client.export_segment(
                job.segment_id,
                config.export_fields(),
                custom_attributes_to_export=config.export_custom_attributes(),
                output_format="gzip",
            )
        except ExportInProgress:
            # Another export of this segment runs (ours from an earlier schedule, or BlueConic's own).
            job.in_progress_waits += 1
            job.next_action_at = self.clock() + self.policy.delay(job.attempt)
            job.attempt += 1
            logger.info(
                "segment export in progress elsewhere; waiting",
                extra={"run_id": job.run_id, "segment_id": job.segment_id, "waits": job.in_progress_waits},
            )
            return
        if not started.object_prefix:
            raise SegmentExportError(
                f"segment {job.segment_id}: Braze answered without an object_prefix (url={started.url!r}); "
                "the workspace needs S3 export credentials that point at the drop bucket"
            )
        now = self.clock()
        job.phase = "waiting"
        job.object_prefix = started.object_prefix
        job.requested_at = now
        job.attempt = 0
        job.next_action_at = now + self.policy.initial_s
        logger.info(
            "segment export requested",
            extra={"run_id": job.run_id, "segment_id": job.segment_id, "object_prefix": job.object_prefix},
        )

    def _candidate_prefixes(self, job: ExportJob) -> list[str]:
        if job.export_prefix is not None:
            return [job.export_prefix]
        assert job.requested_at is not None and job.object_prefix is not None
        requested = datetime.fromtimestamp(job.requested_at, UTC).date()
        base = "/".join(
            part for part in (self.export_path.strip("/"), "segment-export", job.segment_id) if part
        )
        # Braze names the folder by its own clock's date: around midnight that may be either day.
        days = (requested, requested - timedelta(days=1), requested + timedelta(days=1))
        return [f"{base}/{day:%Y-%m-%d}/{job.object_prefix}/" for day in days]

    def _list(self, prefix: str) -> list[tuple[str, int, str]]:
        found: list[tuple[str, int, str]] = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            found.extend(
                (item["Key"], int(item.get("Size", 0)), str(item.get("ETag", "")))
                for item in page.get("Contents", [])
            )
        return sorted(found)

    def _poll(self, job: ExportJob) -> None:
        job.polls += 1
        listing: list[tuple[str, int, str]] = []
        for prefix in self._candidate_prefixes(job):
            listing = self._list(prefix)
            if listing:
                job.export_prefix = prefix
                break
        now = self.clock()
        if not listing:
            job.next_action_at = now + self.policy.delay(job.attempt)
            job.attempt += 1
            return
        digest = hashlib.sha256(orjson.dumps(listing)).hexdigest()
        if digest != job.listing_digest:
            job.listing_digest = digest
            job.listing_count = len(listing)
            job.listing_bytes = sum(size for _, size, _ in listing)
            job.stable_since = now
            job.next_action_at = now + self.policy.quiet_s
            return
        assert job.stable_since is not None
        quiet_for = now - job.stable_since
        if quiet_for >= self.policy.quiet_s:
            job.phase = "done"
            job.ready_at = now
            logger.info(
                "segment export ready",
                extra={"run_id": job.run_id, "files": job.listing_count, "bytes": job.listing_bytes},
            )
            return
        job.next_action_at = job.stable_since + self.policy.quiet_s

    def _timeout_reason(self, job: ExportJob) -> str:
        waited = f"within {self.policy.max_wait_s:g} s"
        if job.phase == "starting":
            return (
                f"segment {job.segment_id}: another export of it was still in progress after "
                f"{job.in_progress_waits} attempts {waited}"
            )
        if job.listing_count == 0:
            return f"segment {job.segment_id}: Braze wrote no export files under {job.object_prefix} {waited}"
        return (
            f"segment {job.segment_id}: the export files under {job.export_prefix} were still changing "
            f"{waited}"
        )

    def _fail(self, job: ExportJob, reason: str) -> ExportStep:
        job.phase = "failed"
        job.failure = reason
        report = self._write_report(job, status="failed")
        self.jobs.save(job)
        logger.error("segment export failed", extra={"run_id": job.run_id, "reason": reason})
        return ExportStep(job, finished=True, report=report)

    # -- converting and reporting --------------------------------------------------------------

    def output_key(self, job: ExportJob, config: SegmentExportConfig) -> str:
        folder = config.output_folder or job.segment_id
        return (
            f"{self.outbound_prefix}{self.integration.name}/{folder}/{job.started:%Y-%m-%d}/"
            f"{job.run_id}{self.integration.file_suffix}"
        )

    def _convert(self, job: ExportJob, config: SegmentExportConfig) -> dict[str, Any]:
        assert job.export_prefix is not None
        listing = self._list(job.export_prefix)
        keys = [key for key, _, _ in listing]
        key = self.output_key(job, config)
        upload = S3StreamingUpload(
            self.s3, self.bucket, key, content_type=self.integration.content_type, part_bytes=self.part_bytes
        )
        read = ExportReadCounters()
        converting_started = self.clock()
        try:
            # newline="" hands the writer's line endings through untouched (csv writes CRLF itself).
            text = io.TextIOWrapper(
                io.BufferedWriter(upload, buffer_size=1024 * 1024), encoding="utf-8", newline=""
            )
            written = self.integration.write_output(
                config, iter_exported_users(self.s3, self.bucket, keys, read), text
            )
            text.flush()
            location = upload.complete()
            text.close()
        except BaseException:
            upload.abort()
            raise
        report = self._write_report(
            job,
            status="completed",
            extra={
                "export_files": keys,
                "export_bytes": sum(size for _, size, _ in listing),
                "users": read.users,
                "unreadable_lines": read.unreadable_lines,
                "rows_written": written.rows_written,
                "users_skipped": written.users_skipped,
                "files": [location],
                "output_bytes": upload.bytes_written,
                "convert_s": round(self.clock() - converting_started, 3),
            },
        )
        self.jobs.save(job)
        logger.info(
            "segment export converted",
            extra={"run_id": job.run_id, "users": read.users, "rows": written.rows_written, "file": location},
        )
        return report

    def _write_report(
        self, job: ExportJob, *, status: str, extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        finished = self.clock()
        requested = job.requested_at
        report: dict[str, Any] = {
            "run_id": job.run_id,
            "integration": job.integration,
            "status": status,
            "failure": job.failure,
            "segment": {"id": job.segment_id, "name": job.segment_name},
            "object_prefix": job.object_prefix,
            "export_prefix": job.export_prefix,
            "started_at": job.started.isoformat(),
            "finished_at": datetime.fromtimestamp(finished, UTC).isoformat(),
            "duration_s": round(finished - job.started_at, 3),
            "waits": {
                "start_attempts": job.start_attempts,
                "in_progress_waits": job.in_progress_waits,
                "polls": job.polls,
                "invocations": job.invocations,
                "waited_for_start_s": round((requested or finished) - job.started_at, 3),
                "waited_for_files_s": round((job.ready_at or finished) - requested, 3) if requested else None,
            },
            "users": 0,
            "files": [],
            **(extra or {}),
        }
        key = f"{self.reports_prefix}{job.integration}-export/{job.started:%Y-%m-%d}/{job.run_id}.json"
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=orjson.dumps(report, option=orjson.OPT_INDENT_2),
            ContentType="application/json",
            ServerSideEncryption="AES256",
        )
        job.report_location = f"s3://{self.bucket}/{key}"
        report["report_file"] = job.report_location
        return report


def sqs_delay_seconds(delay_s: float) -> int:
    """DelaySeconds for a continuation: whole seconds, at most SQS's 15 minutes."""
    return max(0, min(MAX_SQS_DELAY_S, math.ceil(delay_s)))


def csv_writer(out: IO[str]) -> Any:
    """RFC 4180 CSV (quoted as needed, CRLF line ends), as spreadsheet and CDP importers expect."""
    return csv.writer(out, dialect="excel", lineterminator="\r\n")


def parse_export_document(text: str, source: str) -> Any:
    """YAML or JSON text of an export config, read like mapping configs: YAML 1.2 booleans (a
    segment named "NO" stays text) and no silently repeated keys."""
    try:
        if text.lstrip().startswith("{"):
            return orjson.loads(text)
        return yaml.load(text, Loader=ConfigYamlLoader)  # nosec B506 # noqa: S506 - a SafeLoader subclass
    except (orjson.JSONDecodeError, yaml.YAMLError) as error:
        raise SegmentExportError(f"{source}: not valid YAML or JSON: {error}") from None
