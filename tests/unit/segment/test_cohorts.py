"""Audience calls into cohort changes: the latest add or remove per user wins."""

from __future__ import annotations

from typing import Any

import pytest

from cdpbridge.integrations.segment.calls import parse_call
from cdpbridge.integrations.segment.cohorts import (
    CohortChanges,
    CohortCredentials,
    cohort_changes,
    collect,
    membership,
    read_cohort_credentials,
)
from cdpbridge.integrations.segment.options import SegmentOptions

AUDIENCE = {
    "personas": {"computation_class": "audience", "computation_key": "vip", "computation_id": "aud_9"}
}


def identify(user: str, member: bool, hour: str, **more: Any) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": user,
        "timestamp": f"2026-12-01T{hour}:00Z",
        "traits": {"vip": member},
        "context": AUDIENCE,
        **more,
    }


def test_identify_and_track_calls_of_an_audience_are_memberships() -> None:
    assert membership(parse_call(identify("u1", True, "09:00"))) is True
    exited = {"type": "track", "userId": "u1", "event": "Audience Exited", "timestamp": "2026-12-01T09:00Z"}
    assert membership(parse_call({**exited, "context": AUDIENCE})) is False
    trait = {
        **identify("u1", True, "09:00"),
        "context": {"personas": {"computation_class": "trait", "computation_key": "vip"}},
    }
    assert membership(parse_call(trait)) is None


def test_the_latest_change_per_user_wins_whatever_the_order() -> None:
    changes = collect(
        [identify("u1", False, "10:00"), identify("u1", True, "09:00"), identify("u2", True, "09:00")],
        SegmentOptions(),
    )
    (audience,) = changes.audiences.values()
    assert (audience.cohort_id, audience.audience_key) == ("aud_9", "vip")
    assert [change.model_dump(exclude_none=True) for change in cohort_changes(audience)] == [
        {"user_ids": ["u2"], "should_remove": False},
        {"user_ids": ["u1"], "should_remove": True},
    ]


def test_anonymous_members_are_aliases_only_when_configured() -> None:
    anonymous = identify("ignored", True, "09:00")
    del anonymous["userId"]
    anonymous["anonymousId"] = "a-1"
    assert collect([anonymous], SegmentOptions()).audiences == {}
    aliased = collect(
        [anonymous], SegmentOptions.model_validate({"anonymous": "alias", "alias_label": "anon"})
    )
    (audience,) = aliased.audiences.values()
    assert [change.model_dump(exclude_none=True) for change in cohort_changes(audience)] == [
        {"aliases": [{"alias_name": "a-1", "alias_label": "anon"}], "should_remove": False}
    ]


def test_only_the_listed_audiences_are_synced_and_bad_records_are_left_to_the_track_pass() -> None:
    options = SegmentOptions.model_validate({"cohorts": {"enabled": True, "audiences": ["other"]}})
    changes = CohortChanges(options)
    changes.add_record(identify("u1", True, "09:00"))
    changes.add_record({"type": "nonsense"})
    assert changes.audiences == {}


class SecretsStub:
    """Answers GetSecretValue with a fixed string, as Secrets Manager would for one secret."""

    def __init__(self, text: str) -> None:
        self.text = text

    def get_secret_value(self, SecretId: str) -> dict[str, str]:
        return {"SecretString": self.text}


def test_cohort_credentials_come_from_the_secrets_json() -> None:
    credentials = read_cohort_credentials(
        "s", SecretsStub('{"partner_api_key": "p", "data_import_key": "d"}')
    )
    assert credentials == CohortCredentials("p", "d")
    with pytest.raises(ValueError, match="partner_api_key and data_import_key"):
        read_cohort_credentials("s", SecretsStub('{"partner_api_key": "", "data_import_key": ""}'))
    with pytest.raises(ValueError, match="must hold JSON"):
        read_cohort_credentials("s", SecretsStub("plain"))
