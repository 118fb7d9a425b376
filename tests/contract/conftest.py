"""Contract tests: each file checks one Braze endpoint, emulator and client, against what Braze's
documentation says about it (the file's docstring quotes the documented behaviour it checks).

One emulator per session on 127.0.0.1, reset to its defaults before every test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cdpbridge.braze import BrazeClient, BrazeSettings
from cdpbridge_local.emulator import EmulatorServer
from tests.unit.emulator.conftest import DEFAULT_KEY, EmulatorClient

BrazeClientFactory = Callable[..., BrazeClient]


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture
def emulator(emulator_server: EmulatorServer) -> Iterator[EmulatorClient]:
    client = EmulatorClient(emulator_server.url)
    client.admin("POST", "/reset", {"config": True})
    yield client
    client.session.close()


@pytest.fixture
def braze(emulator: EmulatorClient) -> Iterator[BrazeClientFactory]:
    """BrazeClients on the emulator with short backoffs; keyword arguments go to the settings."""
    made: list[BrazeClient] = []

    def factory(**overrides: Any) -> BrazeClient:
        values: dict[str, Any] = {
            "rest_endpoint": emulator.url,
            "timeout_s": 5.0,
            "retry": {"max_attempts": 3, "max_elapsed_s": 5.0, "base_delay_s": 0.01, "max_delay_s": 0.05},
            **overrides,
        }
        client = BrazeClient(BrazeSettings.model_validate(values), DEFAULT_KEY)
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()
