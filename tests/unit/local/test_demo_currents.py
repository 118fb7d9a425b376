"""The demo's Currents step: where it finds Braze's sample files, and what it says without them."""

from pathlib import Path

import pytest

from cdpbridge_local.commands import demo

ROOT = Path(__file__).resolve().parents[3]


def test_the_fixtures_default_to_shared_beside_the_repository():
    expected = ROOT.parent / "shared" / "fixtures" / "currents"
    assert demo.default_currents_fixtures(ROOT / "template.yaml") == expected


def test_without_the_sample_files_the_step_is_skipped_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    # Given a fixtures folder with only one of the files the step needs
    (tmp_path / "users.messages.email.Open.avro").write_bytes(b"")
    # When the step runs (it must not touch the stack or the sink before it knows it can run)
    demo.currents_step(stack=None, lytics=None, fixtures=tmp_path)  # type: ignore[arg-type]
    # Then it says it skipped, where it looked and what was missing
    printed = capsys.readouterr().out
    assert "Braze Currents: skipped" in printed
    assert str(tmp_path) in printed
    assert "users.messages.email.Click, users.behaviors.Purchase" in printed
    assert "users.messages.email.Open," not in printed
