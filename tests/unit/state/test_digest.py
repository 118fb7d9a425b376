from __future__ import annotations

import hashlib
import math

import orjson
import pytest

from cdpbridge.state import DIGEST_SIZE, NULL_DIGEST, value_digest, value_digests
from cdpbridge.state import digest as digest_module


def test_digest_is_eight_bytes_and_stable():
    # Given the same value twice
    # When it is digested
    first, second = value_digest({"tier": "gold", "points": 12}), value_digest({"tier": "gold", "points": 12})
    # Then the digests are equal 8-byte strings
    assert first == second
    assert isinstance(first, bytes)
    assert len(first) == DIGEST_SIZE


def test_key_order_does_not_matter_at_any_depth():
    # Given two objects with the same members in different orders, nested too
    a = {"a": 1, "b": {"x": [1, 2], "y": None}}
    b = {"b": {"y": None, "x": [1, 2]}, "a": 1}
    # When both are digested / Then they digest alike
    assert value_digest(a) == value_digest(b)


def test_list_order_matters():
    # Given arrays that differ only in order (Braze keeps array order)
    # Then their digests differ
    assert value_digest(["a", "b"]) != value_digest(["b", "a"])


@pytest.mark.parametrize(
    ("left", "right"),
    [(1, 1.0), (True, 1), ("1", 1), (None, ""), (None, "null"), (0, False), ([], {}), ("a", ["a"])],
)
def test_values_that_encode_differently_digest_differently(left, right):
    # Given two values Braze receives as different JSON
    # When both are digested / Then the digests differ (1 and 1.0 included: see the module docs)
    assert value_digest(left) != value_digest(right)


def test_null_digest_is_the_digest_of_none_and_of_nan():
    # Given None, and NaN which orjson (and so users.track) sends as null
    # Then both digest to NULL_DIGEST
    assert value_digest(None) == NULL_DIGEST
    assert value_digest(math.nan) == NULL_DIGEST


def test_value_digests_digests_each_attribute():
    # Given a mapping of attributes
    values = {"first_name": "Ada", "visits": 3}
    # When digested together / Then each equals its single digest
    assert value_digests(values) == {"first_name": value_digest("Ada"), "visits": value_digest(3)}


def test_unencodable_value_names_its_type_but_not_its_content():
    # Given a value JSON cannot carry, holding personal data
    class Secret:
        def __repr__(self) -> str:
            return "someone@example.com"

    # When it is digested / Then a TypeError names the type and not the content
    with pytest.raises(TypeError, match="Secret") as caught:
        value_digest(Secret())
    assert "example.com" not in str(caught.value)


def test_remembered_digests_equal_fresh_ones_and_keep_types_apart():
    # Given values Python finds equal but JSON encodes differently, digested twice (remembered)
    values = [1, True, 1.0, "1", 0, False, 0.0, -0.0]
    first = [value_digest(value) for value in values]
    second = [value_digest(value) for value in values]
    # Then a remembered digest is the digest of the value's own encoding
    assert second == first == [hashlib.blake2b(orjson.dumps(v), digest_size=8).digest() for v in values]
    assert len(set(first)) == len(values)


def test_digest_memo_stays_bounded():
    # Given more distinct strings than the memo holds
    for index in range(digest_module._DIGEST_MEMO_LIMIT + 10):
        assert (
            value_digest(f"city {index}")
            == hashlib.blake2b(orjson.dumps(f"city {index}"), digest_size=8).digest()
        )
    # Then it was emptied on the way rather than growing without bound
    assert len(digest_module._STR_DIGESTS) <= digest_module._DIGEST_MEMO_LIMIT


def test_remembered_float_digests_keep_signed_zeros_nan_and_infinities_right():
    # Given floats digested twice (the second time from the memo where one is kept)
    values = [2.5, 1e300, -0.0, 0.0, math.inf, -math.inf, math.nan, 1.0]
    first = [value_digest(value) for value in values]
    second = [value_digest(value) for value in values]
    # Then each is the digest of its own encoding: signed zeros apart, NaN and infinities as null
    assert second == first == [hashlib.blake2b(orjson.dumps(v), digest_size=8).digest() for v in values]
    assert value_digest(-0.0) != value_digest(0.0)
    assert value_digest(math.nan) == value_digest(math.inf) == NULL_DIGEST
    # And a float never shares a remembered digest with the int or text Python finds equal
    assert value_digest(1.0) != value_digest(1) != value_digest("1.0")
