"""Settings and messages of the export function, the job record, and the wait arithmetic."""

import pytest
from pydantic import ValidationError

from cdpbridge.exports.handlers import is_sqs_event
from cdpbridge.exports.runtime import ContinueExport, ExportSettings, ExportTrigger
from cdpbridge.exports.segment import ExportJob, ExportWaitPolicy, sqs_delay_seconds

ENVIRONMENT = {
    "INTEGRATION": "blueconic",
    "DROP_BUCKET": "drop-bucket",
    "RUN_STATE_TABLE": "run-state",
    "CONTINUATION_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/blueconic-export",
}


def test_settings_come_from_the_environment_with_defaults():
    settings = ExportSettings.from_env(ENVIRONMENT)
    assert settings.default_config_key == "config/blueconic-export.yaml"
    assert settings.export_path == ""
    assert settings.wait_policy == ExportWaitPolicy(
        initial_s=10.0, max_s=120.0, quiet_s=30.0, max_wait_s=3600.0
    )
    assert settings.deadline_margin_ms == 30_000


def test_optional_settings_override_and_bad_values_name_their_variable():
    settings = ExportSettings.from_env(
        {
            **ENVIRONMENT,
            "EXPORT_CONFIG_KEY": "config/vip.json",
            "EXPORT_MAX_WAIT_S": "1800",
            "SEGMENT_EXPORT_PATH": "braze",
        }
    )
    assert (settings.default_config_key, settings.max_wait_s, settings.export_path) == (
        "config/vip.json",
        1800.0,
        "braze",
    )
    with pytest.raises(ValueError, match="EXPORT_POLL_INITIAL_S"):
        ExportSettings.from_env({**ENVIRONMENT, "EXPORT_POLL_INITIAL_S": "soon"})
    with pytest.raises(ValueError, match="DROP_BUCKET"):
        ExportSettings.from_env({key: value for key, value in ENVIRONMENT.items() if key != "DROP_BUCKET"})


def test_a_trigger_carries_a_config_or_its_key_and_refuses_anything_else():
    assert ExportTrigger.model_validate({"config_key": "config/x.yaml", "segment": "VIP"}).segment == "VIP"
    assert ExportTrigger.model_validate({"config": {"segment": "VIP"}}).config == {"segment": "VIP"}
    with pytest.raises(ValidationError, match="config_ky"):
        ExportTrigger.model_validate({"config_ky": "typo"})
    with pytest.raises(ValidationError, match="run_id"):
        ExportTrigger.model_validate({"run_id": "../escape"})


def test_continuation_messages_are_recognised_and_sqs_events_told_apart():
    message = ContinueExport.model_validate_json(
        '{"type": "cdpbridge.export.continue", "integration": "blueconic", "run_id": "r1", "token": 2}'
    )
    assert message.token == 2
    assert is_sqs_event({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]})
    assert not is_sqs_event({"config_key": "config/x.yaml"})
    assert not is_sqs_event({"Records": []})


def test_backoff_grows_to_its_ceiling_and_sqs_delays_stay_within_15_minutes():
    policy = ExportWaitPolicy(initial_s=10, max_s=120, factor=1.5)
    assert [policy.delay(attempt) for attempt in range(4)] == [10, 15, 22.5, 33.75]
    assert policy.delay(20) == 120
    assert [sqs_delay_seconds(delay) for delay in (-1, 0, 0.2, 899.5, 3600)] == [0, 0, 1, 900, 900]


def test_a_job_survives_its_json_round_trip_and_ignores_keys_it_does_not_know():
    job = ExportJob(
        run_id="r1",
        integration="blueconic",
        config={"segment": {"id": "s"}},
        segment_id="s",
        segment_name=None,
        started_at=1_700_000_000.0,
        next_action_at=1_700_000_010.0,
        object_prefix="p",
        token=3,
    )
    assert ExportJob.from_dict({**job.to_dict(), "added_later": 1}) == job
    assert job.started.isoformat() == "2023-11-14T22:13:20+00:00"


def test_an_unknown_export_integration_is_named() -> None:
    from cdpbridge.exports.handlers import export_integration  # noqa: PLC0415

    assert export_integration("blueconic").name == "blueconic"
    with pytest.raises(ValueError, match="no export integration 'nope'"):
        export_integration("nope")
