"""One file as several parts in parallel processes, the way the deployed stack fans a large file out.

In AWS a large upload is split into byte ranges, each run by its own invocation; the last part to
finish merges the counters and writes the one report. Here each range runs in its own process
(one engine uses one core), through the same ``run_part`` and the same checkpoint store, so a
laptop run with ``--workers`` is the fanned-out run the functions do.

Children are spawned, never forked: the parent may hold threads (the Braze client's pool, boto3)
that a fork would copy mid-flight.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cdpbridge.sources import ByteRange, parse_s3_location
from cdpbridge.sources.planning import plan_byte_ranges
from cdpbridge.sync.counters import RunCounters
from cdpbridge.sync.job import FanOut, JobRequest, JobServices, PartOutcome, plan_fan_out, run_part
from cdpbridge.sync.messages import S3Location

# Builds a part's services inside its process; it crosses a process boundary, so it must pickle
# (a module-level function, or a functools.partial of one over picklable arguments).
ServicesFactory = Callable[[], JobServices]

# How often a part reports its counters to the parent's progress line.
PROGRESS_INTERVAL_S = 0.5

_progress_queue: Any = None
# Sent on the progress queue, in place of a part id, by part 0 once its replay has drained.
_REPLAYED = "replayed"


def split(request: JobRequest, workers: int, s3_client: Any = None) -> list[ByteRange]:
    """Byte ranges of about equal size for ``workers`` parts, each starting on a row.

    A compressed file, a JSON array or a file too small to split gives one range.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    spec = request.mapping.source.reader_spec()
    size = _size(request.location, s3_client)
    target = max(1, -(-size // workers))
    return plan_byte_ranges(str(request.location), spec, target_bytes=target, s3_client=s3_client)


def _size(location: S3Location | str, s3_client: Any) -> int:
    if isinstance(location, str) and location.startswith("s3://"):
        # What the command line gave: the notified path keeps bucket and key apart from the start.
        bucket, key = parse_s3_location(location)
        location = S3Location(bucket=bucket, key=key)
    if isinstance(location, S3Location):
        return int(s3_client.head_object(Bucket=location.bucket, Key=location.key)["ContentLength"])
    return Path(location).stat().st_size


def run_parts(
    request: JobRequest,
    ranges: list[ByteRange],
    services_factory: ServicesFactory,
    *,
    progress: Callable[[RunCounters], None] | None = None,
) -> PartOutcome:
    """Runs one part per range, each in its own process, and returns when all have ended.

    The outcome is the merged one the last part wrote the report with; when a part stopped
    (aborted), no report is written and the outcome carries the first part's reason and the sum
    of the counters.
    """
    if len(ranges) < 2:
        raise ValueError("run_parts needs at least two ranges; run a single range with run_part")
    context = multiprocessing.get_context("spawn")
    reports = context.Queue()
    latest: dict[str, RunCounters] = {}
    fan_out = _plan(request, ranges, services_factory)
    with ProcessPoolExecutor(
        max_workers=len(ranges), mp_context=context, initializer=_start_part_process, initargs=(reports,)
    ) as pool:
        # As in AWS: when earlier runs left retry files, part 0 replays them before any other part
        # can send a newer row of the same users, and those parts hold what failed again.
        replay_first = bool(fan_out.after_replay)
        futures = [
            pool.submit(_run_one_part, replace(request, part=part), services_factory, replay_first)
            for part in fan_out.start_now
        ]
        waiting = replay_first
        replayed: list[list[str]] = []
        while not all(future.done() for future in futures) or waiting:
            _collect(reports, latest, replayed, wait_s=0.2)
            if waiting and not replayed and futures[0].done():
                if futures[0].exception() is not None:
                    # Part 0 failed before its replay drained: no part may overtake what is left.
                    waiting = False
                else:
                    # Ended before its message was read here: its result says the same.
                    replayed.append(futures[0].result().replayed or [])
            if waiting and replayed:
                futures += [
                    pool.submit(_run_one_part, replace(request, part=part), services_factory)
                    for part in fan_out.released(replayed[0])
                ]
                waiting = False
            if progress is not None and latest:
                progress(_sum(latest.values()))
        parts = [future.result().outcome for future in futures]
    merged = [part for part in parts if part.report is not None]
    if merged:
        return merged[0]
    stopped = [part.aborted_reason for part in parts if part.aborted_reason]
    total = _sum(part.counters for part in parts)
    return PartOutcome(False, total, aborted_reason=stopped[0] if stopped else "no part wrote the report")


def _sum(counters: Any) -> RunCounters:
    total = RunCounters()
    for part in counters:
        total.merge(part)
    return total


def _collect(reports: Any, latest: dict[str, RunCounters], replayed: list[list[str]], wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            part_id, payload = reports.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return
        if part_id == _REPLAYED:
            replayed.append(list(payload))
        else:
            latest[part_id] = RunCounters.from_dict(payload)


def _plan(request: JobRequest, ranges: list[ByteRange], services_factory: ServicesFactory) -> FanOut:
    services = services_factory()
    try:
        return plan_fan_out(request, ranges, services)
    finally:
        _close(services)


def _close(services: JobServices) -> None:
    services.field_state.close()
    if services.client is not None:
        services.client.close()


def _start_part_process(reports: Any) -> None:
    global _progress_queue  # noqa: PLW0603 - the one way a pool process inherits the queue
    _progress_queue = reports


@dataclass(frozen=True, slots=True)
class _PartResult:
    outcome: PartOutcome
    # The retry files part 0's replay wrote, when the other parts wait for it (else None).
    replayed: list[str] | None = None


def _run_one_part(
    request: JobRequest, services_factory: ServicesFactory, others_wait_for_replay: bool = False
) -> _PartResult:
    services = services_factory()
    part_id = request.part.part_id
    last = 0.0
    replayed: list[str] = []

    def tell_replayed(retry_files: list[str]) -> None:
        replayed.extend(retry_files)
        if _progress_queue is not None:
            _progress_queue.put((_REPLAYED, retry_files))

    def report(counters: RunCounters) -> None:
        nonlocal last
        now = time.monotonic()
        if _progress_queue is not None and now - last >= PROGRESS_INTERVAL_S:
            last = now
            _progress_queue.put((part_id, counters.to_dict()))

    try:
        outcome = run_part(
            request,
            services,
            progress=report,
            on_replayed=tell_replayed if others_wait_for_replay else None,
        )
    finally:
        _close(services)
    if _progress_queue is not None:
        _progress_queue.put((part_id, outcome.counters.to_dict()))
    return _PartResult(outcome, replayed if others_wait_for_replay else None)
