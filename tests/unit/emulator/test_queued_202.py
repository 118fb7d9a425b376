"""Braze's maintenance answer: 202 "queued" for a request that is still applied."""

from __future__ import annotations

import requests

from cdpbridge_local.emulator import EmulatorServer


def test_queued_requests_answer_202_and_are_applied() -> None:
    with EmulatorServer() as server:
        session = requests.Session()
        session.put(f"{server.url}/_emulator/config", json={"faults": {"queued_202": 1.0}}, timeout=5)
        # When a valid users.track request arrives during "maintenance"
        response = session.post(
            f"{server.url}/users/track",
            json={"attributes": [{"external_id": "q1", "tier": "gold"}]},
            headers={"Authorization": "Bearer local-dev-key"},
            timeout=5,
        )
        # Then the answer is 202 queued and the write is in the profile all the same
        assert response.status_code == 202
        assert response.json() == {"message": "queued"}
        user = session.get(f"{server.url}/_emulator/users/q1", timeout=5).json()
        assert user["attributes"]["tier"] == "gold"
        stats = session.get(f"{server.url}/_emulator/stats", timeout=5).json()
        assert stats["faults"]["queued_202"] == 1
