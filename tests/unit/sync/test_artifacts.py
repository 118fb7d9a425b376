"""Artifacts: local store, rejects segments merged into one CSV with a header."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdpbridge.mapping.pii import EMAIL_WITHHELD
from cdpbridge.records import RowIssue, RowPosition
from cdpbridge.sync.artifacts import LocalArtifactStore, RejectsWriter, iter_rejects, merge_rejects


def test_rejects_are_written_in_segments_and_merged(tmp_path: Path) -> None:
    # Given a writer whose buffer flushes after every couple of rows
    store = LocalArtifactStore(tmp_path)
    writer = RejectsWriter(store, "integration/2026-11-23/run1.p0.i1", max_buffer_bytes=40)
    for row in range(1, 6):
        writer.add(
            RowIssue(RowPosition("customers.csv", row, row * 100), "email", "invalid email", "redacted")
        )
    writer.flush()
    assert len(writer.segment_keys) > 1
    # When the segments are merged
    location = merge_rejects(store, writer.segment_keys, "integration/2026-11-23/run1.rejects.csv")
    # Then one CSV holds every reject in order and the segments are gone
    assert location is not None
    rows = list(iter_rejects(Path(location).read_bytes()))
    assert [r["row"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert rows[0] == {
        "source": "customers.csv",
        "row": "1",
        "byte_offset": "100",
        "column": "email",
        "reason": "invalid email",
        "detail": "redacted",
    }
    assert store.list("integration/") == ["integration/2026-11-23/run1.rejects.csv"]


def test_no_rejects_means_no_file(tmp_path: Path) -> None:
    assert merge_rejects(LocalArtifactStore(tmp_path), [], "x.csv") is None


def test_keys_cannot_escape_the_store(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="escapes"):
        LocalArtifactStore(tmp_path / "reports").put("../outside.txt", b"x", "text/plain")


def test_merging_again_after_the_segments_are_gone_keeps_the_merged_file(tmp_path: Path) -> None:
    # Given rejects merged once (their segments deleted), as by a run whose completion is repeated
    store = LocalArtifactStore(tmp_path)
    writer = RejectsWriter(store, "run1.p0.i1")
    writer.add(RowIssue(RowPosition("customers.csv", 7, 700), "email", "invalid email", "redacted"))
    writer.flush()
    first = merge_rejects(store, writer.segment_keys, "run1.rejects.csv")
    # When the same segments are merged again
    again = merge_rejects(store, writer.segment_keys, "run1.rejects.csv")
    # Then the merged file still holds every reject
    assert again == first and again is not None
    assert [r["row"] for r in iter_rejects(Path(again).read_bytes())] == ["7"]


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_rejects_cells_a_spreadsheet_would_run_as_formulas_are_written_as_text(
    tmp_path: Path, start: str
) -> None:
    # Given rejects whose file name, column, reason and detail come from a hostile file and
    # start like a formula (e.g. a header cell "=cmd|' /C calc'!A0")
    store = LocalArtifactStore(tmp_path)
    writer = RejectsWriter(store, "run1.p0.i1")
    payload = f"{start}cmd|' /C calc'!A0"
    writer.add(RowIssue(RowPosition(f"{start}users.csv", 3, 40), payload, f"{start}reason", payload))
    writer.add(RowIssue(RowPosition("users.csv", 4, 50), "plain", "invalid email", "a - b = c"))
    writer.flush()

    # When the rejects file is written and read back as a spreadsheet would read its cells
    location = merge_rejects(store, writer.segment_keys, "run1.rejects.csv")
    assert location is not None
    hostile, plain = list(iter_rejects(Path(location).read_bytes()))

    # Then every text cell that started like a formula starts with an apostrophe (shown as text,
    # never evaluated), the rest of its text kept; other cells are untouched. Reasons and details are
    # scrubbed of personal data first: "@word" may be the end of an e-mail address, so it is withheld,
    # and the placeholder cannot run as a formula either.
    if start == "@":
        reason, detail = EMAIL_WITHHELD, f"{EMAIL_WITHHELD}' /C calc'!A0"
    else:
        reason, detail = f"'{start}reason", f"'{payload}"
    assert hostile == {
        "source": f"'{start}users.csv",
        "row": "3",
        "byte_offset": "40",
        "column": f"'{payload}",
        "reason": reason,
        "detail": detail,
    }
    assert (plain["column"], plain["reason"], plain["detail"]) == ("plain", "invalid email", "a - b = c")
