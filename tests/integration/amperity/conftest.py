"""Amperity runs against the Braze emulator over real HTTP, with embedded state stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cdpbridge_local.emulator import EmulatorServer

from ..emulator_admin import Braze
from ..job_runner import Runner


@pytest.fixture(scope="package")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture
def runner(tmp_path: Path, braze: Braze) -> Runner:
    return Runner(tmp_path, braze.url)
