"""`cdpbridge local up` with Currents on starts a Lytics sink in place of Lytics: the Currents function's
LYTICS_URL points at it and the token secret the stack created holds the token it accepts."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
STARTUP_TIMEOUT_S = 120
SINK_LINE = re.compile(r"^  Lytics sink: +(http://\S+) ", re.MULTILINE)


@pytest.fixture
def running_up(tmp_path: Path) -> Iterator[tuple[str, dict[str, dict[str, str]]]]:
    """`local up` with EnableCurrents=true in its own process: what it printed, and its env-vars file."""
    path = tmp_path / "sam-env.json"
    log = tmp_path / "local-up.log"
    command = [sys.executable, "-m", "cdpbridge_local.cli", "local", "up", "--no-schedules"]
    command += ["-t", str(ROOT / "template.yaml"), "--sam-env-vars", str(path)]
    command += ["--parameter-overrides", "EnableCurrents=true"]
    output = log.open("w")
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not (path.exists() and "Press Ctrl-C" in log.read_text()):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "local up did not come up"
            time.sleep(0.2)
        yield log.read_text(), json.loads(path.read_text(encoding="utf-8"))
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            # A stop slowed by a loaded machine: its whole group (workers, emulator, moto) goes.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        output.close()


def test_the_currents_function_posts_to_the_printed_sink_with_the_stacks_token(running_up) -> None:
    printed, document = running_up
    # The sink's URL is printed with the endpoints, and is the Currents function's LYTICS_URL
    found = SINK_LINE.search(printed)
    assert found, printed
    sink_url = found.group(1)
    currents = document["CurrentsFunction"]
    assert currents["LYTICS_URL"] == sink_url.replace("127.0.0.1", "host.docker.internal")

    # Given the token from the secret the stack created, read as the function reads it
    moto_url = document["Parameters"]["AWS_ENDPOINT_URL"].replace("host.docker.internal", "127.0.0.1")
    secrets = boto3.client(
        "secretsmanager",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    token = secrets.get_secret_value(SecretId=currents["LYTICS_TOKEN_SECRET"])["SecretString"]

    # When a collect request comes with a wrong token, then with the stack's
    wrong = requests.post(f"{sink_url}/collect/json/braze_engagement", json=[{"id": "1"}], timeout=10)
    right = requests.post(
        f"{sink_url}/collect/json/braze_engagement",
        json=[{"id": "2"}],
        headers={"Authorization": token},
        timeout=10,
    )

    # Then the sink refuses the first and records the second
    assert wrong.status_code == 401
    assert right.status_code == 200
    received = requests.get(f"{sink_url}/_sink/received", timeout=10).json()
    assert [batch["events"] for batch in received] == [[{"id": "2"}]]
