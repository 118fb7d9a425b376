"""BlueConic runs against the Braze emulator over real HTTP, with embedded state stores and moto server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from cdpbridge_local.emulator import EmulatorServer
from tests.moto_server import moto_server

from ..emulator_admin import Braze
from ..job_runner import Runner


@pytest.fixture(scope="package")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture
def runner(tmp_path: Path, braze: Braze) -> Runner:
    return Runner(tmp_path, braze.url)


@pytest.fixture(scope="package")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


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
