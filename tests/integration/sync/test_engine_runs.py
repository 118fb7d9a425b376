"""The engine end to end over real HTTP: exact final state, dedupe, deltas, resume, rejects, faults."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cdpbridge.mapping import load_mapping
from cdpbridge.sync.artifacts import iter_rejects
from cdpbridge.sync.job import JobRequest, run_part
from cdpbridge_local.demo_data import (
    CUSTOMER_COLUMNS,
    CUSTOMER_MAPPING_YAML,
    customer_rows,
    write_customers_csv,
)

from .conftest import Braze, Runner

pytestmark = pytest.mark.integration

USERS = 600


def expected_attributes(row: list[str]) -> dict[str, object]:
    """What Braze must hold for one demo row, computed from the row without the mapper."""
    values = dict(zip(CUSTOMER_COLUMNS, row, strict=True))
    return {
        "first_name": values["first_name"],
        "last_name": values["last_name"],
        "email": values["email"],
        "phone": values["phone"],
        "dob": values["dob"],
        "country": values["country"],
        "home_city": values["home_city"],
        "language": values["language"],
        "gender": values["gender"],
        "loyalty_tier": values["loyalty_tier"],
        "loyalty_points": int(values["loyalty_points"]),
        "lifetime_value": float(values["lifetime_value"]),
        "orders_count": int(values["orders_count"]),
        "zip_code": values["zip_code"],
        "newsletter": values["newsletter"] == "true",
        "preferred_channel": values["preferred_channel"],
        "favourite_category": values["favourite_category"],
        "churn_score": float(values["churn_score"]),
    }


def assert_profiles_match(braze: Braze, rows: list[list[str]]) -> None:
    for row in rows:
        profile = braze.user(row[0])
        assert profile is not None, f"user {row[0]} missing"
        held = profile["attributes"]
        for name, value in expected_attributes(row).items():
            assert held.get(name) == value, f"{row[0]}.{name}: {held.get(name)!r} != {value!r}"
        assert "last_order_at" in held


def changed_values(count: int, change_share: float) -> int:
    before = customer_rows(count)
    after = customer_rows(count, generation=1, change_share=change_share)
    return sum(a != b for old, new in zip(before, after, strict=True) for a, b in zip(old, new, strict=True))


def test_a_file_ends_as_exactly_the_expected_profiles(tmp_path: Path, braze: Braze, runner: Runner) -> None:
    # Given a generated customer file
    path = write_customers_csv(tmp_path / "customers.csv", USERS)
    # When it runs through the engine
    outcome = runner.run(path, CUSTOMER_MAPPING_YAML)
    # Then every user holds exactly the file's values, in full requests
    assert outcome.finished
    assert outcome.counters.rows_read == USERS
    assert outcome.counters.rows_rejected == 0
    assert braze.user_count() == USERS
    assert_profiles_match(braze, list(customer_rows(USERS)))
    assert outcome.counters.requests == -(-USERS // 75)
    assert outcome.report is not None and outcome.report["rows_read"] == USERS


def test_a_second_run_of_the_same_file_writes_nothing(tmp_path: Path, braze: Braze, runner: Runner) -> None:
    path = write_customers_csv(tmp_path / "customers.csv", USERS)
    first = runner.run(path, CUSTOMER_MAPPING_YAML)
    billed_after_first = braze.stats()["data_points"]
    # When the very same file arrives again (a new run of it)
    second = runner.run(path, CUSTOMER_MAPPING_YAML, run_id="second")
    # Then nothing is sent and every value counts as saved
    assert first.counters.attributes_sent == USERS * 19
    assert second.counters.attributes_sent == 0
    assert second.counters.requests == 0
    assert second.counters.attributes_unchanged == USERS * 19
    assert second.counters.data_points_saved == first.counters.data_points_sent
    assert braze.stats()["data_points"] == billed_after_first


def test_a_delta_writes_only_the_changed_values(tmp_path: Path, braze: Braze, runner: Runner) -> None:
    runner.run(write_customers_csv(tmp_path / "day1.csv", USERS), CUSTOMER_MAPPING_YAML)
    day2 = write_customers_csv(tmp_path / "day2.csv", USERS, generation=1, change_share=0.1)
    expected_changes = changed_values(USERS, 0.1)
    # When the delta runs
    outcome = runner.run(day2, CUSTOMER_MAPPING_YAML)
    # Then exactly the changed values are written, and Braze holds the new file
    assert expected_changes > USERS  # about two values a row
    assert outcome.counters.attributes_sent == expected_changes
    assert outcome.counters.data_points_sent == expected_changes
    assert braze.stats()["unchanged_writes"] == 0
    assert_profiles_match(braze, list(customer_rows(USERS, generation=1, change_share=0.1)))


EVENTS_MAPPING = """\
version: 1
integration: generic
source: {format: csv}
identifier: {column: id, as: external_id}
fields:
  - {column: tier, attribute: tier, type: string, strategy: set}
  - {column: visits, attribute: visits, type: integer, strategy: sum}
