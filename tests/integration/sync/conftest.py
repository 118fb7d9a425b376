"""Fixtures for engine runs against the Braze emulator over real HTTP, with embedded state stores."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cdpbridge.braze import BrazeClient, BrazeSettings, RetryPolicy
from cdpbridge.mapping import load_mapping
from cdpbridge.state import SqliteCheckpointStore, SqliteFieldStateStore, SqliteSendLedger
from cdpbridge.sync.artifacts import LocalArtifactStore
from cdpbridge.sync.engine import EngineOptions
from cdpbridge.sync.job import JobRequest, JobServices, PartOutcome, RunPart, run_part
from cdpbridge_local.emulator import EmulatorServer

from ..emulator_admin import Braze


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(host="127.0.0.1", port=0) as server:
        yield server


@dataclass
class Runner:
    """Runs files through run_part the way the CLI does, with state kept in one SQLite file."""

    workdir: Path
    braze_url: str
    settings_overrides: dict[str, Any]

    def services(self, **options: Any) -> JobServices:
        settings = BrazeSettings(rest_endpoint=self.braze_url, **self.settings_overrides)
        state = self.workdir / "state.sqlite3"
        return JobServices(
            client=BrazeClient(settings, "local-dev-key"),
            field_state=SqliteFieldStateStore(state),
            ledger=SqliteSendLedger(state),
            checkpoints=SqliteCheckpointStore(state),
            artifacts=LocalArtifactStore(self.workdir / "reports"),
            options=EngineOptions(workspace="test-workspace", track_cap=settings.track_cap, **options),
            reports_prefix="",
        )

    def run(
        self,
        path: Path,
        mapping_yaml: str,
        *,
        run_id: str | None = None,
        services: JobServices | None = None,
        part: RunPart | None = None,
        **options: Any,
    ) -> PartOutcome:
        mapping = load_mapping(mapping_yaml)
        stat = path.stat()
        request = JobRequest(
            integration=mapping.integration,
            location=str(path),
            version=f"{stat.st_size}-{stat.st_mtime_ns}",
            run_id=run_id or f"run-{path.stem}-{stat.st_mtime_ns}",
            started_at=datetime.now(UTC),
            mapping=mapping,
            part=part or RunPart(),
        )
        return run_part(request, services or self.services(**options))


@pytest.fixture
def runner(tmp_path: Path, braze: Braze) -> Runner:
    retry = RetryPolicy(max_attempts=12, base_delay_s=0.01, max_delay_s=0.2)
    return Runner(tmp_path, braze.url, {"retry": retry, "max_concurrency": 8})
