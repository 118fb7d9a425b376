"""A users.track stand-in, a working directory of SQLite state and local artifacts, and job requests,
for jobs run through run_part without a Braze emulator."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import orjson

from cdpbridge.braze import BrazeClient, TrackOutcome, TrackRequest
from cdpbridge.mapping import load_mapping
from cdpbridge.state import SqliteCheckpointStore, SqliteFieldStateStore, SqliteSendLedger
from cdpbridge.sync.artifacts import ArtifactStore, LocalArtifactStore
from cdpbridge.sync.engine import EngineOptions
from cdpbridge.sync.job import JobRequest, JobServices, RunPart

ACCEPTED = TrackOutcome("accepted", 201, "success")
DOWN = TrackOutcome("retries_exhausted", 503, "unavailable")


class InvocationDied(Exception):
    """Stands for the end of a Lambda invocation (timeout, out of memory) in the middle of a call."""


class FakeBraze:
    """users.track answering each call as ``answer`` says (given the call's number, from 1); keeps the
    bodies of the requests it took."""

    def __init__(self, answer: Callable[[int], TrackOutcome] = lambda number: ACCEPTED) -> None:
        self.answer = answer
        self.calls = 0
        self.taken: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def track(self, request: TrackRequest, cap: object = None) -> TrackOutcome:
        with self._lock:
            self.calls += 1
            outcome = self.answer(self.calls)
            if outcome.processed:
                self.taken.append(orjson.loads(request.to_body()))
            return outcome

    def snapshot(self) -> dict[str, Any]:
        return {}

    def objects(self, kind: str) -> list[dict[str, Any]]:
        return [item for body in self.taken for item in body.get(kind, [])]


@dataclass
class Workdir:
    root: Path

    def services(
        self, braze: FakeBraze, artifacts: ArtifactStore | None = None, **options: Any
    ) -> JobServices:
        state = self.root / "state.sqlite3"
        return JobServices(
            client=cast("BrazeClient", braze),
            field_state=SqliteFieldStateStore(state),
            ledger=SqliteSendLedger(state),
            checkpoints=SqliteCheckpointStore(state),
            artifacts=artifacts or self.artifacts,
            options=EngineOptions(workspace="w", in_flight=1, **options),
            reports_prefix="",
        )

    @property
    def artifacts(self) -> LocalArtifactStore:
        return LocalArtifactStore(self.root / "reports")

    def retry_files(self) -> list[str]:
        return self.artifacts.list("retry/")

    def write(self, name: str, header: str, rows: list[str]) -> Path:
        path = self.root / name
        path.write_text("\n".join([header, *rows]) + "\n")
        return path


def job_request(mapping_yaml: str, path: Path, run_id: str, part: RunPart | None = None) -> JobRequest:
    """A run of the local file ``path`` under ``mapping_yaml``, started at a fixed time."""
    return JobRequest(
        "generic",
        str(path),
        "v1",
        run_id,
        datetime(2026, 1, 5, tzinfo=UTC),
        load_mapping(mapping_yaml),
        part or RunPart(),
    )
