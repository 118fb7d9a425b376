"""`cdpbridge mapping check` and `cdpbridge mapping schema`."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdpbridge.mapping.schema import render_schema
from cdpbridge_local.cli import main


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_check_accepts_a_valid_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a valid config
    path = write(tmp_path, "ok.yaml", "identifier: {column: id}\nfields: [{column: a}]\n")
    # When it is checked
    code = main(["mapping", "check", str(path)])
    # Then the command succeeds and says so
    assert code == 0
    assert f"{path}: ok (1 fields, identifier external_id)" in capsys.readouterr().out


def test_check_lists_every_problem_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path, "bad.yaml", "identifier: {column: id}\nfields: [{column: a, strategy: sum, type: date}]\n"
    )
    assert main(["mapping", "check", str(path)]) == 1
    assert f"{path}: fields[0].strategy: sum works on integer fields only" in capsys.readouterr().err


def test_check_with_a_header_flags_missing_and_shadowing_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path, "r.yaml", "identifier: {column: id}\nfields: [{column: a}]\nremaining: {prefix: x_}\n"
    )
    assert main(["mapping", "check", str(path), "--columns", "id,birthday"]) == 0
    err = capsys.readouterr().err
    assert "shadowing Braze's standard field 'dob'" in err
    assert "columns the file lacks: a" in err
    assert main(["mapping", "check", str(path), "--columns", "a,b"]) == 1
    assert "identifier.column: the file has no column 'id'" in capsys.readouterr().err


def test_schema_prints_the_committed_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mapping", "schema"]) == 0
    assert capsys.readouterr().out == render_schema()
