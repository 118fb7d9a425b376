"""What every Braze endpoint shares: authentication, permissions, rate limits, faults and latency."""

from __future__ import annotations

import time

import pytest
import requests

from tests.unit.emulator.conftest import EmulatorClient

ONE_USER = {"attributes": [{"external_id": "u1", "a": 1}]}


def test_missing_or_unknown_key_is_401_with_rate_limit_headers(client: EmulatorClient) -> None:
    missing = client.session.post(f"{client.url}/users/track", json=ONE_USER, timeout=30)
    unknown = client.post("/users/track", ONE_USER, key="not-a-key")
    for response in (missing, unknown):
        assert response.status_code == 401
        assert response.json() == {"message": "Invalid API key"}
        assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(response.headers)
    assert client.stats()["objects"]["attributes"] == 0


def test_key_without_the_permission_is_403(client: EmulatorClient) -> None:
    # Given a key that may only list segments
    client.admin("POST", "/keys", {"key": "lists-only", "permissions": ["segments.list"]})
    # Then it lists segments but may not track users
    assert client.get("/segments/list", key="lists-only").status_code == 200
    response = client.post("/users/track", ONE_USER, key="lists-only")
    assert response.status_code == 403
    assert "users.track" in response.json()["message"]


def test_unknown_permissions_are_refused_by_the_admin_api(client: EmulatorClient) -> None:
    response = client.admin_response("POST", "/keys", {"key": "k", "permissions": ["users.everything"]})
    assert response.status_code == 400


def test_rate_limit_counts_down_then_refuses_with_429(client: EmulatorClient) -> None:
    # Given users.track limited to 3 requests an hour (a window the four requests cannot straddle)
    client.configure(rate_limits={"users.track": {"limit": 3, "window_s": 3600}})
    now = time.time()
    responses = [client.track(attributes=[{"external_id": f"u{index}"}]) for index in range(4)]
    # Then the headers count down and the fourth request is refused, not applied
    assert [response.status_code for response in responses] == [201, 201, 201, 429]
    assert [response.headers["X-RateLimit-Remaining"] for response in responses] == ["2", "1", "0", "0"]
    assert {response.headers["X-RateLimit-Limit"] for response in responses} == {"3"}
    reset = int(responses[-1].headers["X-RateLimit-Reset"])
    assert now - 1 <= reset <= now + 3601
    assert client.stats()["objects"]["attributes"] == 3
    assert client.stats()["rate_limited"] == {"users.track": 1}
    # And other families keep their own windows
    assert client.get("/segments/list").status_code == 200


def test_config_rejects_unknown_rate_limit_families(client: EmulatorClient) -> None:
    response = client.admin_response(
        "PUT", "/config", {"rate_limits": {"users.everything": {"limit": 1, "window_s": 1}}}
    )
    assert response.status_code == 400
    assert "unknown rate limit families" in response.text


@pytest.mark.parametrize(
    ("fault", "status", "content_type"),
    [
        ("status_429", 429, "application/json"),
        ("status_500", 500, "application/json"),
        ("status_502_html", 502, "text/html"),
        ("status_503", 503, "application/json"),
    ],
)
def test_each_injected_status_fault_answers_without_applying(
    client: EmulatorClient, fault: str, status: int, content_type: str
) -> None:
    client.configure(faults={fault: 1.0})
    response = client.post("/users/track", ONE_USER)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith(content_type)
    if content_type == "text/html":
        assert "502 Bad Gateway" in response.text
    assert client.stats()["objects"]["attributes"] == 0
    assert client.admin("GET", "/users", params={"count": 1}) == {"count": 0}
    assert client.stats()["faults"] == {fault: 1}


def test_dropped_connection_closes_without_a_response_and_applies_nothing(client: EmulatorClient) -> None:
    client.configure(faults={"drop_connection": 1.0})
    with pytest.raises(requests.ConnectionError):
        requests.post(
            f"{client.url}/users/track",
            json=ONE_USER,
            headers={"Authorization": "Bearer local-dev-key"},
            timeout=30,
        )
    assert client.stats()["requests"]["users.track"] == {"dropped": 1}
    assert client.admin("GET", "/users", params={"count": 1}) == {"count": 0}


def test_faults_are_reproducible_from_the_seed(client: EmulatorClient) -> None:
    # Given a seed and a mix of fault probabilities
    client.configure(seed=7, faults={"status_500": 0.3, "status_503": 0.2, "status_429": 0.1})
    first = [client.get("/segments/list").status_code for _ in range(40)]
    # When the emulator is reset (which restarts the sequence from the seed) and asked again
    client.admin("POST", "/reset")
    second = [client.get("/segments/list").status_code for _ in range(40)]
    # Then the same requests meet the same faults, and some of each kind occurred
    assert first == second
    assert {200, 500, 503, 429} <= set(first)
    client.configure(seed=8)
    third = [client.get("/segments/list").status_code for _ in range(40)]
    assert third != first


def test_a_retrying_client_applies_each_object_exactly_once(client: EmulatorClient) -> None:
    # Given half of all requests failing in one way or another
    client.configure(
        seed=3, faults={"status_500": 0.2, "status_502_html": 0.1, "status_503": 0.1, "drop_connection": 0.1}
    )
    # When each of 20 events is retried until it is accepted
    attempts = 0
    for index in range(20):
        event = {"external_id": f"u{index}", "name": "e", "time": "2024-01-01"}
        while True:
            attempts += 1
            try:
                if client.track(events=[event]).status_code == 201:
                    break
            except requests.ConnectionError:
                client.session = requests.Session()
    # Then every user has exactly one event although many attempts failed
    assert attempts > 20
    assert client.admin("GET", "/users", params={"count": 1}) == {"count": 20}
    for index in range(20):
        assert len(client.user(f"u{index}")["events"]) == 1


def test_slow_requests_are_delayed_then_applied(client: EmulatorClient) -> None:
    client.configure(faults={"slow_p": 1.0, "slow_ms": 50})
    started = time.monotonic()
    response = client.post("/users/track", ONE_USER)
    # The delay is a lower bound the emulator guarantees, not a speed measurement.
    assert time.monotonic() - started >= 0.045
    assert response.status_code == 201
    assert client.stats()["faults"] == {"slow": 1}


def test_latency_delays_every_braze_call(client: EmulatorClient) -> None:
    client.configure(latency_ms=100)
    started = time.monotonic()
    assert client.get("/segments/list").status_code == 200
    assert time.monotonic() - started >= 0.095
    assert client.admin("GET", "/config")["latency_ms"] == 100