events:
  - {name: order_placed, time_column: at, properties: {amount: {column: amount, type: float}}}
purchases:
  - {product_id_column: sku, currency: EUR, price_column: amount, time_column: at}
"""


def write_event_file(path: Path, rows: int) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "tier", "visits", "at", "amount", "sku"])
        for index in range(rows):
            writer.writerow(
                [
                    f"u{index % 50}",
                    f"tier{index % 3}",
                    "1",
                    f"2026-11-0{1 + index % 9}T10:00:00Z",
                    f"{index}.5",
                    f"sku{index % 7}",
                ]
            )
    return path


def test_a_run_killed_mid_file_resumes_to_the_same_state_without_sending_events_twice(
    tmp_path: Path, braze: Braze, runner: Runner
) -> None:
    path = write_event_file(tmp_path / "orders.csv", 3000)
    # Given a reference: the whole file in one go, on a fresh emulator
    reference = runner.run(path, EVENTS_MAPPING, run_id="reference", chunk_rows=200)
    expected = {f"u{n}": braze.user(f"u{n}") for n in range(50)}
    braze.reset()
    runner.workdir = tmp_path / "second"
    runner.workdir.mkdir()

    # When a run crashes after a few chunks (checkpointing at every chunk) and is started again
    services = runner.services(chunk_rows=200, checkpoint_interval_s=0.0)
    crashes = {"left": 4}

    def crash_after_a_few_chunks(_counters: object) -> None:
        crashes["left"] -= 1
        if crashes["left"] == 0:
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        run_part(_request(path, "resumed"), services, progress=crash_after_a_few_chunks)
    partial_events = sum(len((braze.user(f"u{n}") or {"events": []})["events"]) for n in range(50))
    assert 0 < partial_events < 3000
    resumed = run_part(_request(path, "resumed"), runner.services(chunk_rows=200, checkpoint_interval_s=0.0))

    # Then the final state is identical, every event and purchase exactly once
    assert resumed.finished
    assert resumed.counters.rows_read == 3000
    for n in range(50):
        got = braze.user(f"u{n}")
        assert got is not None and expected[f"u{n}"] is not None
        assert got["attributes"] == expected[f"u{n}"]["attributes"]
        assert len(got["events"]) == len(expected[f"u{n}"]["events"]) == 60
        assert len(got["purchases"]) == len(expected[f"u{n}"]["purchases"]) == 60
    assert reference.counters.events_sent == 3000


def _request(path: Path, run_id: str) -> JobRequest:
    stat = path.stat()
    return JobRequest(
        "generic",
        str(path),
        f"{stat.st_size}-{stat.st_mtime_ns}",
        run_id,
        datetime.now(UTC),
        load_mapping(EVENTS_MAPPING),
    )


BAD_ROWS_MAPPING = """\
version: 1
integration: generic
source: {format: csv}
identifier: {column: id, as: external_id}
create_missing: false
fields:
  - {column: points, attribute: points, type: integer, strategy: set}
  - {column: email, attribute: email, type: string, strategy: set}
