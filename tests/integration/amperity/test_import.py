"""Amperity query results and audience files through the engine into the emulator: the eight types,
update-only with missing users counted, a second run writing nothing, audiences joining and leaving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cdpbridge.integrations.amperity import (
    EXAMPLE_AUDIENCES_MAPPING_PATH,
    EXAMPLE_AUDIENCES_PATH,
    EXAMPLE_MAPPING_PATH,
    EXAMPLE_RESULTS_PATH,
)
from cdpbridge.mapping import load_mapping
from cdpbridge.sync.artifacts import iter_rejects

from ..emulator_admin import Braze
from ..job_runner import Runner

pytestmark = pytest.mark.integration

# What Braze holds after the example results ran over AMP-1001..AMP-1004 (AMP-1005 is not in Braze).
EXPECTED_PROFILES: dict[str, dict[str, Any]] = {
    "AMP-1001": {
        "first_name": "Anna",
        "last_name": "Becker",
        "dob": "1988-03-14",
        "home_city": "Berlin",
        "loyalty_member": True,
        "last_purchase_at": "2024-05-06T07:55:12Z",  # 09:55:12+02:00
        "l12m_monetary": 1234.5,
        "predicted_clv": 2875.125,
        "l12m_frequency": 14,
        "preferred_store": "Berlin Mitte",
        "loyalty_tier": "gold",
    },
    "AMP-1002": {
        "first_name": "Luc",
        "last_name": "Dubois",
        "dob": "1979-11-02",
        "home_city": "Lyon",
        "loyalty_member": False,
        "last_purchase_at": "2024-05-05T21:14:09Z",  # no zone: UTC
        "l12m_monetary": 89.99,
        "predicted_clv": 310.5,
        "l12m_frequency": 2,
        "preferred_store": "Lyon Part-Dieu",
        "loyalty_tier": "silver",
    },
    "AMP-1003": {
        "first_name": "Sofía",
        "last_name": "García",
        "dob": "1995-07-30",
        "home_city": "Sevilla",
        "loyalty_member": True,
        "last_purchase_at": "2024-04-28T13:00:00Z",  # 08:00-05:00
        "l12m_monetary": 12345678.9,
        "predicted_clv": 0.25,
        "l12m_frequency": 37,
        "preferred_store": "Málaga Plaza Mayor 1",  # 20 characters (21 bytes): within varchar(20)
        "loyalty_tier": "platinum",
    },
}
# AMP-1004's store name is 22 characters, over varchar(20): the row is a reject, the profile untouched.
UNTOUCHED = {"external_id": "AMP-1004", "loyalty_tier": "silver"}


def seed_known_users(braze: Braze) -> None:
    braze.seed(
        {"external_id": "AMP-1001", "loyalty_tier": "silver", "l12m_frequency": 3},
        {"external_id": "AMP-1002"},
        {"external_id": "AMP-1003", "first_name": "Sofia"},
        UNTOUCHED,
    )


def profile(braze: Braze, external_id: str) -> dict[str, Any]:
    return braze.attributes(external_id)


def test_query_results_of_all_eight_types_end_as_exactly_the_expected_profiles(
    braze: Braze, runner: Runner
) -> None:
    # Given four of the five users in Braze
    seed_known_users(braze)

    # When the example results run with the example mapping
    outcome = runner.run(EXAMPLE_RESULTS_PATH, load_mapping(EXAMPLE_MAPPING_PATH))

    # Then each known user holds exactly the typed values, the unknown one is not created but counted
    assert outcome.finished
    for external_id, expected in EXPECTED_PROFILES.items():
        assert profile(braze, external_id) == expected, external_id
    assert profile(braze, "AMP-1004") == {"loyalty_tier": "silver"}
    assert braze.user("AMP-1005") is None
    assert braze.user_count() == 4
    counters = outcome.counters
    assert (counters.rows_read, counters.rows_rejected, counters.users_missing_in_braze) == (5, 1, 1)
    assert outcome.report is not None and outcome.report["users_missing_in_braze"] == 1
    rejects = list(iter_rejects(Path(outcome.report["rejects_file"]).read_bytes()))
    by_row = {int(reject["row"]): reject for reject in rejects}
    assert by_row[4]["column"] == "preferred_store"
    assert by_row[4]["reason"] == "longer than its declared length of 20 characters"
    assert by_row[5]["reason"].startswith("braze: user not found")


def test_the_second_run_of_the_same_file_writes_nothing(braze: Braze, runner: Runner) -> None:
    # Given the example results applied once
    seed_known_users(braze)
    mapping = load_mapping(EXAMPLE_MAPPING_PATH)
    runner.run(EXAMPLE_RESULTS_PATH, mapping)
    data_points_before = braze.stats()["data_points"]

    # When the same file runs again
    again = runner.run(EXAMPLE_RESULTS_PATH, mapping)

    # Then no attribute is written (the missing user is asked for again, and counted again)
    counters = again.counters
    assert (counters.users_written, counters.attributes_sent, counters.data_points_sent) == (0, 0, 0)
    assert counters.attributes_unchanged == 3 * 11
    assert counters.users_missing_in_braze == 1
    assert braze.stats()["data_points"] == data_points_before
    for external_id, expected in EXPECTED_PROFILES.items():
        assert profile(braze, external_id) == expected


def test_creation_on_creates_the_missing_user(braze: Braze, runner: Runner) -> None:
    seed_known_users(braze)
    mapping = load_mapping(EXAMPLE_MAPPING_PATH).model_copy(update={"create_missing": True})

    outcome = runner.run(EXAMPLE_RESULTS_PATH, mapping)

    assert outcome.counters.users_missing_in_braze == 0
    assert profile(braze, "AMP-1005")["l12m_monetary"] == 450.0


def write_audiences(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    lines = ["customer_id,audience,is_member", *(",".join(row) for row in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_audiences_become_attributes_and_leaving_unsets_them(
    tmp_path: Path, braze: Braze, runner: Runner
) -> None:
    # Given the example audiences over users Braze knows (AMP-1005 is not in Braze)
    braze.seed({"external_id": "AMP-1001"}, {"external_id": "AMP-1002"}, {"external_id": "AMP-1003"})
    mapping = load_mapping(EXAMPLE_AUDIENCES_MAPPING_PATH)

    first = runner.run(EXAMPLE_AUDIENCES_PATH, mapping)

    # Then each membership is a boolean attribute named by the pattern
    assert profile(braze, "AMP-1001") == {"amperity_high_value": True}
    assert profile(braze, "AMP-1002") == {"amperity_lapsed_buyers": True}
    assert profile(braze, "AMP-1003") == {"amperity_high_value": True}
    assert first.counters.users_missing_in_braze == 1

    # When AMP-1001 leaves High Value and joins Lapsed Buyers
    changes = write_audiences(
        tmp_path / "audiences-day2.csv",
        [("AMP-1001", "High Value", "false"), ("AMP-1001", "Lapsed Buyers", "true")],
    )
    runner.run(changes, mapping)

    # Then the left audience's attribute is gone and the joined one set
    assert profile(braze, "AMP-1001") == {"amperity_lapsed_buyers": True}


def test_on_leave_false_and_score_audiences(tmp_path: Path, braze: Braze, runner: Runner) -> None:
    braze.seed({"external_id": "AMP-1001"}, {"external_id": "AMP-1002"})
    flags = load_mapping(
        EXAMPLE_AUDIENCES_MAPPING_PATH.read_text(encoding="utf-8").replace(
            "on_leave: unset", "on_leave: false"
        )
    )
    runner.run(write_audiences(tmp_path / "a.csv", [("AMP-1001", "VIP", "true")]), flags)
    runner.run(write_audiences(tmp_path / "b.csv", [("AMP-1001", "VIP", "false")]), flags)
    assert profile(braze, "AMP-1001") == {"amperity_vip": False}

    scores = load_mapping(
        "version: 1\nintegration: amperity\nidentifier: {column: customer_id}\n"
        "audiences: {score_column: score, attribute_pattern: 'amperity_{audience}_score'}\n"
    )
    path = tmp_path / "scores.csv"
    path.write_text("customer_id,audience,score\nAMP-1002,Churn Risk,0.82\nAMP-1002,Frequency,7\n")
    runner.run(path, scores)
    assert profile(braze, "AMP-1002") == {"amperity_churn_risk_score": 0.82, "amperity_frequency_score": 7}
    path.write_text("customer_id,audience,score\nAMP-1002,Churn Risk,\n")
    runner.run(path, scores)
    assert profile(braze, "AMP-1002") == {"amperity_frequency_score": 7}
