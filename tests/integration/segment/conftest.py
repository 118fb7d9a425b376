"""Segment runs against the Braze emulator over real HTTP, with state in SQLite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cdpbridge_local.emulator import EmulatorServer


@pytest.fixture(scope="package")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(host="127.0.0.1", port=0) as server:
        yield server
