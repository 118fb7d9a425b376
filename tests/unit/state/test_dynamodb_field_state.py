"""What only the DynamoDB field-state store does: item layout, packing, batching and retries."""

from __future__ import annotations

from typing import Any, cast

import pytest

from cdpbridge.state import (
    Backoff,
    CorruptFieldStateError,
    DynamoDbFieldStateStore,
    StateItemTooLargeError,
    StateStoreUnavailableError,
    value_digest,
)
from cdpbridge.state._dynamo import attribute_value_size
from cdpbridge.state.packing import pack_digests, unpack_digests
from cdpbridge.state.tables import FIELD_STATE_TABLE

D1, D2 = value_digest(1), value_digest(2)
NO_WAIT = Backoff(base_s=0.0, sleep=lambda _: None)


class UnprocessedInjectingClient:
    """A real (moto) client whose first batch calls leave half their work unprocessed, as under throttling."""

    def __init__(self, real: Any, throttled_calls: int) -> None:
        self.real = real
        self.throttled_calls = throttled_calls
        self.batch_calls = 0

    def batch_get_item(self, **kwargs: Any) -> Any:
        self.batch_calls += 1
        if self.throttled_calls <= 0:
            return self.real.batch_get_item(**kwargs)
        self.throttled_calls -= 1
        ((table, request),) = kwargs["RequestItems"].items()
        keys = request["Keys"]
        served, deferred = keys[: len(keys) // 2], keys[len(keys) // 2 :]
        response = (
            self.real.batch_get_item(RequestItems={table: {**request, "Keys": served}}) if served else {}
        )
        return {
            "Responses": response.get("Responses", {table: []}),
            "UnprocessedKeys": {table: {**request, "Keys": deferred}},
        }

    def batch_write_item(self, **kwargs: Any) -> Any:
        self.batch_calls += 1
        if self.throttled_calls <= 0:
            return self.real.batch_write_item(**kwargs)
        self.throttled_calls -= 1
        ((table, requests),) = kwargs["RequestItems"].items()
        served, deferred = requests[: len(requests) // 2], requests[len(requests) // 2 :]
        if served:
            self.real.batch_write_item(RequestItems={table: served})
        return {"UnprocessedItems": {table: deferred}}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
def table(make_table) -> str:
    return str(make_table(FIELD_STATE_TABLE))


def test_one_compact_item_per_user(dynamodb_client, table):
    # Given a store with a retention and a fixed clock
    store = DynamoDbFieldStateStore(
        table, client=dynamodb_client, retention_seconds=3600, clock=lambda: 1000.0
    )
    # When one user's digests are applied
    store.apply("ws", {"external_id:7": {"a": D1, "b": D2}})
    # Then exactly one item holds them, keyed "<workspace>#<user>", with time and expiry
    items = dynamodb_client.scan(TableName=table)["Items"]
    assert len(items) == 1
    item = items[0]
    assert item["pk"] == {"S": "ws#external_id:7"}
    assert unpack_digests(item["h"]["B"]) == {"a": D1, "b": D2}
    assert item["t"] == {"N": "1000"}
    assert item["expires_at"] == {"N": "4600"}


def test_packed_value_is_no_larger_than_a_map():
    # Given state of 30 attributes with realistic names
    state = {f"custom_attribute_{n}": value_digest(n) for n in range(30)}
    # When sized both ways by DynamoDB's rules
    packed = attribute_value_size({"B": pack_digests(state)})
    as_map = attribute_value_size({"M": {name: {"B": digest} for name, digest in state.items()}})
    # Then the packed binary is not larger
    assert packed <= as_map


def test_packing_round_trips_and_rejects_garbage():
    # Given some state, including an empty one
    for state in ({}, {"a": D1}, {"é": D1, "b": D2}):
        assert unpack_digests(pack_digests(state)) == state
    # When a damaged value is decoded / Then it is refused as corrupt
    with pytest.raises(CorruptFieldStateError):
        unpack_digests(b"\x09\x00\x00")
    with pytest.raises(CorruptFieldStateError):
        unpack_digests(pack_digests({"a": D1, "b": D2})[:-3] + b"\x00x\x00y")


def test_corrupt_item_names_table_and_redacts_user(dynamodb_client, table):
    # Given an item written by something else under a user's key
    dynamodb_client.put_item(
        TableName=table, Item={"pk": {"S": "ws#email:someone@example.com"}, "h": {"B": b"\x07garbage"}}
    )
    store = DynamoDbFieldStateStore(table, client=dynamodb_client)
    # When it is read / Then the error names the table but not the e-mail address
    with pytest.raises(CorruptFieldStateError, match=table) as caught:
        store.get_many("ws", ["email:someone@example.com"])
    assert "someone@example.com" not in str(caught.value)
    assert "email:#" in str(caught.value)


def test_known_snapshot_saves_the_second_read(dynamodb_client, table, call_counter):
    # Given a store and a snapshot read just before
    store = DynamoDbFieldStateStore(table, client=dynamodb_client)
    users = {f"external_id:{n}": {"a": D1} for n in range(150)}
    known = store.get_many("ws", list(users))
    call_counter.calls.clear()
    # When the acknowledged changes are applied with the snapshot
    store.apply("ws", users, known=known)
    # Then nothing is read again, and the writes go 25 to a request
    assert call_counter.calls["BatchGetItem"] == 0
    assert call_counter.calls["BatchWriteItem"] == 6
    # And without a snapshot the store reads first (100 keys to a request)
    call_counter.calls.clear()
    store.apply("ws", {user: {"b": D2} for user in users})
    assert call_counter.calls["BatchGetItem"] == 2


def test_unchanged_state_is_not_rewritten(dynamodb_client, table, call_counter):
    # Given stored state
    store = DynamoDbFieldStateStore(table, client=dynamodb_client)
    store.apply("ws", {"u": {"a": D1}})
    call_counter.calls.clear()
    # When the same digest is acknowledged again
    store.apply("ws", {"u": {"a": D1}})
    # Then no write is made
    assert call_counter.calls["BatchWriteItem"] == 0


def test_unprocessed_keys_and_items_are_retried(dynamodb_client, table):
    # Given a client that leaves half of its first batch calls unprocessed
    flaky = UnprocessedInjectingClient(dynamodb_client, throttled_calls=3)
    store = DynamoDbFieldStateStore(table, client=cast(Any, flaky), backoff=NO_WAIT)
    users = {f"u{n}": {"a": value_digest(n)} for n in range(40)}
    # When state is written and read through it
    store.apply("ws", users, known=store.get_many("ws", []))
    snapshot = store.get_many("ws", list(users))
    # Then every write and every read completed, over extra calls
    assert snapshot == users
    assert flaky.batch_calls > 3


def test_retries_are_bounded(dynamodb_client, table):
    # Given a client that never processes everything
    flaky = UnprocessedInjectingClient(dynamodb_client, throttled_calls=10**6)
    store = DynamoDbFieldStateStore(
        table, client=cast(Any, flaky), backoff=Backoff(base_s=0.0, max_attempts=3, sleep=lambda _: None)
    )
    # When reading / Then it gives up with a clear error after the bound
    with pytest.raises(StateStoreUnavailableError, match="unprocessed after 3 BatchGetItem attempts"):
        store.get_many("ws", [f"u{n}" for n in range(10)])
    assert flaky.batch_calls == 3


def test_oversized_user_state_is_refused_before_any_write(dynamodb_client, table, call_counter):
    # Given one normal user and one whose state cannot fit a 400 KB item
    store = DynamoDbFieldStateStore(table, client=dynamodb_client)
    huge = {f"attribute_{n:05d}_{'x' * 240}": D1 for n in range(1700)}
    call_counter.calls.clear()
    # When both are applied together
    with pytest.raises(StateItemTooLargeError, match=r"email:#[0-9a-f]+ in workspace ws \(1700 attributes\)"):
        store.apply(
            "ws", {"external_id:1": {"a": D1}, "email:big@example.com": huge}, known=store.get_many("ws", [])
        )
    # Then nothing was written, not even the normal user
    assert call_counter.calls["BatchWriteItem"] == 0


def test_default_client_comes_from_the_environment(monkeypatch):
    # Given a Lambda-like environment (region and credentials from variables)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    # When a store is built without a client
    store = DynamoDbFieldStateStore("field-state")
    # Then it built one for that region
    assert store._client.meta.region_name == "eu-west-1"
