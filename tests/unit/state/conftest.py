"""Fixtures for the state stores: a moto server on 127.0.0.1 and each store on both backends."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cdpbridge.state import (
    DynamoDbCheckpointStore,
    DynamoDbFieldStateStore,
    DynamoDbSendLedger,
    SqliteCheckpointStore,
    SqliteFieldStateStore,
    SqliteSendLedger,
)
from cdpbridge.state.tables import FIELD_STATE_TABLE, RUN_STATE_TABLE, TableSpec, create_table
from tests.moto_server import moto_client, moto_server

_table_numbers = itertools.count()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(scope="session")
def dynamodb_client(moto_endpoint: str) -> Any:
    return moto_client(moto_endpoint, "dynamodb")


@pytest.fixture
def make_table(dynamodb_client: Any) -> Callable[[TableSpec], str]:
    """Creates a fresh table per call, so every test starts from an empty store."""

    def make(spec: TableSpec) -> str:
        name = f"{spec.logical_name}-{next(_table_numbers)}"
        create_table(dynamodb_client, spec, name)
        return name

    return make


class CallCounter:
    """Counts DynamoDB API calls a client makes (e.g. {"BatchGetItem": 2})."""

    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        self._client = client
        client.meta.events.register("before-call.dynamodb", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def detach(self) -> None:
        self._client.meta.events.unregister("before-call.dynamodb", self._count)


@pytest.fixture
def call_counter(dynamodb_client: Any) -> Iterator[CallCounter]:
    counter = CallCounter(dynamodb_client)
    yield counter
    counter.detach()


@pytest.fixture(params=["sqlite", "dynamodb"])
def field_state_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        store: Any = SqliteFieldStateStore(tmp_path / "state" / "state.sqlite3")
    else:
        make_table = request.getfixturevalue("make_table")
        client = request.getfixturevalue("dynamodb_client")
        store = DynamoDbFieldStateStore(make_table(FIELD_STATE_TABLE), client=client)
    yield store
    store.close()


@pytest.fixture(params=["sqlite", "dynamodb"])
def send_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        ledger: Any = SqliteSendLedger(tmp_path / "state.sqlite3")
        yield ledger
        ledger.close()
        return
    make_table = request.getfixturevalue("make_table")
    client = request.getfixturevalue("dynamodb_client")
    yield DynamoDbSendLedger(make_table(RUN_STATE_TABLE), client=client)


@pytest.fixture(params=["sqlite", "dynamodb"])
def checkpoint_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        store: Any = SqliteCheckpointStore(tmp_path / "state.sqlite3")
        yield store
        store.close()
        return
    make_table = request.getfixturevalue("make_table")
    client = request.getfixturevalue("dynamodb_client")
    yield DynamoDbCheckpointStore(make_table(RUN_STATE_TABLE), client=client)
