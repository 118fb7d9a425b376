import pytest

from cdpbridge.integrations.notify.hashing import email_sha256, is_email_sha256

# Digests computed with coreutils sha256sum over the normalised address (an implementation of its own).
VECTORS = [
    ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),  # FIPS 180-2 vector
    ("user@example.com", "b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514"),
    ("jürgen.müller@example.de", "2d5c8cc4f4fda3df36ec0b8f5075a3b3ae0b1c1005e78213f53b330f6caeca35"),
]


@pytest.mark.parametrize(("email", "digest"), VECTORS)
def test_known_vectors(email: str, digest: str) -> None:
    assert email_sha256(email) == digest


def test_trimmed_and_lower_cased_before_hashing() -> None:
    assert email_sha256("  User@Example.COM\t\n") == VECTORS[1][1]
    assert email_sha256("JÜRGEN.MÜLLER@EXAMPLE.DE ") == VECTORS[2][1]


def test_empty_address_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        email_sha256("   ")


def test_digest_form() -> None:
    assert is_email_sha256(VECTORS[0][1])
    assert not is_email_sha256(VECTORS[0][1].upper())
    assert not is_email_sha256(VECTORS[0][1][:-1])
    assert not is_email_sha256("user@example.com")
