"""BlueConic deltas through the engine into the emulator: every merge strategy, creation on and off,
set_if_empty look-ups and the data points a mostly unchanged delta saves."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from cdpbridge.integrations.blueconic import EXAMPLE_DELTA_PATH, example_mapping
from cdpbridge.sync.artifacts import iter_rejects

from ..emulator_admin import Braze
from ..job_runner import Runner

pytestmark = pytest.mark.integration

with EXAMPLE_DELTA_PATH.open(newline="", encoding="utf-8") as _handle:
    _reader = csv.DictReader(_handle)
    COLUMNS: list[str] = list(_reader.fieldnames or [])
    EXAMPLE_ROWS: list[dict[str, str]] = list(_reader)


def write_delta(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def profile_row(index: int, **overrides: str) -> dict[str, str]:
    """A generated BlueConic profile of the example's shape."""
    row = {
        "profile_id": f"00000000-0000-4000-8000-{index:012d}",
        "crm_customer_id": f"CRM-9{index:05d}",
        "email": f"user{index}@example.com",
        "firstname": "Kim",
        "lastname": f"Tester{index}",
        "gender": "female",
        "city": "Berlin",
        "country": "DE",
        "language": "de",
        "first_visit_date": "2024-02-01T10:00:00Z",
        "acquisition_channel": "newsletter",
        "loyalty_points_earned": "5",
        "interests": "running",
        "viewed_categories": '["shoes"]',
        "loyalty_tier": "silver",
        "churn_risk_score": "0.2",
        "visits": str(index),
        "last_visit_date": "2024-05-06T07:00:00Z",
        "preferred_store": "Mitte",
        "consent_marketing": "true",
    }
    row.update(overrides)
    return row


def test_the_example_delta_ends_as_exactly_the_expected_profiles(braze: Braze, runner: Runner) -> None:
    # Given two of the delta's profiles already in Braze, written by some other source
    braze.seed(
        {
            "external_id": "CRM-100001",
            "first_name": "Annette",
            "first_seen_at": "2019-06-01T00:00:00Z",
            "loyalty_points": 1000,
            "interests": ["reading"],
            "loyalty_tier": "silver",
            "bc_visits": "40",
        },
        {
            "external_id": "CRM-100003",
            "acquisition_channel": "partner",
            "loyalty_points": 5,
            "interests": ["hiking"],
            "loyalty_tier": "gold",
            "churn_risk": 0.5,
        },
    )

    # When the example delta runs with the example mapping
    outcome = runner.run(EXAMPLE_DELTA_PATH, example_mapping())

    # Then every profile holds exactly what each strategy makes of the delta
    assert outcome.finished and outcome.counters.rows_rejected == 0
    assert braze.user_count() == 5
    assert braze.attributes("CRM-100001") == {
        "first_name": "Anna",  # set replaces
        "last_name": "Becker",
        "email": "anna.becker@example.com",
        "gender": "F",
        "home_city": "Berlin",
        "country": "DE",
        "language": "de",
        "first_seen_at": "2019-06-01T00:00:00Z",  # set_if_empty: Braze held a value, kept
        "acquisition_channel": "newsletter",  # set_if_empty: Braze held none, written
        "loyalty_points": 1120,  # sum: 1000 + 120
        "interests": ["reading", "running", "yoga"],  # add with a separator
        "viewed_categories": ["shoes", "sportswear"],  # add with a JSON array cell
        "loyalty_tier": "gold",  # clear with a value sets it
        "churn_risk": 0.12,
        "bc_profile_id": "8f3c2a61-5d1e-4b8a-9c0f-1e2d3c4b5a60",  # remaining, prefixed
        "bc_visits": "48",
        "bc_last_visit_date": "2024-05-06T07:55:12Z",
        "bc_preferred_store": "Berlin Mitte",
        "bc_consent_marketing": "true",
    }
    assert braze.attributes("CRM-100003") == {
        "first_name": "Maya",
        "last_name": "Chen",
        "email": "maya.chen@example.com",
        "gender": "F",
        "home_city": "Austin",
        "country": "US",
        "language": "en",
        "first_seen_at": "2022-11-20T14:45:00Z",
        "acquisition_channel": "partner",  # set_if_empty kept Braze's value
        "loyalty_points": 5,  # a sum of 0 changes nothing
        "interests": ["hiking"],  # an empty add changes nothing
        # loyalty_tier and churn_risk: clear with an empty value unset them
        "bc_profile_id": "c4d8e2f0-9a1b-4e6c-b3d7-5f0e2a8c6b42",
        "bc_visits": "112",
        "bc_last_visit_date": "2024-05-06T06:02:37Z",
        "bc_preferred_store": "Austin Domain",
        "bc_consent_marketing": "true",
    }
    # And profiles Braze did not know are created (allow-create on)
    assert braze.attributes("CRM-100002") == {
        "first_name": "Luc",
        "last_name": "Dubois",
        "email": "luc.dubois@example.com",
        "gender": "M",
        "home_city": "Lyon",
        "country": "FR",
        "language": "fr",
        "first_seen_at": "2024-01-03T19:02:44Z",
        "acquisition_channel": "paid_search",
        "loyalty_points": 35,
        "interests": ["cycling"],
        "viewed_categories": ["bikes"],
        "loyalty_tier": "silver",
        "churn_risk": 0.41,
        "bc_profile_id": "0b7e9d14-2f6a-4c3e-8d5b-7a9c1e3f5d21",
        "bc_visits": "7",
        "bc_last_visit_date": "2024-05-05T21:14:09Z",
        "bc_consent_marketing": "false",  # (no bc_preferred_store: its cell was empty)
    }
    assert braze.attributes("CRM-100004")["viewed_categories"] == ["headphones", "consoles"]
    assert braze.attributes("CRM-100005")["first_name"] == "Inés"
    # And the set_if_empty look-ups are in the report: one call for the five users
    assert outcome.report is not None
    assert outcome.report["lookup_requests"] == 1
    assert outcome.report["lookup_users"] == 5
    assert outcome.report["attributes_set_if_empty_skipped"] == 2


