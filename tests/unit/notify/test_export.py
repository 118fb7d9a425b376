"""The planner's segment export: users written with the e-mail hashed, never raw."""

from __future__ import annotations

import io
from datetime import date

from cdpbridge.integrations.notify.export import NOTIFY_EXPORT, USERS_COLUMNS, NotifyExportConfig, write_users
from cdpbridge.integrations.notify.hashing import email_sha256


def test_users_are_written_hashed_and_users_without_an_external_id_skipped() -> None:
    config = NotifyExportConfig.model_validate(
        {"segment": {"id": "seg-1"}, "program": "morning", "send_date": "2026-12-08"}
    )
    assert config.send_date == date(2026, 12, 8)
    assert config.export_fields() == ["external_id", "email", "time_zone"]
    out = io.StringIO()
    counters = write_users(
        config,
        [
            {"external_id": "a", "email": " A@Example.com", "time_zone": "Europe/Paris"},
            {"external_id": "b"},
            {"email": "orphan@example.com"},
        ],
        out,
    )
    assert (counters.rows_written, counters.users_skipped) == (2, 1)
    lines = out.getvalue().splitlines()
    assert lines[0] == ",".join(USERS_COLUMNS)
    assert lines[1] == f"a,{email_sha256('a@example.com')},Europe/Paris"
    assert lines[2] == "b,,"
    assert "example.com" not in out.getvalue()


def test_the_export_integration_is_notify() -> None:
    assert NOTIFY_EXPORT.name == "notify"
    assert NOTIFY_EXPORT.config_model is NotifyExportConfig
