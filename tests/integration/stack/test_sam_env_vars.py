"""`cdpbridge local up --sam-env-vars` writes a `sam local invoke --env-vars` file that points functions
at the running stack. Docker is not available here, so the file is fed to `cdpbridge invoke --env-vars`
instead, with host.docker.internal mapped to the loopback: the invoked function (in a stack of its own)
must read its file from, and report into, the stack that wrote the file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from cdpbridge_local.cli import main
from cdpbridge_local.demo_data import CUSTOMER_MAPPING_YAML, write_customers_csv

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
BUCKET = "cdpbridge-drop-example"  # the bucket the events/ samples name
STARTUP_TIMEOUT_S = 120


@pytest.fixture
def env_vars_of_running_stack(tmp_path: Path) -> Iterator[dict[str, dict[str, str]]]:
    """Runs `cdpbridge local up --sam-env-vars` in its own process and yields the file it writes."""
    path = tmp_path / "sam-env.json"
    command = [sys.executable, "-m", "cdpbridge_local.cli", "local", "up", "--no-schedules"]
    command += ["-t", str(ROOT / "template.yaml"), "--sam-env-vars", str(path)]
    command += ["--parameter-overrides", f"DropBucketName={BUCKET}"]
    output = (tmp_path / "local-up.log").open("w")
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not path.exists():
            assert process.poll() is None, (tmp_path / "local-up.log").read_text()
            assert time.monotonic() < deadline, "local up wrote no --sam-env-vars file"
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


def test_the_file_points_every_function_at_the_stack_and_an_invoke_using_it_works_there(
    env_vars_of_running_stack: dict[str, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = env_vars_of_running_stack
    # The endpoints go through the host name a container reaches this machine by
    shared = document["Parameters"]
    assert shared["AWS_ENDPOINT_URL"].startswith("http://host.docker.internal:")
    assert shared["BRAZE_REST_ENDPOINT"].startswith("http://host.docker.internal:")
    assert shared["BRAZE_INSTANCE"] == ""
    # Every function gets the template's variables as the stack resolved them
    assert {"GenericImportFunction", "BlueConicImportFunction", "BlueConicExportFunction"} <= set(document)
    generic = document["GenericImportFunction"]
    assert generic["DROP_BUCKET"] == BUCKET
    assert generic["INTEGRATION"] == "generic"
    assert generic["BRAZE_API_KEY_SECRET"].startswith("arn:aws:secretsmanager:")
    assert "host.docker.internal" in generic["CONTINUATION_QUEUE_URL"]

    # Given the file with the container's host name mapped to the loopback
    loopback = tmp_path / "sam-env-loopback.json"
    loopback.write_text(json.dumps(document).replace("host.docker.internal", "127.0.0.1"))
    moto_url = shared["AWS_ENDPOINT_URL"].replace("host.docker.internal", "127.0.0.1")
    running = boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    # and the sample's file landed in the running stack's bucket only
    running.put_object(Bucket=BUCKET, Key="config/generic.yaml", Body=CUSTOMER_MAPPING_YAML.encode())
    csv_path = write_customers_csv(tmp_path / "customers.csv", 20)
    running.put_object(Bucket=BUCKET, Key="inbound/generic/customers.csv", Body=csv_path.read_bytes())

    # When the sample is invoked with the file (its own stack does not hold the CSV)
    argv = ["invoke", "GenericImportFunction", "-e", str(ROOT / "events" / "generic_import_s3_sqs.json")]
    argv += ["-t", str(ROOT / "template.yaml"), "--env-vars", str(loopback)]
    argv += ["--parameter-overrides", f"DropBucketName={BUCKET}"]
    code = main(argv)

    # Then the function read the file from the running stack and wrote its report there
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    assert json.loads(out) == {"batchItemFailures": []}
    assert '"rows_read":20' in err
    reports = running.list_objects_v2(Bucket=BUCKET, Prefix="reports/generic/").get("Contents", [])
    assert reports, "the run's report is not in the running stack's bucket"