def test_sum_sends_whole_numbers_as_increments_and_rejects_decimals_and_text(
    tmp_path: Path, braze: Braze, runner: Runner
) -> None:
    # Given a profile holding 10 points and a delta with a decimal, a word and a whole number
    braze.seed({"external_id": "CRM-900003", "loyalty_points": 10})
    path = write_delta(
        tmp_path / "sums.csv",
        [
            profile_row(1, loyalty_points_earned="2.5"),
            profile_row(2, loyalty_points_earned="many"),
            profile_row(3, loyalty_points_earned="+7"),
        ],
    )

    # When it runs
    outcome = runner.run(path, example_mapping())

    # Then the whole number was added to what Braze held
    assert braze.attributes("CRM-900003")["loyalty_points"] == 17
    # And the other rows are rejects naming the row, the column and the reason; nothing of them was sent
    assert braze.user("CRM-900001") is None and braze.user("CRM-900002") is None
    assert outcome.report is not None and outcome.report["rejects_file"]
    rejects = {int(r["row"]): r for r in iter_rejects(Path(outcome.report["rejects_file"]).read_bytes())}
    assert set(rejects) == {1, 2}
    for row in (1, 2):
        assert rejects[row]["column"] == "loyalty_points_earned"
        assert rejects[row]["reason"].startswith("sum needs a whole number (Braze increments integers)")
        assert rejects[row]["source"] == str(path)
    assert "'2.5'" in rejects[1]["detail"]
    assert outcome.counters.rows_rejected == 2


def test_set_if_empty_is_looked_up_in_batches_of_50_once_then_decided_from_dedupe_state(
    tmp_path: Path, braze: Braze, runner: Runner
) -> None:
    # Given 120 profiles, 30 of which already hold an acquisition channel set outside the bridge
    braze.seed(*({"external_id": f"CRM-9{n:05d}", "acquisition_channel": "partner"} for n in range(30)))
    first = write_delta(tmp_path / "day1.csv", [profile_row(n) for n in range(120)])

    # When the first delta runs (the bridge has no state for these users yet)
    day1 = runner.run(first, example_mapping())

    # Then Braze was asked once per 50 users, and only the empty attributes were written
    assert day1.counters.lookup_requests == 3
    assert day1.counters.lookup_users == 120
    assert day1.counters.attributes_set_if_empty_skipped == 30
    assert day1.report is not None and day1.report["lookup_seconds"] > 0
    assert braze.attributes("CRM-900000")["acquisition_channel"] == "partner"
    assert braze.attributes("CRM-900050")["acquisition_channel"] == "newsletter"
    assert braze.attributes("CRM-900050")["first_seen_at"] == "2024-02-01T10:00:00Z"

    # When a second delta brings other values for both set_if_empty fields
    second = write_delta(
        tmp_path / "day2.csv",
        [
            profile_row(n, first_visit_date="2024-03-03T03:00:00Z", acquisition_channel="social")
            for n in range(120)
        ],
    )
    day2 = runner.run(second, example_mapping())

    # Then the dedupe state decides without asking Braze, and no value changes
    assert day2.counters.lookup_requests == 0
    assert day2.counters.attributes_set_if_empty_skipped == 240
    assert braze.attributes("CRM-900050")["acquisition_channel"] == "newsletter"
    assert braze.attributes("CRM-900050")["first_seen_at"] == "2024-02-01T10:00:00Z"


