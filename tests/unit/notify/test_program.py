from datetime import date, time
from pathlib import Path

import pytest
from pydantic import ValidationError

from cdpbridge.integrations.notify.program import ProgramConfig, ProgramConfigError, load_program

PROGRAM = """\
program: winter-sale
campaign_id: 8d7c1f4e-campaign
segment_id: 1a2b3c-segment
send_date: 2026-12-08
window: {start: "08:00", end: "20:30"}
default_time_zone: Europe/Berlin
"""


def base(**changes: object) -> dict[str, object]:
    document: dict[str, object] = {
        "program": "winter-sale",
        "campaign_id": "c",
        "segment_id": "s",
        "send_date": "2026-12-08",
        "window": {"start": "08:00", "end": "20:00"},
        "default_time_zone": "Europe/Berlin",
    }
    document.update(changes)
    return document


def test_loads_program_yaml_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "PROGRAM.yaml"
    path.write_text(PROGRAM)
    program = load_program(path)
    assert program.send_date == date(2026, 12, 8)
    assert program.window.start == time(8) and program.window.end == time(20, 30)
    assert program.slot_minutes == 15
    assert program.grace_minutes == 30
    assert program.model.half_life_days is None


def test_unquoted_time_asks_for_quotes(tmp_path: Path) -> None:
    path = tmp_path / "PROGRAM.yaml"
    path.write_text(PROGRAM.replace('end: "20:30"', "end: 20:30"))
    with pytest.raises(ProgramConfigError, match=r"PROGRAM.yaml: window.end: .*quoted"):
        load_program(path)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"window": {"start": "20:00", "end": "08:00"}}, "must be after start"),
        ({"window": {"start": "8am", "end": "20:00"}}, "HH:MM"),
        ({"slot_minutes": 7}, "must divide 60"),
        ({"default_time_zone": "Europe/Atlantis"}, "unknown time zone"),
        ({"window": {"start": "10:01", "end": "10:14"}}, "holds no 15-minute slot"),
        ({"send_date": "08.12.2026"}, "send_date"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_programs_are_explained(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ProgramConfig.model_validate(base(**changes))


def test_model_settings_refuse_unknown_kinds() -> None:
    with pytest.raises(ValidationError, match="unknown engagement kinds"):
        ProgramConfig.model_validate(base(model={"kind_weights": {"sms_click": 1.0}}))
    program = ProgramConfig.model_validate(
        base(model={"half_life_days": 90, "kind_weights": {"purchase": 2}})
    )
    assert program.model.half_life_days == 90
    assert program.model.kind_weights == {"purchase": 2}


def test_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "PROGRAM.yaml"
    path.write_text("- a list\n")
    with pytest.raises(ProgramConfigError, match="expected a mapping"):
        load_program(path)
