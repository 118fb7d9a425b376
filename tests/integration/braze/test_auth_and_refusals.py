"""401/403/404/400 are permanent and carry Braze's message; a rotated key is picked up after a 401."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cdpbridge.braze import BrazePermanentError, SecretsManagerKeyProvider, TrackCap, TrackRequestBuilder
from tests.moto_server import moto_client, moto_server

from .conftest import ClientFactory, EmulatorAdmin

pytestmark = pytest.mark.integration


def one_user_request(external_id: str = "auth-user") -> Any:
    builder = TrackRequestBuilder(TrackCap())
    builder.add("attributes", {"external_id": external_id, "plan": "gold"}, "row-1")
    return builder.flush()


def test_an_unknown_key_is_a_permanent_401_without_retries(
    make_client: ClientFactory, admin: EmulatorAdmin
) -> None:
    client = make_client(api_key="not-a-key")
    # users.track reports it in the outcome ...
    outcome = client.track(one_user_request())
    assert outcome.status == "permanent_failure"
    assert (outcome.http_status, outcome.message, outcome.attempts) == (401, "Invalid API key", 1)
    # ... every other endpoint raises it
    with pytest.raises(BrazePermanentError) as raised:
        client.export_ids(external_ids=["a"], fields_to_export=["external_id"])
    assert (raised.value.status, raised.value.message) == (401, "Invalid API key")
    assert admin.statuses("users.track") == {"401": 1}
    assert client.snapshot()["users.track"].permanent_errors == 1


def test_a_key_without_the_permission_is_a_permanent_403(
    make_client: ClientFactory, admin: EmulatorAdmin
) -> None:
    # Given a key that may only track
    admin.add_key("track-only", ["users.track"])
    client = make_client(api_key="track-only")
    assert client.track(one_user_request()).status == "accepted"
    # When it exports / Then Braze's reason names the missing permission
    with pytest.raises(BrazePermanentError) as raised:
        client.export_ids(external_ids=["auth-user"], fields_to_export=["external_id"])
    assert raised.value.status == 403
    assert "users.export.ids" in raised.value.message
    assert admin.statuses("users.export.ids") == {"403": 1}


def test_a_wrong_endpoint_path_is_a_permanent_404_with_a_readable_message(
    make_client: ClientFactory, admin: EmulatorAdmin, emulator_url: str
) -> None:
    # Given a REST endpoint with a stray path prefix: every call hits a page that does not exist
    client = make_client(rest_endpoint=f"{emulator_url}/wrong-prefix")
    outcome = client.track(one_user_request())
    assert outcome.status == "permanent_failure" and outcome.http_status == 404
    assert "HTTP 404 with a non-JSON body (text/plain" in outcome.message
    assert outcome.attempts == 1
    with pytest.raises(BrazePermanentError) as raised:
        list(client.list_segments())
    assert raised.value.status == 404


def test_a_bad_request_is_a_permanent_400_with_brazes_message(client: Any, admin: EmulatorAdmin) -> None:
    with pytest.raises(BrazePermanentError) as raised:
        client.campaign_details("no-such-campaign")
    assert raised.value.status == 400
    assert raised.value.message.startswith("Invalid campaign_id")
    assert raised.value.endpoint == "/campaigns/details"
    assert admin.statuses("campaigns.details") == {"400": 1}


@pytest.fixture(scope="module")
def secrets_client() -> Iterator[Any]:
    with moto_server() as endpoint:
        yield moto_client(endpoint, "secretsmanager")


def test_a_key_rotated_in_secrets_manager_is_picked_up_after_one_401(
    make_client: ClientFactory, admin: EmulatorAdmin, secrets_client: Any
) -> None:
    # Given the client cached a key that has since been rotated (Braze knows only the new one)
    secrets_client.create_secret(Name="braze/rotating", SecretString='{"api_key": "old-key"}')
    provider = SecretsManagerKeyProvider("braze/rotating", client=secrets_client)
    assert provider.current() == "old-key"
    secrets_client.put_secret_value(SecretId="braze/rotating", SecretString='{"api_key": "new-key"}')
    admin.add_key("new-key", ["users.track"])
    client = make_client(api_key=provider)
    # When it tracks / Then the 401 makes it re-read the secret and the retry succeeds
    outcome = client.track(one_user_request("rotated"))
    assert outcome.status == "accepted" and outcome.attempts == 2
    assert admin.statuses("users.track") == {"401": 1, "201": 1}
    assert client.snapshot()["users.track"].key_refreshes == 1
    assert provider.current() == "new-key"


def test_a_revoked_key_that_was_not_rotated_fails_after_one_reread(
    make_client: ClientFactory, admin: EmulatorAdmin, secrets_client: Any
) -> None:
    secrets_client.create_secret(Name="braze/revoked", SecretString="revoked-key")
    provider = SecretsManagerKeyProvider("braze/revoked", client=secrets_client)
    client = make_client(api_key=provider)
    outcome = client.track(one_user_request("revoked"))
    assert outcome.status == "permanent_failure" and outcome.http_status == 401
    assert admin.statuses("users.track") == {"401": 1}
    assert provider.fetches == 2
