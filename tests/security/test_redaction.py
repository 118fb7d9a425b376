"""Free text on its way into a rejects file loses every e-mail address and phone number in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdpbridge.mapping.pii import EMAIL_WITHHELD, PHONE_WITHHELD, plain_detail, scrub_personal_data
from cdpbridge.records import RowIssue, RowPosition
from cdpbridge.sync.artifacts import LocalArtifactStore, RejectsWriter, iter_rejects


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("write to anna.becker@example.com today", f"write to {EMAIL_WITHHELD} today"),
        ("invalid email 'bob@@example.org'", f"invalid email '{EMAIL_WITHHELD}'"),
        ("<x@y.de>, z@w.io", f"<{EMAIL_WITHHELD}>, {EMAIL_WITHHELD}"),
        ("call +49 30 1234567", f"call {PHONE_WITHHELD}"),
        ("call 0049-30-1234567.", f"call {PHONE_WITHHELD}."),
        ("(555) 123-4567 or 555.123.4567", f"{PHONE_WITHHELD} or {PHONE_WITHHELD}"),
        ("+4915112345678", PHONE_WITHHELD),
    ],
)
def test_addresses_and_numbers_are_withheld(text: str, scrubbed: str) -> None:
    assert scrub_personal_data(text) == scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not an integer",
        "row has 4 fields but the header has 6",
        "the rejected record runs from byte offset 55 to 1234",
        "2024-05-06",
        "06.05.2024 and 2023-04-12T08:31:05Z",
        "version 3.10.12",
        "a @ b",
        "expected at most 255 characters, got 123456",
    ],
)
def test_text_without_personal_data_is_kept(text: str) -> None:
    assert scrub_personal_data(text) == text


def test_a_plain_detail_of_a_free_text_column_is_scrubbed() -> None:
    assert plain_detail("mail me: ann@example.com") == f"'mail me: {EMAIL_WITHHELD}'"


def test_the_rejects_file_scrubs_reasons_and_details_from_readers_and_braze(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    writer = RejectsWriter(store, "reports/run")
    position = RowPosition("s3://drop/inbound/generic/x.csv", 3, 120)
    writer.add(RowIssue(position, None, "braze: 'ann@example.com' is not a valid email", "attributes object"))
    writer.add(RowIssue(position, "note", "not an integer", "'call +44 7700 900123'"))
    writer.flush()
    (segment,) = writer.segment_keys
    data = store.get(segment)
    assert data is not None
    text = data.decode()
    assert "ann@example.com" not in text and "7700" not in text
    rows = list(iter_rejects(b"source,row,byte_offset,column,reason,detail\n" + data))
    assert [(row["reason"], row["detail"]) for row in rows] == [
        (f"braze: '{EMAIL_WITHHELD}' is not a valid email", "attributes object"),
        ("not an integer", f"'call {PHONE_WITHHELD}'"),
    ]
