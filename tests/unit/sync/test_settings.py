"""Import function settings: read from the environment on demand, errors name the variable."""

from __future__ import annotations

import pytest

from cdpbridge.sync.settings import ImportSettings

COMPLETE = {
    "INTEGRATION": "generic",
    "DROP_BUCKET": "drop-bucket",
    "FIELD_STATE_TABLE": "field-state",
    "RUN_STATE_TABLE": "run-state",
    "IDEMPOTENCY_TABLE": "idempotency",
    "CONTINUATION_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/generic",
    "BRAZE_API_KEY_SECRET": "braze/rest-key",
}


def test_a_complete_environment_gives_defaults_for_the_rest() -> None:
    settings = ImportSettings.from_env(COMPLETE)
    assert settings.integration == "generic"
    assert settings.workspace == "braze/rest-key"  # the secret names the workspace by default
    assert settings.mapping_prefix == "config/"
    assert settings.fanout_threshold_bytes == 256 * 1024 * 1024
    assert settings.in_flight == 256  # a ceiling: the engine's window finds its level under it


def test_optional_variables_override_defaults() -> None:
    env = {**COMPLETE, "BRAZE_WORKSPACE": "acme-prod", "BRAZE_MAX_CONCURRENCY": "32", "FULL_REFRESH": "true"}
    settings = ImportSettings.from_env(env)
    assert (settings.workspace, settings.in_flight, settings.full_refresh) == ("acme-prod", 32, True)


def test_missing_and_bad_values_name_their_variables() -> None:
    env = {**COMPLETE, "DROP_BUCKET": "", "BRAZE_MAX_CONCURRENCY": "many"}
    with pytest.raises(ValueError) as raised:
        ImportSettings.from_env(env)
    message = str(raised.value)
    assert "DROP_BUCKET" in message
    assert "BRAZE_MAX_CONCURRENCY" in message


def test_nothing_is_read_at_import_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib  # noqa: PLC0415

    import cdpbridge.sync.settings as module  # noqa: PLC0415

    monkeypatch.delenv("DROP_BUCKET", raising=False)
    importlib.reload(module)  # importing with an empty environment must not fail


def test_an_empty_variable_counts_as_unset() -> None:
    settings = ImportSettings.from_env({**COMPLETE, "MAPPING_PREFIX": "", "BRAZE_WORKSPACE": " "})
    assert (settings.mapping_prefix, settings.workspace) == ("config/", "braze/rest-key")


def test_braze_max_concurrency_has_the_braze_clients_one_limit() -> None:
    from cdpbridge.braze import BrazeSettings  # noqa: PLC0415
    from cdpbridge.braze.settings import MAX_CONCURRENCY_LIMIT  # noqa: PLC0415

    at_limit = {**COMPLETE, "BRAZE_INSTANCE": "US-01", "BRAZE_MAX_CONCURRENCY": str(MAX_CONCURRENCY_LIMIT)}
    assert ImportSettings.from_env(at_limit).in_flight == BrazeSettings.from_env(at_limit).max_concurrency
    above = {**at_limit, "BRAZE_MAX_CONCURRENCY": str(MAX_CONCURRENCY_LIMIT + 1)}
    with pytest.raises(ValueError, match="BRAZE_MAX_CONCURRENCY"):
        ImportSettings.from_env(above)
    with pytest.raises(ValueError, match="BRAZE_MAX_CONCURRENCY"):
        BrazeSettings.from_env(above)