"""


def test_malformed_rows_and_braze_errors_land_in_rejects_while_good_rows_apply(
    tmp_path: Path, braze: Braze, runner: Runner
) -> None:
    # Given users that exist in Braze, and a file with bad cells, missing ids and unknown users
    existing = tmp_path / "existing.csv"
    existing.write_text("id,points,email\n" + "".join(f"e{n},{n},e{n}@example.com\n" for n in range(10)))
    runner.run(existing, BAD_ROWS_MAPPING.replace("create_missing: false", "create_missing: true"))
    path = tmp_path / "delta.csv"
    path.write_text(
        "id,points,email\n"
        "e1,100,e1@example.com\n"  # row 1: good
        ",5,nobody@example.com\n"  # row 2: missing identifier
        "e2,1.5,e2@example.com\n"  # row 3: not an integer
        "unknown1,7,u1@example.com\n"  # row 4: Braze refuses: update-only and no such user
        "e3,300,not-an-email\n"  # row 5: invalid email
        "e4,400,e4@example.com\n"  # row 6: good
        'e5,"unterminated\n'  # row 7: ragged
    )
    # When it runs
    outcome = runner.run(path, BAD_ROWS_MAPPING)
    # Then good rows are applied and each bad one is in the rejects file with its row and reason
    assert braze.user("e1")["attributes"]["points"] == 100  # type: ignore[index]
    assert braze.user("e4")["attributes"]["points"] == 400  # type: ignore[index]
    assert braze.user("e2")["attributes"]["points"] == 2  # type: ignore[index]
    assert braze.user("unknown1") is None
    assert outcome.report is not None and outcome.report["rejects_file"]
    rejects = list(iter_rejects(Path(outcome.report["rejects_file"]).read_bytes()))
    by_row = {int(r["row"]): r for r in rejects}
    assert set(by_row) == {2, 3, 4, 5, 7}
    assert by_row[2]["column"] == "id"
    assert by_row[3]["column"] == "points"
    assert by_row[4]["reason"].startswith("braze: ")
    assert by_row[5]["column"] == "email"
    assert "not-an-email" not in by_row[5]["detail"]
    assert outcome.counters.objects_rejected_by_braze == 1


def test_faults_and_rate_limits_still_end_in_the_exact_state(
    tmp_path: Path, braze: Braze, runner: Runner
) -> None:
    # Given a Braze that throttles, fails and drops connections
    braze.configure(
        seed=11,
        faults={
            "status_429": 0.1,
            "status_500": 0.05,
            "status_502_html": 0.05,
            "status_503": 0.05,
            "drop_connection": 0.05,
        },
    )
    path = write_customers_csv(tmp_path / "customers.csv", USERS)
    # When the file runs
    outcome = runner.run(path, CUSTOMER_MAPPING_YAML)
    # Then every user is exact and nothing went to the retry file
    assert outcome.counters.retries > 0
    assert outcome.counters.objects_to_retry_file == 0
    braze.configure(
        faults={"status_429": 0, "status_500": 0, "status_502_html": 0, "status_503": 0, "drop_connection": 0}
    )
    assert_profiles_match(braze, list(customer_rows(USERS)))


def test_an_unreadable_file_applies_the_rows_before_the_damage_and_reports_it(
    tmp_path: Path, braze: Braze, runner: Runner
) -> None:
    # Given a gzip file cut off in the middle
    import gzip  # noqa: PLC0415
    import random  # noqa: PLC0415

    # (random text, so that the damage lies beyond the first megabyte the reader decompresses)
    rng = random.Random(5)
    lines = "".join(f"g{n},{n},g{n}.{rng.getrandbits(128):032x}@example.com\n" for n in range(60_000))
    whole = gzip.compress(("id,points,email\n" + lines).encode())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(whole[: len(whole) * 3 // 4])
    # When it runs
    outcome = runner.run(path, BAD_ROWS_MAPPING.replace("create_missing: false", "create_missing: true"))
    # Then the rows before the damage are in Braze and the report says the file failed and where
    assert outcome.report is not None
    assert outcome.report["status"] == "failed"
    assert outcome.counters.rows_read > 0
    assert braze.user_count() == outcome.counters.rows_read
    assert braze.user("g0") is not None
    rejects = list(iter_rejects(Path(outcome.report["rejects_file"]).read_bytes()))
    assert rejects[-1]["reason"] == "unreadable file"


def test_objects_braze_never_took_go_to_a_retry_file_that_the_next_run_sends_first(
    tmp_path: Path, braze: Braze, runner: Runner
) -> None:
    # Given a Braze that fails every request for the whole of a run
    braze.configure(faults={"status_503": 1.0})
    runner.settings_overrides["retry"] = runner.settings_overrides["retry"].model_copy(
        update={"max_attempts": 2}
    )
    first = runner.run(write_customers_csv(tmp_path / "day1.csv", 150), CUSTOMER_MAPPING_YAML)
    # Then nothing is lost: every object is in a retry file, and no state was committed
    assert first.counters.objects_to_retry_file == 150
    assert first.report is not None and len(first.report["retry_files"]) == 1
    assert braze.user_count() == 0
    # When Braze is back and the next file (another feed entirely) runs
    braze.configure(faults={"status_503": 0.0})
    other = tmp_path / "other.csv"
    other.write_text("id,points,email\nz1,1,z1@example.com\n")
    second = runner.run(other, BAD_ROWS_MAPPING.replace("create_missing: false", "create_missing: true"))
    # Then the retried objects were sent first, and a third run of day 1 finds them all unchanged
    assert second.counters.retry_entries_replayed == 150
    assert braze.user_count() == 151
    assert_profiles_match(braze, list(customer_rows(150)))
    third = runner.run(tmp_path / "day1.csv", CUSTOMER_MAPPING_YAML, run_id="third")
    assert third.counters.attributes_sent == 0
    assert not list((runner.workdir / "reports" / "retry").glob("**/*.jsonl"))
