"""Routing one Currents file: read, drop events already routed, hand the rest to each route, commit.

A file is routed in segments. Within a segment every chunk (at most one Lytics batch) is
deduplicated against the state and the events routed before it, posted to Lytics, and added to
the segment's JSON-lines output and engagement observations in memory. A segment commits in this
order: its JSON-lines file is written (named after the segment's first record, so writing it again
replaces it), engagement observations recorded (each tagged with its event, so recording it again
adds nothing), its events marked routed, then the file's progress saved. A failure commits what
the chunks before it completed and re-raises; the next delivery resumes at the failing chunk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from aws_lambda_powertools import Logger

from cdpbridge.currents.config import CurrentsConfig
from cdpbridge.currents.engagement_route import ENGAGEMENT_EVENT_TYPES, EngagementBatch, add_observations
from cdpbridge.currents.jsonlines import JsonLinesGzip, output_key
from cdpbridge.currents.layout import CurrentsKey
from cdpbridge.currents.lytics import LyticsClient
from cdpbridge.currents.outputs import OutputStore
from cdpbridge.currents.reader import ByteStream, Chunk, CurrentsFile, Record
from cdpbridge.currents.report import RouteReport, Unreadable
from cdpbridge.currents.state import EVENT_KEY_BYTES, CurrentsState, FileProgress, segment_tag
from cdpbridge.engagement.model import EngagementKind
from cdpbridge.engagement.store import EngagementStore

logger = Logger(child=True)


class CurrentsRouteError(RuntimeError):
    """Routing cannot start: a route is switched on without what it needs (a Lytics client...)."""


class DeadlineReachedError(RuntimeError):
    """The invocation is about to time out; progress is committed and the next delivery resumes."""


@dataclass
class RouterServices:
    config: CurrentsConfig
    state: CurrentsState
    outputs: OutputStore | None = None
    lytics: LyticsClient | None = None
    engagement: EngagementStore | None = None
    # Seconds left in the invocation (Lambda); None when there is no deadline.
    time_left_s: Callable[[], float] | None = None
    deadline_margin_s: float = 20.0


@dataclass(frozen=True, slots=True)
class FilePlan:
    """Which routes take one file's event type (one file holds one event type)."""

    source: CurrentsKey
    location: str
    file_id: str
    files: bool
    lytics: bool
    engagement: EngagementKind | None
    chunk_size: int


@dataclass(slots=True)
class Segment:
    first_index: int
    tag: bytes  # state.segment_tag: the segment's own marks never count as routed elsewhere
    read: int = 0
    keys: list[bytes] = field(default_factory=list)
    jsonl: JsonLinesGzip | None = None
    engagement: EngagementBatch = field(default_factory=EngagementBatch)
    lytics_events: int = 0
    committing: bool = False


class CurrentsRouter:
    def __init__(self, services: RouterServices, report: RouteReport | None = None) -> None:
        self.services = services
        self.report = report if report is not None else RouteReport()

    def plan(self, source: CurrentsKey, location: str, file_id: str) -> FilePlan:
        routes = self.services.config.routes
        event_type = source.event_type
        files = routes.files.takes(event_type) and bool(routes.files.destinations)
        lytics = routes.lytics.takes(event_type)
        kind = ENGAGEMENT_EVENT_TYPES.get(event_type) if routes.engagement.enabled else None
        if files and self.services.outputs is None:
            raise CurrentsRouteError("the files route is on but no output location is configured")
        if lytics and self.services.lytics is None:
            raise CurrentsRouteError("the lytics route is on but no Lytics URL and token are configured")
        if kind is not None and self.services.engagement is None:
            raise CurrentsRouteError("the engagement route is on but no engagement store is configured")
        size = self.services.config.chunk_records
        if lytics:
            # One chunk is one Lytics request: it is posted whole or not at all.
            size = min(size, routes.lytics.batch_size)
        return FilePlan(source, location, file_id, files, lytics, kind, size)

    def route(self, stream: ByteStream, source: CurrentsKey, *, location: str, version: str) -> None:
        """Routes the file at ``location`` (its content identified by ``version``) from where it
        stopped last time; a file already routed whole is skipped without being read."""
        report = self.report
        report.files += 1
        file_id = f"{location}@{version}"
        plan = self.plan(source, location, file_id)
        progress = self.services.state.load_progress(file_id)
        if progress is not None and progress.done:
            report.files_already_routed += 1
            logger.info("file already routed", extra={"file": location})
            return
        start = progress.next_index if progress is not None else 0
        if start:
            report.files_resumed += 1
        opened = CurrentsFile(stream, location, source.event_type)
        # The schema's own fields, so the output never gets a second "event_type" key.
        field_names = [str(item.get("name")) for item in opened.schema.get("fields", [])]
        _FileRun(self, plan, opened, field_names).run(start)

    def refuse(self, location: str, reason: str) -> None:
        """Records a file that cannot be routed at all (not Avro, wrong layout, wrong event type)."""
        self.report.files += 1
        self.report.unreadable.append(Unreadable(location, None, reason))
        logger.warning("file not routed", extra={"file": location, "reason": reason})


