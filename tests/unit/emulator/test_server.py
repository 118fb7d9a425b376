"""Starting and stopping the emulator: in a thread, and as the `cdpbridge emulator` command."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import requests

from cdpbridge_local.cli import build_parser
from cdpbridge_local.emulator import EmulatorConfig, EmulatorServer


def test_server_picks_a_free_port_and_stops_cleanly() -> None:
    server = EmulatorServer(host="127.0.0.1", port=0, config=EmulatorConfig(latency_ms=0, seed=3))
    server.start()
    try:
        assert server.url.startswith("http://127.0.0.1:") and server.port > 0
        assert requests.get(f"{server.url}/_emulator/config", timeout=10).json()["seed"] == 3
    finally:
        server.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{server.port}/_emulator/config", timeout=10)


def test_two_servers_run_side_by_side_with_separate_state() -> None:
    with EmulatorServer() as first, EmulatorServer() as second:
        headers = {"Authorization": "Bearer local-dev-key"}
        requests.post(
            f"{first.url}/users/track",
            json={"attributes": [{"external_id": "u1"}]},
            headers=headers,
            timeout=10,
        )
        assert requests.get(f"{first.url}/_emulator/users?count=1", timeout=10).json() == {"count": 1}
        assert requests.get(f"{second.url}/_emulator/users?count=1", timeout=10).json() == {"count": 0}


def test_url_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="start"):
        _ = EmulatorServer().url


def test_port_in_use_is_reported_by_start() -> None:
    with EmulatorServer() as running:
        clash = EmulatorServer(port=running.port)
        with pytest.raises(OSError):
            clash.start()


def test_cli_parses_the_emulator_command() -> None:
    args = build_parser().parse_args(["emulator", "--port", "0", "--latency-ms", "5", "--seed", "9"])
    assert (args.host, args.port, args.latency_ms, args.seed) == ("127.0.0.1", 0, 5.0, 9)


def test_cli_serves_in_the_foreground_and_stops_on_ctrl_c() -> None:
    # Given `cdpbridge emulator` started with a seed and no rate limits
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cdpbridge_local.cli",
            "emulator",
            "--port",
            "0",
            "--seed",
            "11",
            "--no-rate-limits",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        # Then it prints its URL and serves with the given settings
        assert url.startswith("http://127.0.0.1:")
        config = requests.get(f"{url}/_emulator/config", timeout=10).json()
        assert config["seed"] == 11 and config["rate_limits"]["users.track"]["limit"] == 1_000_000_000
    finally:
        # When interrupted it exits cleanly
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
