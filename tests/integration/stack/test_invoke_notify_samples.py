"""`cdpbridge invoke` runs Notify's samples in events/: the opt-in notification, the pixel's Function
URL request (payload 2.0, its token signed with the local stack's pixel key), and the schedules of the
planner and the dispatcher. Function URLs are invoked with their event, as Lambda would deliver it."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from cdpbridge.integrations.notify.pixel import PIXEL_GIF
from cdpbridge_local.cli import main

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2].parent
EVENTS = ROOT / "events"


def invoke(function: str, event: Path, puts: dict[str, Path]) -> int:
    argv = ["invoke", function, "-e", str(event), "-t", str(ROOT / "template.yaml")]
    argv += ["--parameter-overrides", "DropBucketName=cdpbridge-drop-example"]
    for key, path in puts.items():
        argv += ["--put", f"{key}={path}"]
    return main(argv)


def program_file(tmp_path: Path) -> Path:
    path = tmp_path / "morning.yaml"
    program = {
        "program": "morning",
        "campaign_id": "campaign-1",
        "segment_id": "no-such-segment",
        "window": {"start": "09:00", "end": "12:00"},
        "default_time_zone": "Europe/Paris",
    }
    path.write_text(yaml.safe_dump(program), encoding="utf-8")
    return path


def test_the_optin_sample_merges_its_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "optin.csv"
    export.write_text(
        "email_sha256,segment,sub_segment,event_type,occurred_at,campaign_id\n"
        f"{'ab' * 32},active,gold,open,2026-11-02T10:20:00+01:00,c1\n"
        f"{'cd' * 32},inactive,,send,2026-11-02T10:00:00Z,c1\n"
        "not-a-hash,active,gold,open,2026-11-02T10:20:00+01:00,c1\n",
        encoding="utf-8",
    )
    code = invoke(
        "NotifyOptinFunction",
        EVENTS / "notify_optin_s3_sqs.json",
        {"inbound/notify/optin/optin-export-2026-12-01.csv": export},
    )
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    assert json.loads(out) == {"batchItemFailures": []}
    assert '"rows":2' in err and '"issues":1' in err


def test_the_pixel_sample_answers_the_gif_and_records_the_open(capsys: pytest.CaptureFixture[str]) -> None:
    code = invoke("NotifyPixelFunction", EVENTS / "notify_pixel_function_url.json", {})
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    response = json.loads(out)
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "image/gif"
    assert base64.b64decode(response["body"]) == PIXEL_GIF
    assert '"PixelOpens"' in err


def test_a_tampered_pixel_token_gets_the_same_gif_and_records_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = json.loads((EVENTS / "notify_pixel_function_url.json").read_text(encoding="utf-8"))
    payload, signature = event["queryStringParameters"]["t"].split(".")
    event["queryStringParameters"]["t"] = f"{payload}.{signature[::-1]}"
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(event), encoding="utf-8")
    code = invoke("NotifyPixelFunction", tampered, {})
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    assert base64.b64decode(json.loads(out)["body"]) == PIXEL_GIF
    assert '"PixelIgnored"' in err and '"PixelOpens"' not in err


def test_the_planner_schedule_names_the_segment_it_cannot_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = invoke(
        "NotifyPlannerFunction",
        EVENTS / "notify_planner_schedule.json",
        {"config/notify/morning.yaml": program_file(tmp_path)},
    )
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    result = json.loads(out)
    assert result["send_date"] == "2026-12-08"  # the day after the schedule fired
    assert result["programs"]["morning"]["status"] == "failed"
    assert "no-such-segment" in result["programs"]["morning"]["reason"]


def test_the_dispatch_schedule_finds_nothing_due(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = invoke(
        "NotifyDispatchFunction",
        EVENTS / "notify_dispatch_schedule.json",
        {"config/notify/morning.yaml": program_file(tmp_path)},
    )
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    result = json.loads(out)
    assert result["now"] == "2026-12-08T09:15:00Z"
    assert (result["programs"]["morning"]["due"], result["programs"]["morning"]["sent"]) == (0, 0)
