"""Currents over real HTTP: the Lytics sink on loopback, and moto server for the function's AWS side."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from cdpbridge_local.currents_data import Sample, load_samples
from cdpbridge_local.sinks import LyticsSinkServer
from tests.moto_server import moto_server

ROOT = Path(__file__).resolve().parents[3]
CURRENTS_FIXTURES = ROOT / ".." / "shared" / "fixtures" / "currents"
LYTICS_TOKEN = "lytics-test-token"


@pytest.fixture(scope="package")
def lytics_server() -> Iterator[LyticsSinkServer]:
    with LyticsSinkServer(LYTICS_TOKEN) as server:
        yield server


@pytest.fixture
def lytics(lytics_server: LyticsSinkServer) -> LyticsSinkServer:
    lytics_server.sink.reset()
    return lytics_server


@pytest.fixture(scope="package")
def samples() -> list[Sample]:
    return load_samples(CURRENTS_FIXTURES)


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
