"""Braze's sample Currents files (one per event type, beside the repository) and the state stores on
both backends: SQLite in a temporary folder, DynamoDB on a moto server on 127.0.0.1."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cdpbridge.currents import CURRENTS_STATE_TABLE, DynamoDbCurrentsState, SqliteCurrentsState
from cdpbridge.state.tables import create_table
from cdpbridge_local.currents_data import Sample, load_samples
from tests.moto_server import moto_client, moto_server

ROOT = Path(__file__).resolve().parents[3]
CURRENTS_FIXTURES = ROOT / ".." / "shared" / "fixtures" / "currents"
FIXTURE_COUNT = 94

_tables = itertools.count()


@pytest.fixture(scope="session")
def samples() -> list[Sample]:
    loaded = load_samples(CURRENTS_FIXTURES)
    assert len(loaded) == FIXTURE_COUNT, f"expected {FIXTURE_COUNT} sample files in {CURRENTS_FIXTURES}"
    return loaded


@pytest.fixture(scope="session")
def sample_by_type(samples: list[Sample]) -> dict[str, Sample]:
    return {sample.event_type: sample for sample in samples}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(scope="session")
def dynamodb_client(moto_endpoint: str) -> Any:
    return moto_client(moto_endpoint, "dynamodb")


@pytest.fixture
def make_table(dynamodb_client: Any):
    def make(spec: Any) -> str:
        name = f"{spec.logical_name}-{next(_tables)}"
        create_table(dynamodb_client, spec, name)
        return name

    return make


@pytest.fixture(params=["sqlite", "dynamodb"])
def currents_state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A fresh Currents state on each backend; ``clock`` in the store follows ``state_clock``."""
    now = [1_796_630_400.0]
    if request.param == "sqlite":
        store: Any = SqliteCurrentsState(tmp_path / "state.sqlite3", ttl_seconds=3600, clock=lambda: now[0])
    else:
        table = request.getfixturevalue("make_table")(CURRENTS_STATE_TABLE)
        client = request.getfixturevalue("dynamodb_client")
        store = DynamoDbCurrentsState(table, client=client, ttl_seconds=3600, clock=lambda: now[0])
    store.now = now
    yield store
    store.close()
