"""The engagement profile store on both backends: SQLite in a temporary folder, DynamoDB on moto."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cdpbridge.engagement import ENGAGEMENT_PROFILE_TABLE, DynamoDbEngagementStore, SqliteEngagementStore
from cdpbridge.state.tables import create_table
from tests.moto_server import moto_client, moto_server

_tables = itertools.count()


@pytest.fixture(scope="session")
def dynamodb_client() -> Iterator[Any]:
    with moto_server() as url:
        yield moto_client(url, "dynamodb")


@pytest.fixture(params=["sqlite", "dynamodb"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path):
    """Opens stores on one backend and place: several stores opened by one test share their data."""
    if request.param == "sqlite":

        def make(max_observations: int = 512) -> Any:
            return SqliteEngagementStore(tmp_path / "state.sqlite3", max_observations=max_observations)

        return make
    client = request.getfixturevalue("dynamodb_client")
    table = f"engagement-{next(_tables)}"
    create_table(client, ENGAGEMENT_PROFILE_TABLE, table)

    def make_dynamodb(max_observations: int = 512) -> Any:
        return DynamoDbEngagementStore(table, client=client, max_observations=max_observations)

    return make_dynamodb
