"""The relay's pieces that need no Braze: call identity and file-to-config look-up."""

from __future__ import annotations

from cdpbridge.integrations.segment.file_cohorts import FileCohortSettings, mapping_candidates
from cdpbridge.integrations.segment.relay import call_row


def test_a_call_keeps_its_row_whatever_message_brings_it() -> None:
    assert call_row("msg-1", "sqs-a", 0) == call_row("msg-1", "sqs-b", 7)
    assert call_row("msg-1", "sqs-a", 0) != call_row("msg-2", "sqs-a", 0)
    # Without a messageId a call is its place in its queue message
    assert call_row(None, "sqs-a", 0) != call_row(None, "sqs-a", 1)
    # Rows fit the send ledger's compact ids (at most 18 digits)
    assert len(str(call_row("msg-1", "sqs-a", 0))) <= 18


def test_a_files_config_is_its_feeds_then_the_integrations() -> None:
    key = "inbound/segment/segment-logs/src_1/1796083200000/file.gz"
    assert mapping_candidates(key, "config/")[:3] == [
        "config/segment/segment-logs.yaml",
        "config/segment/segment-logs.yml",
        "config/segment/segment-logs.json",
    ]
    assert mapping_candidates("inbound/segment/top.gz", "config/") == [
        "config/segment.yaml",
        "config/segment.yml",
        "config/segment.json",
    ]


def test_the_cohort_secret_is_named_by_the_integrations_prefix_unless_given() -> None:
    base = {"DROP_BUCKET": "drop"}
    assert FileCohortSettings.from_env(base).cohort_secret is None
    prefixed = FileCohortSettings.from_env({**base, "INTEGRATION_SECRETS_PREFIX": "stack-segment-"})
    assert prefixed.cohort_secret == "stack-segment-cohorts"
    explicit = FileCohortSettings.from_env(
        {**base, "INTEGRATION_SECRETS_PREFIX": "stack-segment-", "SEGMENT_COHORT_SECRET": "arn:x"}
    )
    assert explicit.cohort_secret == "arn:x"
