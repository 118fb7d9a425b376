"""The Braze emulator over real HTTP on 127.0.0.1, reset before every test, plus an admin helper."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from cdpbridge.braze import BrazeClient, BrazeSettings
from cdpbridge_local.emulator import EmulatorServer

DEFAULT_KEY = "local-dev-key"


class EmulatorAdmin:
    """The emulator's admin API (/_emulator/...), as a test reads and steers it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()

    def _json(self, response: requests.Response) -> Any:
        assert response.status_code < 300, f"admin call failed: {response.status_code} {response.text}"
        return response.json()

    def reset(self) -> None:
        self._json(self.http.post(f"{self.url}/_emulator/reset", json={"config": True}))

    def configure(self, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._json(self.http.put(f"{self.url}/_emulator/config", json=changes))
        return result

    def add_key(self, key: str, permissions: list[str]) -> None:
        self._json(
            self.http.post(f"{self.url}/_emulator/keys", json={"key": key, "permissions": permissions})
        )

    def user(self, external_id: str) -> dict[str, Any] | None:
        response = self.http.get(f"{self.url}/_emulator/users/{external_id}")
        if response.status_code == 404:
            return None
        result: dict[str, Any] = self._json(response)
        return result

    def all_users(self) -> list[dict[str, Any]]:
        users: list[dict[str, Any]] = []
        page = 0
        while True:
            body = self._json(self.http.get(f"{self.url}/_emulator/users?page={page}&per_page=1000"))
            users.extend(body["users"])
            if len(body["users"]) < 1000:
                return users
            page += 1

    def count(self) -> int:
        count: int = self._json(self.http.get(f"{self.url}/_emulator/users?count=1"))["count"]
        return count

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._json(self.http.get(f"{self.url}/_emulator/stats"))
        return result

    def statuses(self, endpoint: str) -> dict[str, int]:
        result: dict[str, int] = self.stats()["requests"].get(endpoint, {})
        return result

    def add_segment(self, name: str, filter_: dict[str, Any] | None = None) -> str:
        body: dict[str, Any] = {"name": name}
        if filter_ is not None:
            body["filter"] = filter_
        segment_id: str = self._json(self.http.post(f"{self.url}/_emulator/segments", json=body))[
            "segment_id"
        ]
        return segment_id

    def add_campaign(self, campaign_id: str, name: str) -> None:
        self._json(
            self.http.post(f"{self.url}/_emulator/campaigns", json={"campaign_id": campaign_id, "name": name})
        )

    def add_partner(self, partner: str, partner_api_key: str, data_import_key: str) -> None:
        body = {"partner": partner, "partner_api_key": partner_api_key, "data_import_key": data_import_key}
        self._json(self.http.post(f"{self.url}/_emulator/partners", json=body))

    def lock_cohort(self, partner: str, cohort_id: str, locked: bool = True) -> None:
        body = {"partner": partner, "cohort_id": cohort_id, "locked": locked}
        self._json(self.http.put(f"{self.url}/_emulator/cohorts/lock", json=body))

    def cohorts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._json(self.http.get(f"{self.url}/_emulator/cohorts"))["cohorts"]
        return result

    def dispatches(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._json(self.http.get(f"{self.url}/_emulator/dispatches"))[
            "dispatches"
        ]
        return result


@pytest.fixture(scope="session")
def emulator_url() -> Iterator[str]:
    with EmulatorServer(host="127.0.0.1", port=0) as server:
        yield server.url


@pytest.fixture
def admin(emulator_url: str) -> Iterator[EmulatorAdmin]:
    helper = EmulatorAdmin(emulator_url)
    helper.reset()
    yield helper
    helper.http.close()


ClientFactory = Callable[..., BrazeClient]


@pytest.fixture
def make_client(emulator_url: str) -> Iterator[ClientFactory]:
    """Clients with short backoffs (tests measure behaviour, not patience); overrides go to settings."""
    made: list[BrazeClient] = []

    def factory(api_key: Any = DEFAULT_KEY, **overrides: Any) -> BrazeClient:
        values: dict[str, Any] = {
            "rest_endpoint": emulator_url,
            "timeout_s": 5.0,
            "connect_timeout_s": 2.0,
            "max_concurrency": 8,
            "retry": {"max_attempts": 8, "max_elapsed_s": 30.0, "base_delay_s": 0.01, "max_delay_s": 0.2},
        }
        values.update(overrides)
        client = BrazeClient(BrazeSettings.model_validate(values), api_key)
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: ClientFactory, admin: EmulatorAdmin) -> BrazeClient:
    return make_client()
