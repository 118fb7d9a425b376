"""The dispatcher's pure parts: send ids per slot, instants, the send dates around a moment."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from cdpbridge.integrations.notify.dispatcher import (
    DispatchReport,
    parse_instant,
    send_dates_around,
    send_id_of,
)


def test_one_send_id_per_program_and_slot() -> None:
    assert send_id_of("morning", "2026-12-08T09:15:00Z") == "notify-morning-20261208T091500Z"
    long_name = "a" * 80
    first = send_id_of(long_name, "2026-12-08T09:15:00Z")
    assert len(first) <= 64 and first.endswith("20261208T091500Z")
    assert first == send_id_of(long_name, "2026-12-08T09:15:00Z")
    assert first != send_id_of("a" * 81, "2026-12-08T09:15:00Z")


def test_instants_need_an_offset() -> None:
    assert parse_instant("2026-12-08T10:15:00+01:00") == datetime(2026, 12, 8, 9, 15, tzinfo=UTC)
    assert parse_instant("2026-12-08T09:15:00Z") == datetime(2026, 12, 8, 9, 15, tzinfo=UTC)
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_instant("2026-12-08T09:15:00")


def test_send_dates_around_a_moment() -> None:
    assert send_dates_around(datetime(2026, 12, 8, 23, 0, tzinfo=UTC)) == [
        date(2026, 12, 7),
        date(2026, 12, 8),
        date(2026, 12, 9),
    ]


def test_the_report_as_json() -> None:
    report = DispatchReport("morning", "2026-12-08T09:15:00Z", due=2, sent=1)
    report.skipped_late.append(("user-1", "2026-12-08T08:00:00Z"))
    report.unconfirmed.append("user-2")
    data = report.to_dict()
    assert data["skipped_late"] == [{"external_id": "user-1", "send_at": "2026-12-08T08:00:00Z"}]
    assert data["unconfirmed"] == 1
