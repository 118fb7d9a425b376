"""Shared by the integration suites: the emulator admin client over the suite's own ``emulator``."""

from __future__ import annotations

import pytest
import requests

from cdpbridge_local.emulator import EmulatorServer

from .emulator_admin import Braze


@pytest.fixture
def braze(emulator: EmulatorServer) -> Braze:
    """The suite's emulator, reset before each test (its ``emulator`` fixture sets the scope)."""
    admin = Braze(emulator.url, requests.Session())
    admin.reset()
    return admin
