"""Files through ``run_part`` as an import function runs them, against the suite's emulator, with
state in one SQLite file (shared by the integration suites that import files)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cdpbridge.braze import BrazeClient, BrazeSettings, RetryPolicy
from cdpbridge.mapping import MappingConfig
from cdpbridge.state import SqliteCheckpointStore, SqliteFieldStateStore, SqliteSendLedger
from cdpbridge.sync.artifacts import LocalArtifactStore
from cdpbridge.sync.engine import EngineOptions
from cdpbridge.sync.job import JobRequest, JobServices, PartOutcome, run_part

from .emulator_admin import API_KEY


def braze_settings(url: str) -> BrazeSettings:
    return BrazeSettings(
        rest_endpoint=url,
        retry=RetryPolicy(max_attempts=12, base_delay_s=0.01, max_delay_s=0.2),
        max_concurrency=8,
    )


@dataclass
class Runner:
    """Runs files through run_part as the import function does, with state in one SQLite file."""

    workdir: Path
    braze_url: str

    def services(self, **options: Any) -> JobServices:
        settings = braze_settings(self.braze_url)
        state = self.workdir / "state.sqlite3"
        return JobServices(
            client=BrazeClient(settings, API_KEY),
            field_state=SqliteFieldStateStore(state),
            ledger=SqliteSendLedger(state),
            checkpoints=SqliteCheckpointStore(state),
            artifacts=LocalArtifactStore(self.workdir / "reports"),
            options=EngineOptions(workspace="test-workspace", track_cap=settings.track_cap, **options),
            reports_prefix="",
        )

    def run(self, path: Path, mapping: MappingConfig, **options: Any) -> PartOutcome:
        stat = path.stat()
        request = JobRequest(
            integration=mapping.integration,
            location=str(path),
            version=f"{stat.st_size}-{stat.st_mtime_ns}",
            run_id=f"run-{path.stem}-{time.monotonic_ns()}",
            started_at=datetime.now(UTC),
            mapping=mapping,
        )
        return run_part(request, self.services(**options))
