"""`cdpbridge invoke` runs every sample in events/ as `sam local invoke` would, without Docker.

The samples name the bucket `cdpbridge-drop-example`, so the stack is started with that drop bucket
name and the files a sample's notification points at are put there first (`--put`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cdpbridge.integrations import lytics
from cdpbridge.integrations.blueconic import EXAMPLE_DELTA_PATH, EXAMPLE_MAPPING_PATH
from cdpbridge_local.cli import main
from cdpbridge_local.demo_data import CUSTOMER_MAPPING_YAML, write_customers_csv

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2].parent
EVENTS = ROOT / "events"
SEGMENT_FIXTURES = ROOT / "tests" / "fixtures" / "events"
SEGMENT_MAPPING = SEGMENT_FIXTURES / "segment_mapping.yaml"


def invoke(function: str, sample: str, puts: dict[str, Path]) -> int:
    argv = ["invoke", function, "-e", str(EVENTS / sample), "-t", str(ROOT / "template.yaml")]
    argv += ["--parameter-overrides", "DropBucketName=cdpbridge-drop-example"]
    for key, path in puts.items():
        argv += ["--put", f"{key}={path}"]
    return main(argv)


@pytest.fixture
def customers(tmp_path: Path) -> dict[str, Path]:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(CUSTOMER_MAPPING_YAML)
    return {"config/generic.yaml": mapping, "file": write_customers_csv(tmp_path / "customers.csv", 20)}


@pytest.mark.parametrize(
    ("sample", "key"),
    [
        ("generic_import_s3_sqs.json", "inbound/generic/customers.csv"),
        ("generic_import_s3_sqs_encoded_key.json", "inbound/generic/EU customers (2024-05-06) + VIP.csv"),
    ],
)
def test_generic_import_samples_run_their_file(
    sample: str, key: str, customers: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = invoke(
        "GenericImportFunction",
        sample,
        {"config/generic.yaml": customers["config/generic.yaml"], key: customers["file"]},
    )
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    assert json.loads(out) == {"batchItemFailures": []}
    assert '"rows_read":20' in err  # the run finished and logged its counts


def test_the_blueconic_import_sample_runs_the_example_delta(capsys: pytest.CaptureFixture[str]) -> None:
    key = "inbound/blueconic/braze-connection/profiles_delta_2024-05-06T07:20:00Z.csv"
    code = invoke(
        "BlueConicImportFunction",
        "blueconic_import_s3_sqs.json",
        {"config/blueconic.yaml": EXAMPLE_MAPPING_PATH, key: EXAMPLE_DELTA_PATH},
    )
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    assert json.loads(out) == {"batchItemFailures": []}
    assert '"rows_read":5' in err


def test_the_lytics_import_sample_runs_the_example_snapshot(capsys: pytest.CaptureFixture[str]) -> None:
    key = "inbound/lytics/audience_membership/audience_membership_2026-11-03.csv"
    code = invoke(
        "LyticsImportFunction",
        "lytics_import_s3_sqs.json",
        {"config/lytics.yaml": lytics.EXAMPLE_MAPPING_PATH, key: lytics.EXAMPLE_SNAPSHOT_PATH},
    )
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    assert json.loads(out) == {"batchItemFailures": []}
    assert '"rows_read":5' in err


def test_the_lytics_export_samples_reach_the_export_function(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A continuation of a job this fresh stack never started is stale and dropped
    assert invoke("LyticsExportFunction", "lytics_export_continue_sqs.json", {}) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {"batchItemFailures": []}, err[-2000:]
    # And the schedule's segment does not exist in a fresh emulator: the function fails naming it
    code = invoke(
        "LyticsExportFunction",
        "lytics_export_schedule.json",
        {"config/lytics-export.yaml": lytics.EXAMPLE_EXPORT_CONFIG_PATH},
    )
    out, _err = capsys.readouterr()
    assert code == 1
    assert "Engaged subscribers" in out


def test_the_export_continuation_sample_reaches_the_export_function(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A continuation for a job this fresh stack never started is recognised as stale and dropped.
    code = invoke("BlueConicExportFunction", "blueconic_export_continue_sqs.json", {})
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    assert json.loads(out) == {"batchItemFailures": []}


def test_the_export_schedule_sample_says_which_segment_it_cannot_find(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The sample's segment does not exist in a fresh emulator: the function fails and names it.
    config = tmp_path / "export.json"
    config.write_text(
        json.dumps(
            {
                "segment": {"name": "x"},
                "identifiers": [{"braze": "external_id", "column": "id"}],
                "fields": [],
            }
        )
    )
    code = invoke(
        "BlueConicExportFunction", "blueconic_export_schedule.json", {"config/blueconic-export.yaml": config}
    )
    out, _err = capsys.readouterr()
    assert code == 1
    assert "Newsletter subscribers" in out


def test_the_segment_import_sample_runs_a_segment_log_file(capsys: pytest.CaptureFixture[str]) -> None:
    key = "inbound/segment/segment-logs/src_8xJkD3/1796083200000/1796115900-4f8a2c1e.gz"
    code = invoke(
        "SegmentImportFunction",
        "segment_import_s3_sqs.json",
        {"config/segment.yaml": SEGMENT_MAPPING, key: SEGMENT_FIXTURES / "segment_customers.jsonl.gz"},
    )
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    assert json.loads(out) == {"batchItemFailures": []}
    assert '"rows_read":9' in err  # every call of the example file was read


def test_the_segment_webhook_sample_is_signed_with_the_local_secret_and_queued(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = invoke("SegmentWebhookFunction", "segment_webhook_function_url.json", {})
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    response = json.loads(out)
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"message": "queued", "accepted": 2}


def test_the_segment_relay_sample_sends_its_calls(capsys: pytest.CaptureFixture[str]) -> None:
    code = invoke("SegmentRelayFunction", "segment_relay_sqs.json", {})
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    assert json.loads(out) == {"batchItemFailures": []}
    assert '"events_sent":1' in err
