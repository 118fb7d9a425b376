"""Keys an S3 notification may hand to an import run, and the reasons the others are refused."""

from __future__ import annotations

import pytest

from cdpbridge.s3keys import MAX_KEY_BYTES, UnsafeKeyError, check_object_key

INBOUND = ("inbound/generic/",)


@pytest.mark.parametrize(
    "key",
    [
        "inbound/generic/customers.csv",
        "inbound/generic/feed/2026-12-07/part 1.csv.gz",
        "inbound/generic/Ærø kunder (ny).csv",
        "inbound/generic/a..b.csv",
        "inbound/generic/.hidden.csv",
    ],
)
def test_a_key_under_the_prefix_is_returned_unchanged(key: str) -> None:
    assert check_object_key(key, INBOUND) == key


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("inbound/generic/../config/generic.yaml", "'..' path segment"),
        ("inbound/generic/feed/./x.csv", "'.' or '..' path segment"),
        ("inbound/generic/..", "'..' path segment"),
        ("inbound/generic/a\x00b.csv", "U+0000"),
        ("inbound/generic/a\nb.csv", "U+000A (category Cc)"),
        ("inbound/generic/a\x1b[31mred.csv", "U+001B"),
        ("inbound/generic/a\x7fb.csv", "U+007F"),
        ("inbound/generic/a\x85b.csv", "category Cc"),
        ("inbound/generic/evil\u202ecsv.exe", "RIGHT-TO-LEFT OVERRIDE"),
        ("inbound/generic/zero\u200bwidth.csv", "ZERO WIDTH SPACE"),
        ("inbound/generic/a\\..\\b.csv", "backslash"),
        ("inbound/generic//x.csv", "empty path segment"),
        ("/inbound/generic/x.csv", "starts with '/'"),
        ("config/generic.yaml", "outside the configured prefixes inbound/generic/"),
        ("inbound/generic-other/x.csv", "outside the configured prefixes"),
        ("inbound/blueconic/x.csv", "outside the configured prefixes"),
        ("", "empty"),
        ("inbound/generic/" + "x" * MAX_KEY_BYTES, "longer than S3's 1024 bytes"),
    ],
)
def test_an_unsafe_key_is_refused_with_its_reason(key: str, reason: str) -> None:
    with pytest.raises(UnsafeKeyError, match="refused S3 key") as raised:
        check_object_key(key, INBOUND)
    assert reason in raised.value.reason
    assert raised.value.key == key


def test_the_refusal_message_escapes_what_it_quotes() -> None:
    with pytest.raises(UnsafeKeyError) as raised:
        check_object_key("inbound/generic/a\x1b[2Jb\u202e.csv", INBOUND)
    message = str(raised.value)
    assert message.isascii()
    assert "\\x1b" in message
    assert "\x1b" not in message


def test_any_of_several_prefixes_admits_a_key() -> None:
    prefixes = ("inbound/generic/", "inbound/blueconic/")
    assert check_object_key("inbound/blueconic/delta.csv", prefixes) == "inbound/blueconic/delta.csv"


@pytest.mark.parametrize("prefixes", [(), ("inbound/generic",)])
def test_a_misconfigured_prefix_list_is_a_programming_error(prefixes: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="prefix") as raised:
        check_object_key("inbound/generic/x.csv", prefixes)
    assert not isinstance(raised.value, UnsafeKeyError)
