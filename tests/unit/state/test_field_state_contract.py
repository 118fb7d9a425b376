"""The FieldStateStore contract, run against SQLite and DynamoDB (moto server) alike."""

from __future__ import annotations

import threading

import pytest

from cdpbridge.state import FieldStateSnapshot, value_digest

D1, D2, D3 = value_digest("one"), value_digest("two"), value_digest("three")


def test_unknown_users_are_absent_but_covered(field_state_store):
    # Given an empty store
    # When two users are read
    snapshot = field_state_store.get_many("ws", ["external_id:1", "external_id:2"])
    # Then neither has state, and the snapshot records that both were read
    assert snapshot == {}
    assert snapshot.covered == {"external_id:1", "external_id:2"}


def test_applied_digests_are_read_back(field_state_store):
    # Given digests applied for two users
    field_state_store.apply("ws", {"external_id:1": {"a": D1, "b": D2}, "external_id:2": {"a": D3}})
    # When they are read with a user that has none
    snapshot = field_state_store.get_many("ws", ["external_id:1", "external_id:2", "external_id:3"])
    # Then each user has exactly its digests and the third is absent
    assert snapshot == {"external_id:1": {"a": D1, "b": D2}, "external_id:2": {"a": D3}}


def test_apply_merges_with_what_is_stored(field_state_store):
    # Given a user with two attributes stored
    field_state_store.apply("ws", {"u": {"a": D1, "b": D2}})
    # When a later apply changes one attribute and adds another
    field_state_store.apply("ws", {"u": {"b": D3, "c": D1}})
    # Then the untouched attribute is kept
    assert field_state_store.get_many("ws", ["u"]) == {"u": {"a": D1, "b": D3, "c": D1}}


def test_none_forgets_an_attribute_and_the_last_one_forgets_the_user(field_state_store):
    # Given a user with two attributes
    field_state_store.apply("ws", {"u": {"a": D1, "b": D2}})
    # When one is forgotten (e.g. after an increment) / Then only the other remains
    field_state_store.apply("ws", {"u": {"a": None}})
    assert field_state_store.get_many("ws", ["u"]) == {"u": {"b": D2}}
    # When the other is forgotten too / Then the user has no state at all
    field_state_store.apply("ws", {"u": {"b": None, "never-stored": None}})
    assert field_state_store.get_many("ws", ["u"]) == {}


def test_workspaces_are_isolated(field_state_store):
    # Given the same user key in two workspaces
    field_state_store.apply("ws-a", {"u": {"a": D1}})
    field_state_store.apply("ws-b", {"u": {"a": D2}})
    # Then each workspace sees its own digest
    assert field_state_store.get_many("ws-a", ["u"]) == {"u": {"a": D1}}
    assert field_state_store.get_many("ws-b", ["u"]) == {"u": {"a": D2}}


def test_workspace_with_separator_is_refused(field_state_store):
    # Given a workspace name containing the key separator
    # When it is used / Then a ValueError says why
    with pytest.raises(ValueError, match="must not contain '#'"):
        field_state_store.get_many("a#b", ["u"])


def test_known_snapshot_is_merged_and_kept_in_step(field_state_store):
    # Given stored state, read into a snapshot
    field_state_store.apply("ws", {"u": {"a": D1, "b": D2}})
    known = field_state_store.get_many("ws", ["u", "new"])
    # When changes are applied with that snapshot, twice in a row
    field_state_store.apply("ws", {"u": {"a": D3}, "new": {"x": D1}}, known=known)
    field_state_store.apply("ws", {"u": {"b": None}}, known=known)
    # Then the store and the snapshot agree on the result of both
    expected = {"u": {"a": D3}, "new": {"x": D1}}
    assert field_state_store.get_many("ws", ["u", "new"]) == expected
    assert known == expected


def test_users_outside_the_snapshot_are_read_before_merging(field_state_store):
    # Given a user with stored state that a snapshot did not cover
    field_state_store.apply("ws", {"other": {"a": D1}})
    known = field_state_store.get_many("ws", ["u"])
    # When the user is changed with that snapshot
    field_state_store.apply("ws", {"other": {"b": D2}}, known=known)
    # Then its stored digests were merged, not overwritten, and the snapshot did not grow
    assert field_state_store.get_many("ws", ["other"]) == {"other": {"a": D1, "b": D2}}
    assert "other" not in known.covered


def test_absorbed_snapshots_cover_both_reads(field_state_store):
    # Given two reads of different users
    field_state_store.apply("ws", {"u1": {"a": D1}, "u2": {"a": D2}})
    known = field_state_store.get_many("ws", ["u1"])
    known.absorb(field_state_store.get_many("ws", ["u2", "u3"]))
    # Then the combined snapshot covers all three users
    assert known == {"u1": {"a": D1}, "u2": {"a": D2}}
    assert known.covered == {"u1", "u2", "u3"}
    assert isinstance(known, FieldStateSnapshot)


def test_many_users_across_batches(field_state_store):
    # Given more users than one BatchGetItem/BatchWriteItem request or SQL query holds
    changes = {f"external_id:{n}": {"a": value_digest(n), "b": D1} for n in range(620)}
    field_state_store.apply("ws", changes)
    # When all are read back with duplicates in the request
    keys = list(changes) + list(changes)[:50]
    snapshot = field_state_store.get_many("ws", keys)
    # Then every user is there with its own digests
    assert snapshot == changes


def test_unicode_attribute_names_and_user_keys(field_state_store):
    # Given names outside ASCII
    field_state_store.apply("ws", {"alias:läbel:名前": {"prénom": D1, "名前": D2}})
    # Then they round-trip
    assert field_state_store.get_many("ws", ["alias:läbel:名前"]) == {
        "alias:läbel:名前": {"prénom": D1, "名前": D2}
    }


def test_very_long_user_key_round_trips(field_state_store):
    # Given a user key longer than a DynamoDB partition key may be
    long_key = "alias:" + "x" * 3000
    field_state_store.apply("ws", {long_key: {"a": D1}, "~tilde": {"a": D2}})
    # Then it is stored and read back under its own name
    assert field_state_store.get_many("ws", [long_key, "~tilde"]) == {
        long_key: {"a": D1},
        "~tilde": {"a": D2},
    }


def test_bad_attribute_name_is_refused_with_reason(field_state_store):
    # Given an attribute name holding NUL
    # When applied / Then the error says which name and why
    with pytest.raises(ValueError, match="contains NUL"):
        field_state_store.apply("ws", {"u": {"bad\x00name": D1}})


def test_concurrent_apply_from_threads(field_state_store):
    # Given several threads each writing their own users
    def write(worker: int) -> None:
        for batch in range(5):
            field_state_store.apply("ws", {f"w{worker}-u{batch}-{n}": {"a": D1} for n in range(20)})

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then every write landed
    keys = [f"w{w}-u{b}-{n}" for w in range(4) for b in range(5) for n in range(20)]
    assert len(field_state_store.get_many("ws", keys)) == len(keys)
