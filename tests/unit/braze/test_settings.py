"""BrazeSettings: defaults, validation and from_env()."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cdpbridge.braze import BrazeSettings, RateLimit, TrackCap
from cdpbridge.braze.settings import DEFAULT_RATE_LIMITS, FAMILIES


def test_defaults_follow_brazes_documented_limits() -> None:
    # Given only an instance / When settings are built / Then every family has Braze's default limit
    settings = BrazeSettings(instance="US-01")
    assert settings.rest_endpoint == "https://rest.iad-01.braze.com"
    limits = {family: (limit.limit, limit.window_s) for family, limit in settings.rate_limits.items()}
    assert limits == {
        "users.track": (3000, 3.0),
        "users.export": (250, 60.0),
        "campaigns.trigger": (250_000, 3600.0),
        "campaigns.trigger.broadcast": (250, 60.0),
        "lists": (250_000, 3600.0),
        "cohorts": (250_000, 3600.0),
        "users.other": (20_000, 60.0),
        "subscription": (5000, 60.0),
    }
    # A new workspace: 75 objects combined per users.track request.
    assert settings.track_cap == TrackCap(mode="total", limit=75)
    assert settings.retry.max_attempts >= 1
    assert settings.max_concurrency >= 1


def test_a_rest_endpoint_is_normalised_and_kept() -> None:
    settings = BrazeSettings(rest_endpoint=" http://127.0.0.1:8080/ ")
    assert settings.base_url == "http://127.0.0.1:8080"


@pytest.mark.parametrize("endpoint", ["rest.iad-01.braze.com", "ftp://x", "https://", "https://h/?q=1"])
def test_a_rest_endpoint_must_be_a_plain_http_url(endpoint: str) -> None:
    with pytest.raises(ValueError, match="rest_endpoint"):
        BrazeSettings(rest_endpoint=endpoint)


def test_neither_instance_nor_endpoint_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"instance .* or rest_endpoint"):
        BrazeSettings()


def test_instance_and_a_contradicting_endpoint_is_an_error() -> None:
    with pytest.raises(ValueError, match="contradicts"):
        BrazeSettings(instance="EU-01", rest_endpoint="https://rest.iad-01.braze.com")
    # The same host given both ways is fine.
    assert BrazeSettings(instance="eu-01", rest_endpoint="https://rest.fra-01.braze.eu/").instance == "eu-01"


def test_overriding_one_family_keeps_the_defaults_of_the_others() -> None:
    settings = BrazeSettings.model_validate(
        {"instance": "US-02", "rate_limits": {"users.track": {"limit": 100, "window_s": 1}}}
    )
    assert settings.rate_limit("users.track") == RateLimit(limit=100, window_s=1)
    assert settings.rate_limit("cohorts") == DEFAULT_RATE_LIMITS["cohorts"]
    assert set(settings.rate_limits) == set(FAMILIES)


def test_an_unknown_family_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown endpoint families"):
        BrazeSettings.model_validate(
            {"instance": "US-02", "rate_limits": {"users_track": {"limit": 1, "window_s": 1}}}
        )


def test_from_env_reads_every_braze_variable() -> None:
    # Given every BRAZE_* variable / When read / Then each lands in its field
    env = {
        "BRAZE_INSTANCE": "jp-01",
        "BRAZE_TIMEOUT_S": "12.5",
        "BRAZE_CONNECT_TIMEOUT_S": "2",
        "BRAZE_MAX_CONCURRENCY": "32",
        "BRAZE_RATE_LIMITS": '{"users.track": {"limit": 50000, "window_s": 60}}',
        "BRAZE_RETRY_MAX_ATTEMPTS": "4",
        "BRAZE_RETRY_MAX_ELAPSED_S": "30",
        "BRAZE_RETRY_BASE_DELAY_S": "0.1",
        "BRAZE_RETRY_MAX_DELAY_S": "5",
        "BRAZE_TRACK_CAP_MODE": "total",
        "BRAZE_TRACK_CAP_LIMIT": "50",
        "BRAZE_API_KEY_SECRET": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:braze-AbCdEf",
        "BRAZE_API_KEY_CACHE_TTL_S": "60",
        "UNRELATED": "ignored",
    }
    settings = BrazeSettings.from_env(env)
    assert settings.rest_endpoint == "https://rest.jp-01.braze.com"
    assert settings.timeout_s == 12.5
    assert settings.connect_timeout_s == 2
    assert settings.max_concurrency == 32
    assert settings.rate_limit("users.track") == RateLimit(limit=50000, window_s=60)
    assert settings.rate_limit("users.export") == DEFAULT_RATE_LIMITS["users.export"]
    assert (settings.retry.max_attempts, settings.retry.max_elapsed_s) == (4, 30)
    assert (settings.retry.base_delay_s, settings.retry.max_delay_s) == (0.1, 5)
    assert settings.track_cap == TrackCap(mode="total", limit=50)
    assert settings.api_key_secret_id == env["BRAZE_API_KEY_SECRET"]
    assert settings.api_key_cache_ttl_s == 60


def test_from_env_reads_the_process_environment_when_none_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRAZE_REST_ENDPOINT", "http://127.0.0.1:9999")
    monkeypatch.delenv("BRAZE_INSTANCE", raising=False)
    assert BrazeSettings.from_env().base_url == "http://127.0.0.1:9999"


def test_empty_variables_count_as_unset() -> None:
    settings = BrazeSettings.from_env({"BRAZE_INSTANCE": "US-05", "BRAZE_TIMEOUT_S": "  "})
    assert settings.timeout_s == BrazeSettings(instance="US-05").timeout_s


def test_the_environment_is_not_read_at_import_time() -> None:
    # Given garbage in the environment / When the package is imported in a fresh interpreter
    env = {**os.environ, "BRAZE_TIMEOUT_S": "not a number", "BRAZE_INSTANCE": "US-09"}
    script = "import cdpbridge.braze, cdpbridge.braze.client; print('imported')"
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    # Then the import succeeds; the garbage is only reported when settings are asked for.
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "imported"
    with pytest.raises(ValueError, match="BRAZE_TIMEOUT_S"):
        BrazeSettings.from_env(env)


@pytest.mark.parametrize(
    ("env", "variable", "reason"),
    [
        ({"BRAZE_INSTANCE": "US-09"}, "BRAZE_INSTANCE", "unknown Braze instance 'US-09'"),
        ({}, "BRAZE_INSTANCE / BRAZE_REST_ENDPOINT", "is required"),
        ({"BRAZE_INSTANCE": "US-01", "BRAZE_TIMEOUT_S": "soon"}, "BRAZE_TIMEOUT_S", "got 'soon'"),
        ({"BRAZE_INSTANCE": "US-01", "BRAZE_MAX_CONCURRENCY": "0"}, "BRAZE_MAX_CONCURRENCY", "greater than"),
        ({"BRAZE_INSTANCE": "US-01", "BRAZE_RATE_LIMITS": "{oops"}, "BRAZE_RATE_LIMITS", "not valid JSON"),
        (
            {"BRAZE_INSTANCE": "US-01", "BRAZE_RATE_LIMITS": "[1]"},
            "BRAZE_RATE_LIMITS",
            "expected a JSON object",
        ),
        (
            {"BRAZE_INSTANCE": "US-01", "BRAZE_RATE_LIMITS": '{"users.track": {"limit": 0, "window_s": 3}}'},
            "BRAZE_RATE_LIMITS (users.track.limit)",
            "greater than 0",
        ),
        ({"BRAZE_INSTANCE": "US-01", "BRAZE_TRACK_CAP_MODE": "sum"}, "BRAZE_TRACK_CAP_MODE", "'sum'"),
        ({"BRAZE_INSTANCE": "US-01", "BRAZE_TRACK_CAP_LIMIT": "lots"}, "BRAZE_TRACK_CAP_LIMIT", "'lots'"),
        ({"BRAZE_INSTANCE": "US-01", "BRAZE_TRACK_CAP_LIMIT": "0"}, "BRAZE_TRACK_CAP_LIMIT", "between 1"),
        (
            {"BRAZE_INSTANCE": "US-01", "BRAZE_RETRY_BASE_DELAY_S": "5", "BRAZE_RETRY_MAX_DELAY_S": "1"},
            "BRAZE_RETRY_BASE_DELAY_S",
            "max_delay_s must not be smaller",
        ),
    ],
)
def test_from_env_names_the_bad_variable_and_the_reason(
    env: dict[str, str], variable: str, reason: str
) -> None:
    # Given one bad variable / When read / Then the error names the variable and why
    with pytest.raises(ValueError) as raised:
        BrazeSettings.from_env(env)
    message = str(raised.value)
    assert variable in message
    assert reason in message
