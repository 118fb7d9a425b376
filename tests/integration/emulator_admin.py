"""The Braze emulator seen through its admin API, shared by the integration suites."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

API_KEY = "local-dev-key"


@dataclass
class Braze:
    """The emulator seen through its admin API, plus users.track for seeding profiles."""

    url: str
    session: requests.Session

    def reset(self, **config: Any) -> None:
        self.session.post(f"{self.url}/_emulator/reset", json={"config": True}, timeout=10).raise_for_status()
        if config:
            self.configure(**config)

    def configure(self, **config: Any) -> None:
        self.session.put(f"{self.url}/_emulator/config", json=config, timeout=10).raise_for_status()

    def seed(self, *attributes: dict[str, Any]) -> None:
        """Profiles as some other source left them before the bridge runs."""
        response = self.session.post(
            f"{self.url}/users/track",
            json={"attributes": list(attributes)},
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=10,
        )
        response.raise_for_status()
        assert not response.json().get("errors"), response.json()

    def add_segment(self, name: str, segment_filter: dict[str, Any] | None = None) -> str:
        body: dict[str, Any] = {"name": name}
        if segment_filter is not None:
            body["filter"] = segment_filter
        response = self.session.post(f"{self.url}/_emulator/segments", json=body, timeout=10)
        response.raise_for_status()
        segment_id: str = response.json()["segment_id"]
        return segment_id

    def user(self, external_id: str) -> dict[str, Any] | None:
        response = self.session.get(f"{self.url}/_emulator/users/{external_id}", timeout=10)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def attributes(self, external_id: str) -> dict[str, Any]:
        profile = self.user(external_id)
        assert profile is not None, f"user {external_id} does not exist"
        held: dict[str, Any] = profile["attributes"]
        return held

    def user_count(self) -> int:
        return int(
            self.session.get(f"{self.url}/_emulator/users", params={"count": 1}, timeout=10).json()["count"]
        )

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.session.get(f"{self.url}/_emulator/stats", timeout=10).json()
        return result

    def exports(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.session.get(f"{self.url}/_emulator/exports", timeout=10).json()[
            "exports"
        ]
        return result
