"""`cdpbridge run --workers N`: a file split into byte ranges run by parallel processes ends as the
same run as one process makes of it: the same users in Braze, counters, rejects and one report."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from cdpbridge.sync.artifacts import iter_rejects
from cdpbridge_local.cli import main
from cdpbridge_local.demo_data import CUSTOMER_COLUMNS, CUSTOMER_MAPPING_YAML, customer_rows

from .conftest import Braze

pytestmark = pytest.mark.integration

ROWS = 1_200
# Rows (1-based, after the header) whose loyalty_points is not an integer.
BAD_ROWS = (5, 640, 1_199)
COUNTED = ("rows_read", "rows_rejected", "users", "users_written", "attributes_sent", "data_points_sent")


def write_file(path: Path) -> Path:
    points = CUSTOMER_COLUMNS.index("loyalty_points")
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CUSTOMER_COLUMNS)
        for number, row in enumerate(customer_rows(ROWS), start=1):
            if number in BAD_ROWS:
                row[points] = "lots"
            writer.writerow(row)
    return path


def run(data: Path, root: Path, braze: Braze, *extra: str) -> int:
    root.mkdir(parents=True, exist_ok=True)
    config = root / "mapping.yaml"
    config.write_text(CUSTOMER_MAPPING_YAML)
    return main(
        [
            "run",
            str(data),
            "--config",
            str(config),
            "--state",
            str(root / "state.sqlite3"),
            "--report-dir",
            str(root / "reports"),
            "--braze-url",
            braze.url,
            "--api-key",
            "local-dev-key",
            "--quiet",
            *extra,
        ]
    )


def reports(root: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted((root / "reports").rglob("*.json"))]


def rejected(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = iter_rejects(Path(report["rejects_file"]).read_bytes())
    return sorted((row["row"], row["column"], row["reason"]) for row in rows)


def test_parallel_parts_make_the_same_run_as_one_process(tmp_path: Path, braze: Braze) -> None:
    data = write_file(tmp_path / "customers.csv")

    # Given the file run by one process into a fresh emulator
    assert run(data, tmp_path / "one", braze) == 0
    (single,) = reports(tmp_path / "one")
    users_one = braze.user_count()
    braze.reset()

    # When the same file runs as three parts against an emptied emulator and a fresh state
    assert run(data, tmp_path / "three", braze, "--workers", "3") == 0

    # Then one report covers the three parts, with the counters and rejects of the single run
    (parallel,) = reports(tmp_path / "three")
    assert parallel["parts"] == 3
    assert parallel["status"] == "completed"
    assert {name: parallel[name] for name in COUNTED} == {name: single[name] for name in COUNTED}
    assert parallel["rows_read"] == ROWS
    assert rejected(parallel) == rejected(single)
    assert [row for row, _, _ in rejected(parallel)] == sorted(str(number) for number in BAD_ROWS)
    # And Braze holds the same users
    assert braze.user_count() == users_one == ROWS - len(BAD_ROWS)
    # And no part's reject segment is left behind
    assert not [path for path in (tmp_path / "three" / "reports").rglob("*") if ".p" in path.name]


def test_parts_share_the_dedupe_state_of_earlier_runs(tmp_path: Path, braze: Braze) -> None:
    data = write_file(tmp_path / "customers.csv")
    assert run(data, tmp_path, braze, "--workers", "2") == 0
    requests_before = braze.stats()["requests"]

    # When the file runs again in parts
    assert run(data, tmp_path, braze, "--workers", "4") == 0

    # Then every value is known and nothing is sent
    second = max(reports(tmp_path), key=lambda report: report["started_at"])
    assert second["parts"] == 4
    assert second["attributes_sent"] == 0
    assert second["attributes_unchanged"] == (ROWS - len(BAD_ROWS)) * 19
    assert braze.stats()["requests"] == requests_before


def test_a_compressed_file_cannot_be_split_and_runs_as_one_part(tmp_path: Path, braze: Braze) -> None:
    plain = write_file(tmp_path / "customers.csv")
    data = tmp_path / "customers.csv.gz"
    data.write_bytes(gzip.compress(plain.read_bytes()))

    assert run(data, tmp_path, braze, "--workers", "3") == 0

    (report,) = reports(tmp_path)
    assert report["parts"] == 1
    assert report["rows_read"] == ROWS
    assert braze.user_count() == ROWS - len(BAD_ROWS)


def test_workers_must_be_a_positive_count(
    tmp_path: Path, braze: Braze, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        run(write_file(tmp_path / "c.csv"), tmp_path, braze, "--workers", "0")
    assert "--workers: must be at least 1, got 0" in capsys.readouterr().err


def test_a_pending_retry_file_is_replayed_before_a_later_part_sends_a_newer_row(
    tmp_path: Path, braze: Braze
) -> None:
    from cdpbridge.records import RowPosition  # noqa: PLC0415 - this test alone builds retry entries
    from cdpbridge.state import value_digest  # noqa: PLC0415
    from cdpbridge.sync.objects import ObjectRef  # noqa: PLC0415
    from cdpbridge.sync.retry import RetryEntry, encode_retry_file  # noqa: PLC0415

    data = write_file(tmp_path / "customers.csv")
    # Given a customer whose row is in the last of three parts
    row = list(customer_rows(ROWS))[999]
    customer, tier = row[0], row[CUSTOMER_COLUMNS.index("loyalty_tier")]
    # And an earlier run that left that customer's move to an old tier in a retry file, behind a
    # long queue of one other user's objects (their requests go one after the other, so the replay
    # takes a while: a part that did not wait for it would send the newer row first)
    earlier = "old.csv@v0"

    def entry(number: int, user: str, attributes: dict[str, Any]) -> RetryEntry:
        digests: dict[str, bytes | None] = {name: value_digest(value) for name, value in attributes.items()}
        ref = ObjectRef(
            RowPosition("old.csv", number),
            f"external_id:{user}",
            "attributes",
            {"external_id": user, **attributes},
            digests,
            None,
            len(attributes),
        )
        return RetryEntry(earlier, ref, "unavailable")

    queue = [entry(number, "queued-user", {"queue_position": number}) for number in range(1, 1501)]
    old = entry(1501, customer, {"loyalty_tier": "old-tier"})
    retry_file = tmp_path / "reports" / "retry" / "generic" / "20200101T000000Z-000000000000.p0.i1.000.jsonl"
    retry_file.parent.mkdir(parents=True)
    retry_file.write_bytes(encode_retry_file([*queue, old]))
    braze.configure(latency_ms=100)

    # When the file runs as three parts, Braze up
    assert run(data, tmp_path, braze, "--workers", "3") == 0

    # Then the retry file was replayed, and the customer ends on the file's value, not the old one
    (report,) = reports(tmp_path)
    assert report["parts"] == 3
    assert report["retry_entries_replayed"] == len(queue) + 1
    assert report["retry_files"] == []
    assert not retry_file.exists()
    assert braze.attributes("queued-user")["queue_position"] == 1500
    assert braze.attributes(customer)["loyalty_tier"] == tier != "old-tier"
