"""Partner cohort import, user deletion and aliases, and the admin views, over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.emulator.conftest import EmulatorClient

PARTNER = {"partner": "segment", "partner_api_key": "partner-key", "data_import_key": "import-key"}
AUTH = {"partner_api_key": "partner-key", "client_secret": "import-key"}
CREATED_AT = "2026-12-01T10:00:00Z"
BUYERS = {**AUTH, "cohort_id": "c1", "name": "Buyers", "created_at": CREATED_AT}


def cohort_post(client: EmulatorClient, path: str, body: dict[str, Any]) -> Any:
    return client.session.post(f"{client.url}/partners/segment{path}", json=body, timeout=30)


@pytest.fixture
def partner(client: EmulatorClient) -> EmulatorClient:
    client.admin("POST", "/partners", PARTNER)
    client.track(attributes=[{"external_id": f"u{index}"} for index in range(3)])
    response = cohort_post(
        client, "/cohorts", {**AUTH, "cohort_id": "c1", "name": "Buyers", "created_at": CREATED_AT}
    )
    assert response.status_code == 201
    return client


def members(client: EmulatorClient) -> list[str | None]:
    [cohort] = client.admin("GET", "/cohorts")["cohorts"]
    return [member["external_id"] for member in cohort["members"]]


def test_cohort_changes_apply_in_order_and_never_create_users(partner: EmulatorClient) -> None:
    response = cohort_post(
        partner,
        "/cohorts/users",
        {
            **AUTH,
            "cohort_id": "c1",
            "cohort_changes": [
                {"user_ids": ["u0", "u1", "u2", "ghost"]},
                {"user_ids": ["u1"], "should_remove": True},
                {"device_ids": ["d1"]},
            ],
        },
    )
    assert response.status_code == 201
    assert members(partner) == ["u0", "u2"]
    [cohort] = partner.admin("GET", "/cohorts")["cohorts"]
    assert cohort["name"] == "Buyers" and cohort["unmatched_ids"] == 2
    assert partner.admin("GET", "/users", params={"count": 1}) == {"count": 3}


def test_cohort_rename_keeps_members(partner: EmulatorClient) -> None:
    cohort_post(
        partner, "/cohorts/users", {**AUTH, "cohort_id": "c1", "cohort_changes": [{"user_ids": ["u0"]}]}
    )
    assert cohort_post(partner, "/cohorts", {**BUYERS, "name": "Big buyers"}).status_code == 201
    [cohort] = partner.admin("GET", "/cohorts")["cohorts"]
    assert cohort["name"] == "Big buyers" and cohort["member_count"] == 1


@pytest.mark.parametrize(
    "credentials",
    [
        {"partner_api_key": "partner-key", "client_secret": "wrong"},
        {"partner_api_key": "wrong", "client_secret": "import-key"},
        {"client_secret": "import-key"},
    ],
)
def test_cohort_import_with_bad_keys_is_401(partner: EmulatorClient, credentials: dict[str, str]) -> None:
    response = cohort_post(partner, "/cohorts", {**credentials, "cohort_id": "c2", "name": "x"})
    assert response.status_code == 401


def test_locked_cohort_is_423(partner: EmulatorClient) -> None:
    partner.admin("PUT", "/cohorts/lock", {"partner": "segment", "cohort_id": "c1", "locked": True})
    changes = {**AUTH, "cohort_id": "c1", "cohort_changes": [{"user_ids": ["u0"]}]}
    assert cohort_post(partner, "/cohorts/users", changes).status_code == 423
    assert cohort_post(partner, "/cohorts", {**BUYERS, "name": "x"}).status_code == 423
    partner.admin("PUT", "/cohorts/lock", {"partner": "segment", "cohort_id": "c1", "locked": False})
    assert cohort_post(partner, "/cohorts/users", changes).status_code == 201


@pytest.mark.parametrize(
    ("changes", "message_part"),
    [
        ([{"user_ids": [f"u{index}" for index in range(1001)]}], "the limit is 1000"),
        ("none", "must be an array"),
        ([{"user_ids": ["u0"], "should_remove": "yes"}], "should_remove must be a boolean"),
        ([{"should_remove": True}], "names no users"),
        ([{"aliases": [{"alias_name": "x"}]}], "aliases must hold"),
    ],
)
def test_cohort_changes_refuse_bad_requests(
    partner: EmulatorClient, changes: list[Any], message_part: str
) -> None:
    response = cohort_post(partner, "/cohorts/users", {**AUTH, "cohort_id": "c1", "cohort_changes": changes})
    assert response.status_code == 400
    assert message_part in response.json()["message"]


def test_changes_to_an_unknown_cohort_are_refused(partner: EmulatorClient) -> None:
    response = cohort_post(
        partner, "/cohorts/users", {**AUTH, "cohort_id": "c9", "cohort_changes": [{"user_ids": ["u0"]}]}
    )
    assert response.status_code == 400 and "does not exist" in response.json()["message"]


def test_users_delete_removes_profiles(client: EmulatorClient) -> None:
    client.track(attributes=[{"external_id": "u1"}, {"external_id": "u2"}])
    response = client.post("/users/delete", {"external_ids": ["u1", "ghost"]})
    # Braze deletes asynchronously: "deleted" counts the deletions queued, found or not.
    assert response.status_code == 202 and response.json() == {"deleted": 2, "message": "success"}
    assert client.admin_response("GET", "/users/u1").status_code == 404
    assert client.admin("GET", "/users", params={"count": 1}) == {"count": 1}
    assert (
        client.post("/users/delete", {"external_ids": [f"u{index}" for index in range(51)]}).status_code
        == 400
    )


def test_alias_new_adds_aliases_and_creates_alias_only_users(client: EmulatorClient) -> None:
    client.track(attributes=[{"external_id": "u1"}])
    response = client.post(
        "/users/alias/new",
        {
            "user_aliases": [
                {"external_id": "u1", "alias_name": "a1", "alias_label": "crm"},
                {"alias_name": "anon", "alias_label": "web"},
                {"external_id": "ghost", "alias_name": "a2", "alias_label": "crm"},
            ]
        },
    )
    assert response.status_code == 201
    assert response.json()["aliases_processed"] == 2
    assert response.json()["errors"] == [{"type": "'external_id' does not match any user", "index": 2}]
    assert client.user("u1")["user_aliases"] == [{"alias_label": "crm", "alias_name": "a1"}]
    anonymous = client.admin("GET", "/users/by-alias", params={"label": "web", "name": "anon"})
    assert anonymous["external_id"] is None


def test_admin_user_views(client: EmulatorClient) -> None:
    client.track(
        attributes=[{"external_id": f"u{index}", "email": f"u{index}@example.com"} for index in range(5)]
    )
    assert client.admin("GET", "/users", params={"count": 1}) == {"count": 5}
    page = client.admin("GET", "/users", params={"page": 1, "per_page": 2})
    assert [user["external_id"] for user in page["users"]] == ["u2", "u3"] and page["total"] == 5
    assert client.admin("GET", "/users/by-email", params={"email": "U4@example.com"})["external_id"] == "u4"
    assert client.admin_response("GET", "/users/nobody").status_code == 404
    assert client.admin_response("GET", "/users/by-alias", label="x", name="y").status_code == 404
    assert client.admin_response("GET", "/users", per_page=0).status_code == 400


def test_reset_keeps_definitions_unless_asked(client: EmulatorClient) -> None:
    # Given a profile, a segment, a key and a changed config
    client.track(attributes=[{"external_id": "u1"}])
    client.admin("POST", "/segments", {"segment_id": "s1", "name": "All"})
    client.admin("POST", "/keys", {"key": "extra", "permissions": ["segments.list"]})
    client.configure(latency_ms=1)
    # When reset without options: data goes, definitions and config stay
    client.admin("POST", "/reset")
    assert client.admin("GET", "/users", params={"count": 1}) == {"count": 0}
    assert client.stats()["requests"] == {}
    assert [segment["segment_id"] for segment in client.admin("GET", "/segments")["segments"]] == ["s1"]
    assert client.admin("GET", "/config")["latency_ms"] == 1
    assert client.get("/segments/list", key="extra").status_code == 200
    # When reset with config: everything goes back to defaults
    client.admin("POST", "/reset", {"config": True})
    assert client.admin("GET", "/segments")["segments"] == []
    assert client.admin("GET", "/config")["latency_ms"] == 0
    assert client.get("/segments/list", key="extra").status_code == 401


def test_config_put_merges_and_refuses_invalid_values(client: EmulatorClient) -> None:
    config = client.configure(faults={"status_500": 0.1}, rate_limits={"cohorts": {"limit": 5}})
    assert config["faults"]["status_500"] == 0.1 and config["faults"]["slow_ms"] == 5000
    assert config["rate_limits"]["cohorts"] == {"limit": 5, "window_s": 3600.0}
    assert config["rate_limits"]["users.track"] == {"limit": 3000, "window_s": 3.0}
    for bad in ({"faults": {"status_500": 2}}, {"track_cap": {"mode": "sometimes"}}, {"colour": "red"}):
        assert client.admin_response("PUT", "/config", bad).status_code == 400
    assert client.admin("GET", "/config")["faults"]["status_500"] == 0.1