def test_with_creation_off_unknown_profiles_are_not_created_and_come_back_as_rejects(
    braze: Braze, runner: Runner
) -> None:
    # Given a mapping with allow-create off and only two of the delta's profiles in Braze
    mapping = example_mapping().model_copy(update={"create_missing": False})
    assert mapping.update_existing_only
    braze.seed({"external_id": "CRM-100001", "loyalty_points": 1}, {"external_id": "CRM-100004"})

    # When the example delta runs
    outcome = runner.run(EXAMPLE_DELTA_PATH, mapping)

    # Then the known profiles are updated, the others neither created nor lost silently
    assert braze.user_count() == 2
    assert braze.attributes("CRM-100001")["loyalty_points"] == 121
    assert braze.attributes("CRM-100004")["loyalty_tier"] == "platinum"
    assert outcome.counters.objects_rejected_by_braze == 3
    assert outcome.report is not None
    rejects = list(iter_rejects(Path(outcome.report["rejects_file"]).read_bytes()))
    assert sorted(int(r["row"]) for r in rejects) == [2, 3, 5]
    assert {r["reason"] for r in rejects} == {"braze: user not found and '_update_existing_only' is true"}


def changed(rows: list[dict[str, str]], crm_id: str, **values: str) -> None:
    for row in rows:
        if row["crm_customer_id"] == crm_id:
            row.update(values)


def test_a_second_delta_with_mostly_unchanged_values_reports_the_data_points_saved(
    tmp_path: Path, braze: Braze, runner: Runner
) -> None:
    # Given the example delta already applied
    runner.run(EXAMPLE_DELTA_PATH, example_mapping())
    billed_before = braze.stats()["data_points"]
    # And the next delta: the same five profiles with every property, four values changed and
    # ten points earned by one of them (nothing earned by the others)
    rows: list[dict[str, Any]] = [dict(row, loyalty_points_earned="") for row in EXAMPLE_ROWS]
    changed(
        rows,
        "CRM-100001",
        visits="49",
        last_visit_date="2024-05-07T09:00:00Z",
        churn_risk_score="0.1",
        loyalty_points_earned="10",
    )
    changed(rows, "CRM-100004", loyalty_tier="gold")
    path = write_delta(tmp_path / "delta2.csv", rows)

    # When it runs
    outcome = runner.run(path, example_mapping())

    # Then only the changed values are sent: the 8 add writes resend lists whose 13 elements Braze
    # acknowledged the first time (lists are deduped element by element), and the rest is reported
    # as saved
    counters = outcome.counters
    assert counters.attributes_sent == 5  # 4 changed values and 1 increment
    assert counters.data_points_sent == 5
    assert counters.attributes_unchanged == 64 + 8
    assert counters.data_points_saved == 64 + 13  # an add costs one data point per value
    assert counters.attributes_set_if_empty_skipped == 10
    assert counters.lookup_requests == 0
    assert outcome.report is not None and outcome.report["data_points_saved"] == 64 + 13
    # And Braze billed exactly what the report says was sent
    assert braze.stats()["data_points"] - billed_before == counters.data_points_sent
    held = braze.attributes("CRM-100001")
    assert (held["bc_visits"], held["churn_risk"], held["loyalty_points"]) == ("49", 0.1, 130)
    assert braze.attributes("CRM-100004")["loyalty_tier"] == "gold"
