"""Which per-object users.track errors say the user is not in Braze (counted, never created)."""

from __future__ import annotations

import pytest

from cdpbridge.braze.track import names_missing_user
from cdpbridge.sync.counters import RunCounters


@pytest.mark.parametrize(
    "error_type",
    [
        "user not found and '_update_existing_only' is true",
        "'braze_id' does not match any user (braze_id cannot create users)",
        "User does not exist",
    ],
)
def test_missing_user_errors_are_recognised(error_type: str) -> None:
    assert names_missing_user(error_type)


@pytest.mark.parametrize("error_type", ["Invalid attribute name", "string value longer than 255 characters"])
def test_other_errors_are_not_missing_users(error_type: str) -> None:
    assert not names_missing_user(error_type)


def test_the_count_survives_the_report_and_merges_across_parts() -> None:
    first, second = RunCounters(users_missing_in_braze=2), RunCounters(users_missing_in_braze=3)
    first.merge(second)
    assert RunCounters.from_dict(first.to_dict()).users_missing_in_braze == 5


def test_a_refused_operation_on_an_attribute_is_not_a_missing_user() -> None:
    assert not names_missing_user("'inc' on 'points' which does not hold a number")
