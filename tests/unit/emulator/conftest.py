"""Fixtures for the Braze emulator tests: one in-process server per session, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from cdpbridge_local.emulator import EmulatorServer

DEFAULT_KEY = "local-dev-key"


@dataclass
class EmulatorClient:
    """Talks to the emulator over real HTTP: Braze endpoints with a Bearer key, admin endpoints without."""

    url: str
    session: requests.Session = field(default_factory=requests.Session)
    api_key: str = DEFAULT_KEY

    def post(self, path: str, body: Any, key: str | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {key or self.api_key}"}
        return self.session.post(f"{self.url}{path}", json=body, headers=headers, timeout=30)

    def get(
        self, path: str, params: dict[str, Any] | None = None, key: str | None = None
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {key or self.api_key}"}
        return self.session.get(f"{self.url}{path}", params=params, headers=headers, timeout=30)

    def track(
        self,
        attributes: list[Any] | None = None,
        events: list[Any] | None = None,
        purchases: list[Any] | None = None,
    ) -> requests.Response:
        body: dict[str, Any] = {}
        if attributes is not None:
            body["attributes"] = attributes
        if events is not None:
            body["events"] = events
        if purchases is not None:
            body["purchases"] = purchases
        return self.post("/users/track", body)

    def admin(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        response = self.session.request(
            method, f"{self.url}/_emulator{path}", json=body, params=params, timeout=30
        )
        assert response.status_code < 300, response.text
        return response.json()

    def admin_response(self, method: str, path: str, body: Any = None, **params: Any) -> requests.Response:
        return self.session.request(
            method, f"{self.url}/_emulator{path}", json=body, params=params, timeout=30
        )

    def user(self, external_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("GET", f"/users/{external_id}")
        return result

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("GET", "/stats")
        return result

    def configure(self, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("PUT", "/config", changes)
        return result


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture
def client(emulator_server: EmulatorServer) -> Iterator[EmulatorClient]:
    emulator = EmulatorClient(emulator_server.url)
    # Every test starts from defaults: no profiles, no definitions, default config and keys.
    emulator.admin("POST", "/reset", {"config": True})
    yield emulator
    emulator.session.close()
