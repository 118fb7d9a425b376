"""API key providers: a key given directly, and AWS Secrets Manager (a moto server on 127.0.0.1)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from cdpbridge.braze import (
    ApiKeyUnavailableError,
    BrazeSettings,
    SecretsManagerKeyProvider,
    StaticKeyProvider,
    key_provider_from_settings,
)
from cdpbridge.braze.keys import ApiKeyProvider, parse_secret_value
from tests.moto_server import moto_server

KEY = "braze-rest-key-0f9e8d7c"
ROTATED = "braze-rest-key-rotated-11aa22bb"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def secrets(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def secret_name(request: pytest.FixtureRequest) -> str:
    return f"braze/{request.node.name}"


def test_a_plain_secret_is_the_key(secrets: Any, secret_name: str) -> None:
    # Given a secret holding the bare key / When asked / Then the key comes back, trimmed
    secrets.create_secret(Name=secret_name, SecretString=f"  {KEY}\n")
    provider = SecretsManagerKeyProvider(secret_name, client=secrets)
    assert provider.current() == KEY


def test_a_json_secret_holds_the_key_in_api_key(secrets: Any, secret_name: str) -> None:
    created = secrets.create_secret(Name=secret_name, SecretString=f'{{"api_key": "{KEY}", "note": "x"}}')
    # The ARN works as well as the name.
    provider = SecretsManagerKeyProvider(created["ARN"], client=secrets)
    assert provider.current() == KEY


def test_a_json_secret_without_api_key_is_a_clear_error_without_values(
    secrets: Any, secret_name: str
) -> None:
    secrets.create_secret(Name=secret_name, SecretString=f'{{"key": "{KEY}"}}')
    provider = SecretsManagerKeyProvider(secret_name, client=secrets)
    with pytest.raises(ApiKeyUnavailableError) as raised:
        provider.current()
    message = str(raised.value)
    assert secret_name in message and "'api_key'" in message and "members: key" in message
    assert KEY not in message


def test_a_missing_secret_is_a_clear_error(secrets: Any) -> None:
    provider = SecretsManagerKeyProvider("braze/does-not-exist", client=secrets)
    with pytest.raises(ApiKeyUnavailableError, match="braze/does-not-exist"):
        provider.current()


def test_the_key_is_cached_for_the_ttl(secrets: Any, secret_name: str) -> None:
    # Given a provider with a 300 s TTL
    secrets.create_secret(Name=secret_name, SecretString=KEY)
    clock = FakeClock()
    provider = SecretsManagerKeyProvider(secret_name, client=secrets, ttl_s=300, clock=clock)
    assert provider.current() == KEY
    secrets.put_secret_value(SecretId=secret_name, SecretString=ROTATED)
    # When asked again within the TTL / Then the cached key is used without a read
    clock.now += 299
    assert provider.current() == KEY
    assert provider.fetches == 1
    # When the TTL has passed / Then the secret is read again
    clock.now += 2
    assert provider.current() == ROTATED
    assert provider.fetches == 2


def test_a_401_makes_the_provider_read_the_rotated_key_once(secrets: Any, secret_name: str) -> None:
    # Given a cached key that has since been rotated
    secrets.create_secret(Name=secret_name, SecretString=KEY)
    clock = FakeClock()
    provider = SecretsManagerKeyProvider(secret_name, client=secrets, clock=clock)
    assert provider.current() == KEY
    secrets.put_secret_value(SecretId=secret_name, SecretString=ROTATED)
    # When Braze refuses the old key / Then the rotated key is read and becomes current
    assert provider.refresh_after_rejection(KEY) is True
    assert provider.current() == ROTATED
    assert provider.fetches == 2
    # When other threads report the same old key afterwards / Then no further read happens
    assert provider.refresh_after_rejection(KEY) is True
    assert provider.fetches == 2


def test_a_401_with_an_unrotated_key_reports_no_change_and_is_not_reread_in_a_storm(
    secrets: Any, secret_name: str
) -> None:
    secrets.create_secret(Name=secret_name, SecretString=KEY)
    clock = FakeClock()
    provider = SecretsManagerKeyProvider(secret_name, client=secrets, clock=clock, min_refresh_interval_s=1.0)
    provider.current()
    # Given the secret still holds the refused key / When a 401 is reported / Then nothing changed
    assert provider.refresh_after_rejection(KEY) is False
    assert provider.fetches == 2
    # A storm of further 401s within the interval does not hammer Secrets Manager
    for _ in range(20):
        assert provider.refresh_after_rejection(KEY) is False
    assert provider.fetches == 2
    # After the interval the secret is re-checked once more
    clock.now += 1.5
    assert provider.refresh_after_rejection(KEY) is False
    assert provider.fetches == 3


def test_a_cached_key_survives_a_failed_reread(secrets: Any, secret_name: str) -> None:
    # Given a cached key / When the secret can no longer be read after the TTL
    secrets.create_secret(Name=secret_name, SecretString=KEY)
    clock = FakeClock()
    provider = SecretsManagerKeyProvider(secret_name, client=secrets, ttl_s=10, clock=clock)
    assert provider.current() == KEY
    secrets.delete_secret(SecretId=secret_name, ForceDeleteWithoutRecovery=True)
    clock.now += 11
    # Then the run keeps the key it has
    assert provider.current() == KEY
    # ... but a 401 cannot be answered with a stale key
    with pytest.raises(ApiKeyUnavailableError):
        provider.refresh_after_rejection(KEY)


def test_the_key_never_reaches_logs_or_reprs(
    secrets: Any, secret_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    secrets.create_secret(Name=secret_name, SecretString=KEY)
    provider = SecretsManagerKeyProvider(secret_name, client=secrets)
    caplog.set_level(logging.DEBUG)
    provider.current()
    secrets.put_secret_value(SecretId=secret_name, SecretString=ROTATED)
    provider.refresh_after_rejection(KEY)
    # botocore's own debug logs are not ours to judge; every record of this package is.
    ours = [record for record in caplog.records if "cdpbridge" in record.name]
    logged = " ".join(f"{record.getMessage()} {record.__dict__}" for record in ours)
    assert "re-read" in logged  # the rotation itself is logged
    assert KEY not in logged and ROTATED not in logged
    assert KEY not in repr(provider) and ROTATED not in repr(provider)


def test_provider_from_settings_uses_the_configured_secret_and_ttl(secrets: Any, secret_name: str) -> None:
    secrets.create_secret(Name=secret_name, SecretString=KEY)
    settings = BrazeSettings(instance="US-01", api_key_secret_id=secret_name, api_key_cache_ttl_s=42)
    provider = key_provider_from_settings(settings, client=secrets)
    assert provider.current() == KEY
    with pytest.raises(ApiKeyUnavailableError, match="BRAZE_API_KEY_SECRET"):
        key_provider_from_settings(BrazeSettings(instance="US-01"))


def test_a_static_key_is_used_as_given_and_cannot_be_refreshed() -> None:
    provider = StaticKeyProvider(f" {KEY} ")
    assert isinstance(provider, ApiKeyProvider)
    assert provider.current() == KEY
    assert provider.refresh_after_rejection(KEY) is False
    assert KEY not in repr(provider)
    with pytest.raises(ApiKeyUnavailableError):
        StaticKeyProvider("  ")


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        ({"SecretString": ""}, "is empty"),
        ({"SecretString": "{not json"}, "does not parse"),
        ({"SecretString": '{"api_key": 5}'}, "'api_key'"),
        ({}, "neither SecretString nor SecretBinary"),
        ({"SecretBinary": b"\xff\xfe"}, "not UTF-8"),
    ],
)
def test_unusable_secret_values_are_refused_with_the_reason(response: dict[str, Any], reason: str) -> None:
    with pytest.raises(ApiKeyUnavailableError, match=reason):
        parse_secret_value("braze/key", response)


def test_a_binary_secret_may_hold_the_key() -> None:
    assert parse_secret_value("braze/key", {"SecretBinary": KEY.encode()}) == KEY
