"""The SendLedger contract on SQLite and DynamoDB, and the DynamoDB ledger's compact layout."""

from __future__ import annotations

import pytest

from cdpbridge.state import DynamoDbSendLedger
from cdpbridge.state.dynamodb_run_state import ledger_block
from cdpbridge.state.tables import RUN_STATE_TABLE

SCOPE = "s3://drop/inbound/segment/events.csv@0123456789abcdef"


def test_nothing_is_sent_in_a_new_scope(send_ledger):
    # Given an empty ledger / When ids are checked / Then none was sent
    assert send_ledger.already_sent(SCOPE, ["1:e0", "2:e0"]) == set()


def test_marked_ids_are_reported_as_sent(send_ledger):
    # Given some acknowledged events and purchases
    send_ledger.mark_sent(SCOPE, ["1:e0", "1:e1", "2:p0"])
    # When a superset is checked
    sent = send_ledger.already_sent(SCOPE, ["1:e0", "1:e1", "1:e2", "2:p0", "2:e0"])
    # Then exactly the marked ones are reported
    assert sent == {"1:e0", "1:e1", "2:p0"}


def test_marking_twice_is_harmless(send_ledger):
    # Given ids marked twice (a retried acknowledgement)
    send_ledger.mark_sent(SCOPE, ["5:e0", "5:e0"])
    send_ledger.mark_sent(SCOPE, ["5:e0"])
    # Then they are sent once, as far as the ledger knows
    assert send_ledger.already_sent(SCOPE, ["5:e0"]) == {"5:e0"}


def test_scopes_are_isolated(send_ledger):
    # Given an id marked for one version of a file
    send_ledger.mark_sent(SCOPE, ["1:e0"])
    # When a new version of the same key is checked / Then nothing was sent for it
    assert send_ledger.already_sent(SCOPE.replace("0123", "9999"), ["1:e0"]) == set()


def test_large_files_and_odd_ids(send_ledger):
    # Given a run's worth of ids: many rows, rows with many events, and ids of another shape
    ids = [f"{row}:e0" for row in range(1, 2001)]
    ids += [f"77:e{index}" for index in range(300)]
    ids += ["order-123", "ünïcode:ïd", "00042:e0", "x" * 2000]
    send_ledger.mark_sent(SCOPE, ids)
    probe = [*ids, "2001:e0", "77:e300", "order-124", "42:e0"]
    # When they are all checked, with a few never sent
    sent = send_ledger.already_sent(SCOPE, probe)
    # Then exactly the marked ids come back ("00042:e0" is not "42:e0")
    assert sent == set(ids)


def test_empty_scope_or_id_is_refused(send_ledger):
    with pytest.raises(ValueError, match="scope"):
        send_ledger.mark_sent("", ["1:e0"])
    with pytest.raises(ValueError, match="id"):
        send_ledger.mark_sent(SCOPE, [""])


def test_compact_ids_share_blocks():
    # Given the engine's ids: "<row>:<kind letter><index>"
    # Then neighbouring rows share a block per kind, and high indexes get per-row blocks
    assert ledger_block("1:e0") == ledger_block("63:e15") == "blk#e0"
    assert ledger_block("64:e0") == "blk#e1"
    assert ledger_block("1:p0") == "blk#p0"
    assert ledger_block("1:e16") == ledger_block("1:e255") == "blk#e1.0"
    assert ledger_block("1:e256") == "blk#e1.1"
    assert ledger_block("order-123") == "id#order-123"


def test_a_full_request_of_events_touches_few_items(dynamodb_client, make_table, call_counter):
    # Given a DynamoDB ledger
    table = make_table(RUN_STATE_TABLE)
    ledger = DynamoDbSendLedger(table, client=dynamodb_client, clock=lambda: 1000.0, ttl_seconds=60)
    ids = [f"{row}:e0" for row in range(100, 175)]  # one users.track request of 75 events
    call_counter.calls.clear()
    # When they are marked and checked
    ledger.mark_sent(SCOPE, ids)
    assert ledger.already_sent(SCOPE, ids) == set(ids)
    # Then two items hold them, written with two updates and read with one batch get, and they expire
    items = dynamodb_client.scan(TableName=table)["Items"]
    assert sorted(item["sk"]["S"] for item in items) == ["blk#e1", "blk#e2"]
    assert all(item["expires_at"] == {"N": "1060"} for item in items)
    assert call_counter.calls["UpdateItem"] == 2
    assert call_counter.calls["BatchGetItem"] == 1
