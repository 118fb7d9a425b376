"""`cdpbridge invoke` runs the Amperity import sample (events/amperity_import_s3_sqs.json) on the
example results, as `sam local invoke` would, without Docker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cdpbridge.integrations.amperity import EXAMPLE_MAPPING_PATH, EXAMPLE_RESULTS_PATH
from cdpbridge_local.cli import main

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2].parent


def test_the_amperity_import_sample_runs_the_example_results(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["invoke", "AmperityImportFunction", "-e", str(ROOT / "events" / "amperity_import_s3_sqs.json")]
    argv += [
        "-t",
        str(ROOT / "template.yaml"),
        "--parameter-overrides",
        "DropBucketName=cdpbridge-drop-example",
    ]
    argv += ["--put", f"config/amperity.yaml={EXAMPLE_MAPPING_PATH}"]
    argv += ["--put", f"inbound/amperity/braze_customer_attributes.csv={EXAMPLE_RESULTS_PATH}"]

    code = main(argv)

    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    assert json.loads(out) == {"batchItemFailures": []}
    # Braze (the emulator) knows none of the users: none is created, every one is counted as missing.
    assert '"rows_read":5' in err
    assert '"users_missing_in_braze":4' in err
