"""The emulator's settings model: defaults, partial updates and refusals."""

from __future__ import annotations

import pydantic
import pytest

from cdpbridge_local.emulator import EmulatorConfig
from cdpbridge_local.emulator.config import RATE_LIMIT_FAMILIES


def test_defaults_follow_the_reference() -> None:
    config = EmulatorConfig()
    assert set(config.rate_limits) == set(RATE_LIMIT_FAMILIES)
    assert (config.rate_limits["users.track"].limit, config.rate_limits["users.track"].window_s) == (3000, 3)
    assert (config.rate_limits["users.export"].limit, config.rate_limits["users.export"].window_s) == (
        250,
        60,
    )
    # Current workspaces: 75 objects combined across attributes, events and purchases.
    assert (config.track_cap.mode, config.track_cap.limit) == ("total", 75)
    # /users/export/ids alone in its family; cohort import in a 250,000/hour one.
    assert (config.rate_limits["cohorts"].limit, config.rate_limits["cohorts"].window_s) == (250_000, 3600)
    assert config.rate_limits["campaigns.trigger.broadcast"].limit == 250
    assert config.array_max_length == 25 and config.export_delay_s == 1.0
    assert config.faults.failure_probability() == 0


def test_families_not_given_keep_their_defaults() -> None:
    config = EmulatorConfig.model_validate({"rate_limits": {"users.track": {"limit": 5, "window_s": 1}}})
    assert config.rate_limits["users.track"].limit == 5
    assert config.rate_limits["lists"].limit == 250_000


def test_merged_with_changes_one_level_deep_and_leaves_the_original() -> None:
    original = EmulatorConfig()
    changed = original.merged_with({"faults": {"status_503": 0.5}, "rate_limits": {"cohorts": {"limit": 2}}})
    assert changed.faults.status_503 == 0.5 and changed.faults.slow_ms == 5000
    assert (changed.rate_limits["cohorts"].limit, changed.rate_limits["cohorts"].window_s) == (2, 3600)
    assert original.faults.status_503 == 0 and original.rate_limits["cohorts"].limit == 250_000


@pytest.mark.parametrize(
    "changes",
    [
        {"rate_limits": {"users.everything": {"limit": 1, "window_s": 1}}},
        {"rate_limits": {"lists": {"limit": 0}}},
        {"faults": {"drop_connection": 1.5}},
        {"track_cap": {"mode": "per_request"}},
        {"array_max_length": 501},
        {"export_s3": {"bucket": "b"}},
        {"latency_ms": -1},
        {"unknown_setting": True},
    ],
)
def test_invalid_changes_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        EmulatorConfig().merged_with(changes)
