"""Reads that leave states packed: the record entry read in place, the rest decoded on demand, on
SQLite and DynamoDB (moto server) alike."""

from __future__ import annotations

import pytest

from cdpbridge.state import RECORD_DIGEST_KEY, CorruptFieldStateError, FieldStateSnapshot, value_digest
from cdpbridge.state.packing import pack_digests, packed_record_entry, unpack_digests

D1, D2 = value_digest("one"), value_digest("two")
RECORD = b"\x01\x02\x03\x04\x05\x06\x02\x02"


@pytest.mark.parametrize(
    "state",
    [
        {"a": D1, "b": D2, RECORD_DIGEST_KEY: RECORD},
        {RECORD_DIGEST_KEY: RECORD, "a": D1, "b": D2},
        {RECORD_DIGEST_KEY: RECORD},
        # A last digest byte of NUL, right before the only name
        {RECORD_DIGEST_KEY: RECORD[:-1] + b"\x00"},
    ],
    ids=["last", "first", "alone", "alone after a NUL byte"],
)
def test_the_record_entry_is_read_in_place_where_writes_put_it(state: dict[str, bytes]) -> None:
    assert packed_record_entry(pack_digests(state)) == state[RECORD_DIGEST_KEY]


@pytest.mark.parametrize(
    "state",
    [
        {"a": D1, RECORD_DIGEST_KEY: RECORD, "b": D2},
        {"a": D1, "b": D2},
        {"x$record": D1},
        {"$record2": D1, "a": D2},
        {},
    ],
    ids=["in the middle", "absent", "a name ending like it", "a name starting like it", "empty"],
)
def test_elsewhere_or_absent_the_entry_is_left_to_a_full_decode(state: dict[str, bytes]) -> None:
    assert packed_record_entry(pack_digests(state)) is None


def test_a_state_of_another_packing_is_left_to_a_full_decode_which_refuses_it() -> None:
    blob = b"\x07" + pack_digests({RECORD_DIGEST_KEY: RECORD})[1:]
    assert packed_record_entry(blob) is None
    with pytest.raises(CorruptFieldStateError):
        unpack_digests(blob)


def test_a_packed_read_gives_the_record_entries_and_decodes_only_what_is_asked(field_state_store) -> None:
    # Given two users with a record entry and one without
    field_state_store.apply(
        "ws",
        {
            "u1": {"a": D1, RECORD_DIGEST_KEY: RECORD},
            "u2": {"a": D2, RECORD_DIGEST_KEY: RECORD},
            "u3": {"a": D1, "b": D2},
        },
    )
    # When they are read packed with a user that has no state
    snapshot = field_state_store.get_many_packed("ws", ["u1", "u2", "u3", "u4"])
    # Then the users found are held packed and not covered; the one not found is covered
    assert snapshot == {}
    assert set(snapshot.packed) == {"u1", "u2", "u3"}
    assert snapshot.covered == {"u4"}
    # And a record entry is read without decoding its user
    assert snapshot.record_entry("u1") == RECORD
    assert snapshot.record_entry("u4") is None
    assert "u1" in snapshot.packed
    # And a user without one is decoded to look, and covered from then on
    assert snapshot.record_entry("u3") is None
    assert snapshot == {"u3": {"a": D1, "b": D2}}
    # When one more user is decoded
    snapshot.decode(["u2"])
    # Then it is as a plain read leaves it
    assert snapshot["u2"] == {"a": D2, RECORD_DIGEST_KEY: RECORD}
    assert snapshot.covered == {"u2", "u3", "u4"}
    assert snapshot.record_entry("u2") == RECORD


def test_a_packed_read_refuses_a_damaged_state_when_decoded(field_state_store, monkeypatch) -> None:
    field_state_store.apply("ws", {"external_id:1": {"a": D1}})
    snapshot = field_state_store.get_many_packed("ws", ["external_id:1"])
    snapshot.packed["external_id:1"] = b"\x09garbage"
    with pytest.raises(CorruptFieldStateError, match="field state of user external_id:#"):
        snapshot.record_entry("external_id:1")


def test_users_a_later_read_left_packed_are_no_longer_covered_by_the_earlier_one() -> None:
    # Given a snapshot that covers u1 and u2
    known = FieldStateSnapshot({"u1": {"a": D1}}, covered=["u1", "u2"])
    later = FieldStateSnapshot(covered=["u2", "u3"])
    later.hold_packed(
        [("u1", pack_digests({"a": D2}))],
        unpack=lambda _, blob: unpack_digests(blob),
        record_of=packed_record_entry,
    )
    # When a later read that left u1 packed is absorbed
    known.absorb(later)
    # Then u1 is read again before a commit (not covered), the others are covered as read
    assert known == {}
    assert known.covered == {"u2", "u3"}
