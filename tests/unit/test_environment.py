"""The one reader of function settings: variables by name, empty as unset, errors naming variables."""

from __future__ import annotations

import pytest
from pydantic import Field

from cdpbridge.environment import (
    EnvironmentSettings,
    EnvironmentSettingsError,
    read_environment,
    read_function_environment,
)


class PollerSettings(EnvironmentSettings):
    """Settings of a poller."""

    bucket: str = Field(min_length=3, alias="BUCKET")
    interval_s: float = Field(default=1.0, gt=0, alias="POLL_INTERVAL_S")


def test_fields_are_read_from_their_variables_and_others_are_ignored() -> None:
    settings = PollerSettings.from_env({"BUCKET": "drop", "POLL_INTERVAL_S": "2.5", "PATH": "/bin"})
    assert (settings.bucket, settings.interval_s) == ("drop", 2.5)


def test_every_problem_names_its_variable_and_the_bad_value() -> None:
    with pytest.raises(EnvironmentSettingsError) as raised:
        read_environment(PollerSettings, {"BUCKET": "", "POLL_INTERVAL_S": "soon"})
    message = str(raised.value)
    assert message.startswith("invalid settings (Settings of a poller):")
    assert "BUCKET: Field required" in message
    assert "POLL_INTERVAL_S: Input should be a valid number" in message
    assert "(got 'soon')" in message


def test_the_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUCKET", "from-process")
    assert PollerSettings.from_env().bucket == "from-process"


def test_a_functions_settings_and_the_braze_clients_are_read_together() -> None:
    environment = read_function_environment(
        PollerSettings, {"BUCKET": "drop", "BRAZE_INSTANCE": "US-03", "BRAZE_API_KEY_SECRET": "braze/key"}
    )
    assert environment.function.bucket == "drop"
    assert environment.braze.base_url == "https://rest.iad-03.braze.com"
    assert environment.braze.api_key_secret_id == "braze/key"


def test_one_error_lists_the_bad_variables_of_both() -> None:
    with pytest.raises(EnvironmentSettingsError) as raised:
        read_function_environment(PollerSettings, {"BRAZE_INSTANCE": "US-03", "BRAZE_MAX_CONCURRENCY": "0"})
    message = str(raised.value)
    assert message.startswith("invalid PollerSettings environment:")
    assert "BUCKET: Field required" in message
    assert "BRAZE_MAX_CONCURRENCY" in message
    assert "BRAZE_API_KEY_SECRET: Field required" not in message  # the Braze settings were not valid


def test_the_rest_key_secret_is_required_of_a_function() -> None:
    with pytest.raises(EnvironmentSettingsError, match="BRAZE_API_KEY_SECRET: Field required"):
        read_function_environment(PollerSettings, {"BUCKET": "drop", "BRAZE_INSTANCE": "US-03"})
