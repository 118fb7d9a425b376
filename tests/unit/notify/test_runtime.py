"""The functions' settings and the planner's date: read lazily, errors naming the variable."""

from __future__ import annotations

from datetime import date

import pytest

from cdpbridge.environment import EnvironmentSettingsError, read_environment
from cdpbridge.integrations.notify import INTEGRATION, OPTIN_INBOUND_PREFIX
from cdpbridge.integrations.notify.runtime import (
    DispatchFunctionSettings,
    OptinFunctionSettings,
    PixelFunctionSettings,
    PlannerSettings,
    planned_date,
)


def test_settings_name_the_missing_variables() -> None:
    with pytest.raises(EnvironmentSettingsError, match="NOTIFY_PIXEL_KEY_SECRET"):
        read_environment(PixelFunctionSettings, {"ENGAGEMENT_PROFILE_TABLE": "engagement"})
    with pytest.raises(EnvironmentSettingsError, match="NOTIFY_OPTIN_TABLE"):
        read_environment(OptinFunctionSettings, {"DROP_BUCKET": "bucket"})
    with pytest.raises(EnvironmentSettingsError, match="SCHEDULES_TABLE"):
        read_environment(DispatchFunctionSettings, {"DROP_BUCKET": "bucket"})


def test_planner_settings_are_an_export_functions_plus_the_stores() -> None:
    settings = read_environment(
        PlannerSettings,
        {
            "INTEGRATION": "notify",
            "DROP_BUCKET": "bucket",
            "RUN_STATE_TABLE": "runs",
            "CONTINUATION_QUEUE_URL": "https://sqs/queue",
            "SCHEDULES_TABLE": "schedules",
            "ENGAGEMENT_PROFILE_TABLE": "engagement",
            "NOTIFY_OPTIN_TABLE": "optin",
        },
    )
    assert (settings.programs_prefix, settings.schedules_table) == ("config/notify/", "schedules")


def test_the_planner_plans_the_day_after_its_schedule_fired() -> None:
    assert planned_date({"detail-type": "Scheduled Event", "time": "2026-12-07T06:00:00Z"}) == date(
        2026, 12, 8
    )
    assert planned_date({"send_date": "2026-12-24"}) == date(2026, 12, 24)


def test_the_registry_entry() -> None:
    assert INTEGRATION.name == "notify"
    assert OPTIN_INBOUND_PREFIX.startswith(INTEGRATION.inbound_prefix)
