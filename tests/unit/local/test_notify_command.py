"""`cdpbridge notify`: the plan reader's rejects and pixel-url's output."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from cdpbridge.integrations.notify.pixel import verify_token
from cdpbridge.integrations.notify.program import load_program
from cdpbridge_local.cli import main
from cdpbridge_local.commands.notify import PlanFileError, read_plan_csv


@pytest.fixture
def program_path(tmp_path: Path) -> Path:
    path = tmp_path / "PROGRAM.yaml"
    document = {
        "program": "morning",
        "campaign_id": "c-1",
        "segment_id": "s-1",
        "send_date": "2026-12-08",
        "window": {"start": "09:00", "end": "12:00"},
        "default_time_zone": "Europe/Paris",
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_bad_plan_rows_are_named_and_good_rows_kept(tmp_path: Path, program_path: Path) -> None:
    plan = tmp_path / "PLAN.csv"
    plan.write_text(
        "external_id,send_at,local_time,basis\n"
        "a,2026-12-08T09:00:00Z,2026-12-08T10:00:00+01:00,user\n"
        "b,yesterday,2026-12-08T10:00:00+01:00,user\n"
        ",2026-12-08T09:00:00Z,2026-12-08T10:00:00+01:00,user\n",
        encoding="utf-8",
    )
    rows, problems = read_plan_csv(plan, load_program(program_path))
    assert [row.external_id for row in rows] == ["a"]
    assert problems[0].startswith(f"{plan}: row 3: send_at/local_time:")
    assert problems[1] == f"{plan}: row 4: external_id: empty"


def test_a_plan_without_its_columns_is_refused(tmp_path: Path, program_path: Path) -> None:
    plan = tmp_path / "PLAN.csv"
    plan.write_text("external_id,send_at\na,2026-12-08T09:00:00Z\n", encoding="utf-8")
    with pytest.raises(PlanFileError, match="missing columns local_time, basis"):
        read_plan_csv(plan, load_program(program_path))


def test_pixel_url_mints_a_verifiable_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "pixel.key"
    key.write_bytes(b"a-pixel-key\n")
    code = main(
        [
            "notify", "pixel-url", "--base-url", "https://px.example/", "--key-file", str(key),
            "--program", "morning", "--external-id", "user-1", "--local-time", "2026-12-08T10:00:00+01:00",
        ]
    )  # fmt: skip
    assert code == 0
    url = capsys.readouterr().out.strip()
    token = parse_qs(urlsplit(url).query)["t"][0]
    claim = verify_token(b"a-pixel-key", token, 1_796_000_000)
    assert claim is not None
    assert (claim.external_id, claim.send_id) == ("user-1", "notify-morning-20261208T090000Z")


def test_pixel_url_liquid_prints_the_campaign_tag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["notify", "pixel-url", "--base-url", "https://px.example/", "--liquid"]) == 0
    assert capsys.readouterr().out.strip() == (
        '<img src="{{api_trigger_properties.${notify_pixel_url}}}" width="1" height="1" alt="" />'
    )


def test_pixel_url_names_what_it_lacks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["notify", "pixel-url", "--base-url", "https://px.example/"]) == 2
    assert "--key-file, --program, --external-id, --local-time" in capsys.readouterr().err
