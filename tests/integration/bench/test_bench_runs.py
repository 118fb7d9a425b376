"""The benchmark machinery over real HTTP: the baseline sender, and an engine run in a child process
against the emulator in a process of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from baseline_sender import BaselineSender, attribute_objects
from engine_full_and_delta import measured_run
from harness import API_KEY, UNLIMITED, EmulatorProcess, EngineRun, TrackLimit, changed_values

from cdpbridge_local.demo_data import write_customers_csv
from cdpbridge_local.emulator import EmulatorServer

pytestmark = pytest.mark.integration

ROWS = 400


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(host="127.0.0.1", port=0) as server:
        yield server


def stats(url: str) -> dict[str, object]:
    result: dict[str, object] = requests.get(f"{url}/_emulator/stats", timeout=10).json()
    return result


def test_the_baseline_sends_every_row_and_every_value_in_requests_of_75(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    # Given a demo file of 400 customers
    path = write_customers_csv(tmp_path / "customers.csv", ROWS)
    # When the baseline sends it
    outcome = BaselineSender(emulator.url, API_KEY, threads=4).send_file(path)
    # Then every row became one object, 75 to a request, and every one of 19 values was billed
    seen = stats(emulator.url)
    assert outcome.rows == ROWS
    assert outcome.requests == -(-ROWS // 75)
    assert outcome.failed_rows == 0
    assert seen["users"] == ROWS
    assert seen["data_points"] == ROWS * 19
    assert seen["object_errors"] == {}
    first = next(attribute_objects(path, "customer_id"))
    assert first["external_id"] == "C00000000"
    assert "customer_id" not in first


def test_the_baseline_sends_unchanged_values_again(tmp_path: Path, emulator: EmulatorServer) -> None:
    # Given a file the baseline already sent
    path = write_customers_csv(tmp_path / "customers.csv", ROWS)
    sender = BaselineSender(emulator.url, API_KEY, threads=4)
    sender.send_file(path)
    # When it sends the same file again
    sender.send_file(path)
    # Then every value is billed again although none changed (no dedupe)
    seen = stats(emulator.url)
    assert seen["data_points"] == 2 * ROWS * 19
    assert seen["unchanged_writes"] == ROWS * 19


def test_the_baseline_retries_429s_with_backoff(tmp_path: Path, emulator: EmulatorServer) -> None:
    # Given a Braze that answers 429 to a third of the requests
    requests.put(
        f"{emulator.url}/_emulator/config", json={"seed": 3, "faults": {"status_429": 0.33}}, timeout=10
    ).raise_for_status()
    path = write_customers_csv(tmp_path / "customers.csv", ROWS)
    # When the baseline sends the file with short delays
    sender = BaselineSender(
        emulator.url, API_KEY, threads=2, max_attempts=12, base_delay_s=0.01, max_delay_s=0.05
    )
    outcome = sender.send_file(path)
    # Then the 429s were retried until every row arrived
    assert outcome.retries > 0
    assert outcome.requests == -(-ROWS // 75) + outcome.retries
    assert outcome.failed_rows == 0
    assert stats(emulator.url)["users"] == ROWS


def test_the_baseline_gives_up_on_a_batch_braze_refuses(tmp_path: Path, emulator: EmulatorServer) -> None:
    # Given a key Braze does not know: every request is a 401, which retrying cannot change
    path = write_customers_csv(tmp_path / "customers.csv", 100)
    outcome = BaselineSender(emulator.url, "unknown-key", threads=2, base_delay_s=0.01).send_file(path)
    # Then each batch is tried once and counted as failed
    assert outcome.requests == 2
    assert outcome.retries == 0
    assert outcome.failed_rows == 100


def test_an_engine_run_measures_itself_in_a_child_process(tmp_path: Path) -> None:
    # Given the emulator in its own process, without latency or limits, and two demo files
    day1 = write_customers_csv(tmp_path / "day1.csv", ROWS)
    day2 = write_customers_csv(tmp_path / "day2.csv", ROWS, generation=1, change_share=0.1)
    state = tmp_path / "state.sqlite3"
    with EmulatorProcess(latency_ms=0.0, track_limit=UNLIMITED) as braze:
        # When the engine runs day one, then day two with the state kept
        full = measured_run(
            braze, EngineRun(day1, state, braze.url, in_flight=4, client_track_limit=UNLIMITED)
        )
        delta = measured_run(
            braze, EngineRun(day2, state, braze.url, in_flight=4, client_track_limit=UNLIMITED)
        )
    # Then the child reports its own figures and the emulator's view of each run
    assert full["finished"] and full["rows"] == ROWS
    assert full["requests"] == full["emulator"]["track_requests"] == -(-ROWS // 75)
    assert full["emulator"]["data_points"] == ROWS * 19
    assert full["cpu_s"] > 0 and full["peak_rss_mb"] > 0 and full["rows_per_s"] > 0
    # And the delta wrote exactly the values that changed
    assert delta["emulator"]["data_points"] == changed_values(day1, day2)
    assert delta["emulator"]["unchanged_writes"] == 0


def test_an_engine_run_in_parts_counts_every_part_process(tmp_path: Path) -> None:
    # Given a demo file and the emulator in its own process
    path = write_customers_csv(tmp_path / "customers.csv", 3 * ROWS)
    with EmulatorProcess(latency_ms=0.0, track_limit=UNLIMITED) as braze:
        # When the engine runs it in three parts
        parts = measured_run(
            braze,
            EngineRun(
                path,
                tmp_path / "state.sqlite3",
                braze.url,
                in_flight=4,
                client_track_limit=UNLIMITED,
                workers=3,
            ),
        )
    # Then every row arrived once, and the CPU is that of the part processes
    assert parts["finished"] and parts["rows"] == 3 * ROWS
    assert parts["workers"] == 3
    assert parts["emulator"]["data_points"] == 3 * ROWS * 19
    assert parts["emulator"]["users"] == 3 * ROWS
    assert parts["cpu_parts_s"] > 0
    assert parts["cpu_s"] > parts["cpu_parts_s"]
    assert parts["peak_rss_total_mb"] > parts["peak_rss_mb"] > 0


def test_the_emulator_process_takes_the_braze_like_configuration() -> None:
    with EmulatorProcess(latency_ms=5.0, track_limit=TrackLimit(150, 3.0)) as braze:
        config = braze.admin("GET", "/config")
        assert config["latency_ms"] == 5.0
        assert config["rate_limits"]["users.track"] == {"limit": 150, "window_s": 3.0}
        assert braze.user_count() == 0
    # Stopped on leaving: nothing answers any more
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{braze.url}/_emulator/config", timeout=2)
