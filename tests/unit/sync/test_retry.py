"""Retry files keep every object exactly as built, so the next run sends it unchanged."""

from __future__ import annotations

import pytest

from cdpbridge.records import RowPosition
from cdpbridge.state import value_digest
from cdpbridge.sync.objects import ObjectRef
from cdpbridge.sync.retry import RetryEntry, decode_retry_file, encode_retry_file


def test_entries_round_trip_through_a_retry_file() -> None:
    attributes = ObjectRef(
        position=RowPosition("k", 7, 120),
        user_key="external_id:u1",
        kind="attributes",
        body={"external_id": "u1", "tier": "gold"},
        digests={"tier": value_digest("gold"), "points": None},
        data_points=1,
    )
    event = ObjectRef(
        RowPosition("k", 8), "external_id:u1", "events", {"external_id": "u1", "name": "x"}, None, "8:e0", 1
    )
    entries = [
        RetryEntry("s3://b/k@etag", attributes, "retries exhausted"),
        RetryEntry("s3://b/k@etag", event, "503"),
    ]
    assert list(decode_retry_file(encode_retry_file(entries), "retry/x.jsonl")) == entries


def test_a_corrupt_line_names_the_file_and_line() -> None:
    good = (
        b'{"scope": "a", "kind": "attributes", "body": {}, '
        b'"position": {"source": "k", "row": 1}, "user_key": "u"}\n'
    )
    with pytest.raises(ValueError, match=r"retry/x.jsonl: line 2"):
        list(decode_retry_file(good + b"not json\n", "retry/x.jsonl"))


def test_a_corrupt_line_can_be_skipped_and_reported_without_its_content() -> None:
    # Given a retry file with a damaged line between two good ones
    good = (
        b'{"scope": "a", "kind": "attributes", "body": {}, '
        b'"position": {"source": "k", "row": 1}, "user_key": "u"}\n'
    )
    data = good + b'{"scope": "a", "row": "someone@example.com"\n' + good
    skipped: list[tuple[int, str]] = []
    # When it is read with a handler for bad lines
    entries = list(
        decode_retry_file(data, "retry/x.jsonl", lambda line, error: skipped.append((line, error)))
    )
    # Then the good lines are entries and the bad one is handed over by number and kind of error only
    assert len(entries) == 2
    assert skipped == [(2, "JSONDecodeError")]
