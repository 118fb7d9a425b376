"""BlueConic runs against the Braze emulator over real HTTP, with embedded state stores and moto server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from cdpbridge.braze import BrazeClient, BrazeSettings, RetryPolicy
from cdpbridge.mapping import MappingConfig
from cdpbridge.state import SqliteCheckpointStore, SqliteFieldStateStore, SqliteSendLedger
from cdpbridge.sync.artifacts import LocalArtifactStore
from cdpbridge.sync.engine import EngineOptions
from cdpbridge.sync.job import JobRequest, JobServices, PartOutcome, run_part
from cdpbridge_local.emulator import EmulatorServer

API_KEY = "local-dev-key"


@pytest.fixture(scope="package")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(host="127.0.0.1", port=0) as server:
        yield server


@dataclass
class Braze:
    """The emulator seen through its admin API, plus users.track for seeding profiles."""

    url: str
    session: requests.Session

    def reset(self) -> None:
        self.session.post(f"{self.url}/_emulator/reset", json={"config": True}, timeout=10).raise_for_status()

    def configure(self, **config: Any) -> None:
        self.session.put(f"{self.url}/_emulator/config", json=config, timeout=10).raise_for_status()

    def seed(self, *attributes: dict[str, Any]) -> None:
        """Profiles as some other source left them before the bridge runs."""
        response = self.session.post(
            f"{self.url}/users/track",
            json={"attributes": list(attributes)},
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=10,
        )
        response.raise_for_status()
        assert not response.json().get("errors"), response.json()

    def add_segment(self, name: str, segment_filter: dict[str, Any] | None = None) -> str:
        body: dict[str, Any] = {"name": name}
        if segment_filter is not None:
            body["filter"] = segment_filter
        response = self.session.post(f"{self.url}/_emulator/segments", json=body, timeout=10)
        response.raise_for_status()
        segment_id: str = response.json()["segment_id"]
        return segment_id

    def user(self, external_id: str) -> dict[str, Any] | None:
        response = self.session.get(f"{self.url}/_emulator/users/{external_id}", timeout=10)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def attributes(self, external_id: str) -> dict[str, Any]:
        profile = self.user(external_id)
        assert profile is not None, f"user {external_id} does not exist"
        held: dict[str, Any] = profile["attributes"]
        return held

    def user_count(self) -> int:
        return int(
            self.session.get(f"{self.url}/_emulator/users", params={"count": 1}, timeout=10).json()["count"]
        )

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.session.get(f"{self.url}/_emulator/stats", timeout=10).json()
        return result

    def exports(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.session.get(f"{self.url}/_emulator/exports", timeout=10).json()[
            "exports"
        ]
        return result


@pytest.fixture
def braze(emulator: EmulatorServer) -> Braze:
    admin = Braze(emulator.url, requests.Session())
    admin.reset()
    return admin


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


@pytest.fixture
def runner(tmp_path: Path, braze: Braze) -> Runner:
    return Runner(tmp_path, braze.url)


@pytest.fixture(scope="package")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every boto3 client of the test (and of the code under test) talks to the moto server."""
    for name, value in {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    boto3.setup_default_session()
    return moto_url
