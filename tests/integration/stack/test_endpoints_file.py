"""`cdpbridge local up --endpoints-file` tells a script where the stack is, and the webhook secret is
the one SEGMENT_WEBHOOK_SECRET gave it: a request signed with it is queued, any other refused."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
STARTUP_TIMEOUT_S = 120
SECRET = "secret-from-the-environment"


@pytest.fixture
def endpoints(tmp_path: Path) -> Iterator[dict[str, Any]]:
    path = tmp_path / "endpoints.json"
    command = [sys.executable, "-m", "cdpbridge_local.cli", "local", "up", "--no-schedules"]
    command += ["-t", str(ROOT / "template.yaml"), "--endpoints-file", str(path)]
    log = tmp_path / "local-up.log"
    output = log.open("w")
    environment = {**os.environ, "SEGMENT_WEBHOOK_SECRET": SECRET}
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, env=environment, start_new_session=True
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not path.exists():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "local up wrote no --endpoints-file"
            time.sleep(0.2)
        yield json.loads(path.read_text(encoding="utf-8"))
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            # A stop slowed by a loaded machine: its whole group (workers, emulator, moto) goes.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        output.close()


def test_the_file_names_the_endpoints_and_the_webhook_checks_the_environments_secret(
    endpoints: dict[str, Any],
) -> None:
    # The file holds exactly what a script needs
    assert set(endpoints) == {"braze_url", "s3_endpoint", "bucket", "function_urls"}
    assert endpoints["braze_url"].startswith("http://127.0.0.1:")
    assert endpoints["s3_endpoint"].startswith("http://127.0.0.1:")
    assert endpoints["bucket"]
    url = endpoints["function_urls"]["SegmentWebhookFunction"]
    assert url.startswith("http://127.0.0.1:")

    # A call signed with SEGMENT_WEBHOOK_SECRET is queued; one signed with the default key is not
    body = json.dumps({"type": "track", "userId": "u1", "event": "E", "timestamp": "2026-12-01T09:00:00Z"})
    good = hmac.new(SECRET.encode(), body.encode(), hashlib.sha1).hexdigest()
    other = hmac.new(b"local-dev-key", body.encode(), hashlib.sha1).hexdigest()
    accepted = requests.post(url, data=body, headers={"x-signature": good}, timeout=30)
    refused = requests.post(url, data=body, headers={"x-signature": other}, timeout=30)
    assert (accepted.status_code, accepted.json()) == (200, {"message": "queued", "accepted": 1})
    assert refused.status_code == 401