class _FileRun:
    """The routing of one file, segment by segment."""

    def __init__(
        self, router: CurrentsRouter, plan: FilePlan, opened: CurrentsFile, fields: list[str]
    ) -> None:
        self.services = router.services
        self.report = router.report
        self.plan = plan
        self.opened = opened
        self.field_names = fields
        self.key_prefix = f"{plan.source.event_type}\x1f"
        # Keys taken in this segment and the one before: duplicates inside a file never reach a route
        # twice (older segments' keys are in the state, read back by then); memory stays bounded.
        self.taken: set[bytes] = set()

    def new_segment(self, first_index: int) -> Segment:
        files = self.services.config.routes.files
        jsonl = (
            JsonLinesGzip(self.plan.source.event_type, files.gzip_level, field_names=self.field_names)
            if self.plan.files
            else None
        )
        return Segment(first_index, segment_tag(self.plan.file_id, first_index), jsonl=jsonl)

    def run(self, start: int) -> None:
        config = self.services.config
        segment = self.new_segment(start)
        next_index = start
        try:
            for chunk in self.opened.chunks(start, self.plan.chunk_size):
                self.route_chunk(chunk, segment)
                next_index = chunk.end_index
                if segment.read >= config.segment_records:
                    self.commit(segment, next_index, done=False)
                    self.taken = set(segment.keys)
                    segment = self.new_segment(next_index)
                if self.deadline_near():
                    self.commit(segment, next_index, done=False)
                    raise DeadlineReachedError(
                        f"{self.plan.file_id}: stopped at record {next_index} near the deadline"
                    )
        except DeadlineReachedError:
            raise
        except Exception:
            # Keep what the chunks before the failure completed; the next delivery resumes after it
            # (unless committing itself failed: then the segment is routed again, which is safe).
            if not segment.committing:
                self.commit(segment, next_index, done=False)
            raise
        self.commit(segment, next_index, done=True)

    def deadline_near(self) -> bool:
        time_left = self.services.time_left_s
        return time_left is not None and time_left() < self.services.deadline_margin_s

    def event_keys(self, records: list[Record], chunk: Chunk) -> tuple[list[Record], list[bytes]]:
        prefix = self.key_prefix
        blake2b = hashlib.blake2b
        try:
            keys = [
                blake2b((prefix + record["id"]).encode(), digest_size=EVENT_KEY_BYTES).digest()
                for record in records
            ]
            return records, keys
        except (KeyError, TypeError):
            pass  # some record lacks a text id: sort them out one by one
        kept: list[Record] = []
        keys = []
        for position, record in enumerate(records):
            event_id = record.get("id")
            if not isinstance(event_id, str) or not event_id:
                reason = "no event id (field id missing or not a text)"
                index = chunk.first_index + position
                self.report.unreadable.append(Unreadable(self.plan.location, index, reason))
                continue
            kept.append(record)
            keys.append(blake2b((prefix + event_id).encode(), digest_size=EVENT_KEY_BYTES).digest())
        return kept, keys

    def route_chunk(self, chunk: Chunk, segment: Segment) -> None:
        report = self.report
        event_type = self.plan.source.event_type
        counts = report.for_type(event_type)
        for item in chunk.unreadable:
            report.unreadable.append(Unreadable(self.plan.location, item.index, item.reason))
        records, keys = self.event_keys(chunk.records, chunk)
        seen = self.services.state.already_routed(keys, segment.tag) if keys else set()
        taken = self.taken
        chunk_keys = set(keys)
        if not seen and len(chunk_keys) == len(keys) and taken.isdisjoint(chunk_keys):
            # The common case, no duplicate at all: set operations instead of a loop per record.
            fresh, fresh_keys = records, keys
            taken |= chunk_keys
        else:
            fresh = []
            fresh_keys = []
            for record, key in zip(records, keys, strict=True):
                if key in seen or key in taken:
                    continue
                taken.add(key)
                fresh.append(record)
                fresh_keys.append(key)
        duplicates = len(records) - len(fresh)
        if self.plan.lytics and fresh:
            lytics = self.services.lytics
            assert lytics is not None  # checked by plan()
            stream = self.services.config.routes.lytics.stream
            lytics.collect(stream, [{**record, "event_type": event_type} for record in fresh])
            report.lytics_requests += 1
            segment.lytics_events += len(fresh)
        # Past the one step that can fail: the chunk is routed as far as this invocation goes.
        report.records_read += len(chunk.records)
        counts.read += len(chunk.records)
        report.duplicates_skipped += duplicates
        counts.duplicates += duplicates
        segment.read += len(chunk.records) + len(chunk.unreadable)
        if segment.jsonl is not None:
            segment.jsonl.add(fresh)
        if self.plan.engagement is not None:
            add_observations(segment.engagement, self.plan.engagement, fresh, fresh_keys)
        segment.keys.extend(fresh_keys)

    def commit(self, segment: Segment, next_index: int, *, done: bool) -> None:
        segment.committing = True
        services = self.services
        report = self.report
        plan = self.plan
        event_type = plan.source.event_type
        jsonl = segment.jsonl
        if jsonl is not None and jsonl.records:
            assert services.outputs is not None  # checked by plan()
            data = jsonl.finish()
            for destination in services.config.routes.files.destinations:
                key = output_key(destination, plan.source, segment.first_index)
                report.outputs.append(services.outputs.put(key, data))
            report.add_routed(event_type, "files", jsonl.records)
        batch = segment.engagement
        if batch.by_user:
            assert services.engagement is not None  # checked by plan()
            services.engagement.record(batch.by_user, {user: zone for user, (_, zone) in batch.zones.items()})
        report.add_routed(event_type, "engagement", batch.observations)
        report.machine_opens_excluded += batch.machine_opens
        report.add_routed(event_type, "lytics", segment.lytics_events)
        services.state.commit(segment.keys, FileProgress(plan.file_id, next_index, done), segment.tag)
        logger.debug(
            "segment committed",
            extra={"file": plan.location, "first_index": segment.first_index, "next_index": next_index},
        )
