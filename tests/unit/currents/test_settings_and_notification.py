"""The function's settings from its environment, and the S3 notifications its queue carries."""

import json

import pytest

from cdpbridge.currents.notification import ObjectLocation, created_objects
from cdpbridge.currents.settings import CurrentsSettings

REQUIRED = {"DROP_BUCKET": "drop", "CURRENTS_STATE_TABLE": "state-t", "ENGAGEMENT_PROFILE_TABLE": "eng-t"}


def test_settings_take_the_required_names_and_default_the_rest():
    settings = CurrentsSettings.from_env(REQUIRED)
    assert (settings.drop_bucket, settings.state_table, settings.engagement_table) == (
        "drop",
        "state-t",
        "eng-t",
    )
    assert settings.currents_prefix == "currents/" and settings.config_key == "config/currents.yaml"
    assert settings.lytics_url == "https://api.lytics.io" and settings.lytics_token_secret == ""
    custom = CurrentsSettings.from_env(
        {**REQUIRED, "CURRENTS_PREFIX": "braze/", "DEADLINE_MARGIN_MS": "5000"}
    )
    assert custom.currents_prefix == "braze/" and custom.deadline_margin_ms == 5000


def test_missing_or_bad_settings_name_their_variables():
    with pytest.raises(ValueError, match="CURRENTS_STATE_TABLE") as refused:
        CurrentsSettings.from_env({"DROP_BUCKET": "drop", "DEADLINE_MARGIN_MS": "10"})
    assert "ENGAGEMENT_PROFILE_TABLE" in str(refused.value) and "DEADLINE_MARGIN_MS" in str(refused.value)


def notification(*records: dict) -> str:
    return json.dumps({"Records": list(records)})


def s3_record(key: str, event: str = "ObjectCreated:Put", bucket: str = "drop") -> dict:
    return {
        "eventSource": "aws:s3",
        "eventName": event,
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 10, "eTag": "abc"}},
    }


def test_created_objects_have_their_keys_decoded_once():
    body = notification(
        s3_record(
            "currents/dataexport.p.S3.integration.1/event_type%3Dusers.x/date%3D2026-12-07-08/1/0/a+b%2B.avro"
        )
    )
    (location,) = created_objects(body)
    assert location == ObjectLocation(
        "drop",
        "currents/dataexport.p.S3.integration.1/event_type=users.x/date=2026-12-07-08/1/0/a b+.avro",
        "abc",
    )
    assert location.url.startswith("s3://drop/currents/")


def test_test_events_removals_and_other_sources_announce_nothing():
    assert created_objects(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})) == []
    assert created_objects(notification(s3_record("currents/x.avro", event="ObjectRemoved:Delete"))) == []
    assert created_objects(notification({**s3_record("currents/x.avro"), "eventSource": "aws:sqs"})) == []
