"""The Lytics route end to end over real HTTP: client, sink, and `cdpbridge currents route`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from cdpbridge.braze.settings import RetryPolicy
from cdpbridge.currents import LyticsClient, LyticsError
from cdpbridge_local.cli import main
from cdpbridge_local.currents_data import avro_bytes, land, synthetic_events

from .conftest import CURRENTS_FIXTURES, LYTICS_TOKEN

pytestmark = pytest.mark.integration

FAST = RetryPolicy(max_attempts=4, base_delay_s=0.01, max_delay_s=0.05)

LYTICS_ON = """
version: 1
routes:
  files:      {enabled: true, event_types: ["*"], destinations: [amperity]}
  lytics:
    enabled: true
    event_types: ["users.messages.*"]
    stream: braze_engagement
    batch_size: 50
    max_attempts: 2
  engagement: {enabled: true}
"""


def test_the_client_posts_a_batch_the_sink_records_with_its_stream_and_query(lytics):
    client = LyticsClient(LYTICS_TOKEN, lytics.url, retry=FAST)
    client.collect("braze_engagement", [{"id": "1", "time": 5}, {"id": "2", "time": 6}])
    (batch,) = lytics.sink.batches
    assert batch.stream == "braze_engagement"
    assert batch.query == {"timestamp_field": "time"}
    assert [event["id"] for event in batch.events] == ["1", "2"]
    assert client.stats.requests == 1 and client.stats.events == 2


def test_a_wrong_token_is_refused_with_401_and_not_retried(lytics):
    client = LyticsClient("not-the-token", lytics.url, retry=FAST)
    with pytest.raises(LyticsError, match="HTTP 401") as refused:
        client.collect("braze_engagement", [{"id": "1"}])
    assert refused.value.permanent and refused.value.status == 401
    assert client.stats.requests == 1
    assert lytics.sink.batches == [] and lytics.sink.refused == 1
    raw = requests.post(f"{lytics.url}/collect/json/s", json=[{"id": "1"}], timeout=5)
    assert raw.status_code == 401


def test_server_errors_are_retried_with_backoff_until_accepted(lytics):
    lytics.sink.fail_next(2, status=503)
    client = LyticsClient(LYTICS_TOKEN, lytics.url, retry=FAST)
    client.collect("s", [{"id": "1"}])
    assert client.stats.retries == 2 and client.stats.requests == 3
    assert len(lytics.sink.events("s")) == 1


def route(tmp_path: Path, url: str, token: str, *paths: Path) -> tuple[int, dict]:
    config = tmp_path / "currents.yaml"
    config.write_text(LYTICS_ON)
    reports = tmp_path / "reports"
    for old in reports.glob("*.json") if reports.exists() else []:
        old.unlink()
    argv = [
        "currents",
        "route",
        *map(str, paths),
        "--config",
        str(config),
        "--state",
        str(tmp_path / "state.db"),
    ]
    argv += ["--out", str(tmp_path / "outbound"), "--report-dir", str(reports)]
    argv += ["--lytics-url", url, "--lytics-token", token]
    code = main(argv)
    (report,) = reports.glob("*.json")
    return code, json.loads(report.read_text())


def test_the_cli_sends_the_engagement_events_of_every_sample_to_the_sink(tmp_path, lytics, capsys):
    # Given every sample landed in Braze's layout
    for sample in sorted(CURRENTS_FIXTURES.glob("*.avro")):
        land(tmp_path / "inbound", sample.stem, sample.read_bytes())
    messages = sorted(p.stem for p in CURRENTS_FIXTURES.glob("users.messages.*.avro"))
    # When they are routed with the lytics route on for users.messages.*
    code, report = route(tmp_path, lytics.url, LYTICS_TOKEN, tmp_path / "inbound")
    # Then each message event reached the sink once, as the Avro record plus its event type
    assert code == 0, capsys.readouterr()
    received = lytics.sink.events("braze_engagement")
    assert sorted(event["event_type"] for event in received) == messages
    assert report["routed"]["lytics"] == len(messages)
    assert report["routed"]["files"] == 94
    assert all("id" in event and "time" in event for event in received)
    # And routing again sends nothing
    code, again = route(tmp_path, lytics.url, LYTICS_TOKEN, tmp_path / "inbound")
    assert code == 0 and again["files_already_routed"] == 94
    assert len(lytics.sink.events()) == len(messages)


def test_a_wrong_token_fails_the_files_and_the_report_says_so(tmp_path, lytics):
    land(
        tmp_path / "inbound",
        "users.messages.email.Click",
        (CURRENTS_FIXTURES / "users.messages.email.Click.avro").read_bytes(),
    )
    code, report = route(tmp_path, lytics.url, "wrong-token", tmp_path / "inbound")
    assert code == 1
    (failed,) = report["failed_files"]
    assert "HTTP 401" in failed["reason"]
    assert lytics.sink.events() == [] and lytics.sink.refused == 1


def test_after_lytics_refuses_half_way_the_next_run_resumes_without_resending(tmp_path, lytics, samples):
    # Given a file of 500 e-mail clicks: ten Lytics batches of 50
    click = next(sample for sample in samples if sample.event_type == "users.messages.email.Click")
    events = list(synthetic_events(click.record, 500))
    land(tmp_path / "inbound", click.event_type, avro_bytes(click.schema, events), name="clicks.avro")
    # When Lytics accepts four batches and then fails for longer than the retries last
    lytics.sink.fail_after(4, status=503)
    code, first = route(tmp_path, lytics.url, LYTICS_TOKEN, tmp_path / "inbound")
    assert lytics.sink.requests == 4 + 2  # the failing batch tried max_attempts times
    lytics.sink.reset()
    # Then the first run routed the four accepted batches and reports the file failed
    assert code == 1 and "HTTP 503" in first["failed_files"][0]["reason"]
    assert first["routed"] == {"files": 200, "lytics": 200, "engagement": 200}
    # When it runs again, Lytics healthy
    code, second = route(tmp_path, lytics.url, LYTICS_TOKEN, tmp_path / "inbound")
    # Then only the other 300 events were posted and written
    assert code == 0 and second["files_resumed"] == 1
    assert second["routed"] == {"files": 300, "lytics": 300, "engagement": 300}
    assert sorted(e["id"] for e in lytics.sink.events()) == sorted(e["id"] for e in events[200:])


def test_the_sink_command_serves_until_interrupted():
    process = subprocess.Popen(
        [sys.executable, "-m", "cdpbridge_local.cli", "currents", "lytics-sink", "--token", "t0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert requests.post(
            f"{url}/collect/json/s", json=[{"id": "1"}], headers={"Authorization": "t0"}, timeout=5
        ).ok
        assert requests.get(f"{url}/_sink/received", timeout=5).json()[0]["events"] == [{"id": "1"}]
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
