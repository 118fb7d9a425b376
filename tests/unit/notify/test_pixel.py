"""Pixel tokens: signed, expiring, compared in constant time; opens recorded, machine opens not."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from cdpbridge.engagement import EngagementKind, SqliteEngagementStore
from cdpbridge.integrations.notify.pixel import (
    PIXEL_GIF,
    PixelClaim,
    PixelRefusal,
    check_token,
    claim_for_slot,
    gif_response,
    mint_token,
    open_observation,
    pixel_url,
    record_open,
    token_of_request,
    verify_token,
)

KEY = b"pixel-test-key-0123456789"
SENT_AT = int(datetime(2026, 12, 8, 9, 0, tzinfo=UTC).timestamp())
CLAIM = PixelClaim("morning", "user-1", "notify-morning-20261208T090000Z", SENT_AT, 60, SENT_AT + 86_400)


def test_a_minted_token_verifies_to_its_claim() -> None:
    token = mint_token(KEY, CLAIM)
    assert verify_token(KEY, token, SENT_AT + 10) == CLAIM
    # base64url, no padding: safe in a URL and in Liquid.
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_bad_tokens_verify_to_nothing() -> None:
    token = mint_token(KEY, CLAIM)
    payload, signature = token.split(".")
    assert verify_token(b"another-key", token, SENT_AT) is None
    assert verify_token(KEY, token, CLAIM.expires_at) is None  # expired
    assert verify_token(KEY, f"{payload}x.{signature}", SENT_AT) is None  # payload changed
    assert verify_token(KEY, f"{payload}.{signature[:-2]}", SENT_AT) is None
    assert verify_token(KEY, "", SENT_AT) is None
    assert verify_token(KEY, "no-dot", SENT_AT) is None
    assert verify_token(KEY, "a.b.c", SENT_AT) is None
    assert verify_token(KEY, "é.ü", SENT_AT) is None
    assert verify_token(KEY, "x" * 5000 + ".y", SENT_AT) is None


def test_the_claim_of_a_planned_slot_carries_its_offset() -> None:
    claim = claim_for_slot("morning", "user-1", "s-1", "2026-12-08T10:00:00+01:00", valid_days=2)
    assert (claim.sent_at, claim.utc_offset_minutes, claim.expires_at) == (SENT_AT, 60, SENT_AT + 2 * 86_400)


def test_an_open_is_placed_at_the_users_local_hour_of_week() -> None:
    opened = SENT_AT + 3 * 3600  # 12:00 UTC, 13:00 in the claim's +01:00, a Tuesday
    observation = open_observation(CLAIM, opened, "token")
    assert observation is not None
    assert observation.hour_of_week == 1 * 24 + 13
    assert observation.kind is EngagementKind.EMAIL_OPEN
    assert open_observation(CLAIM, SENT_AT + 30, "token") is None  # a mail client's prefetch


def test_record_open_writes_the_engagement_store(tmp_path: Path) -> None:
    store = SqliteEngagementStore(tmp_path / "state.sqlite3")
    token = mint_token(KEY, CLAIM)
    opened = datetime.fromtimestamp(SENT_AT + 7200, UTC)
    assert record_open(KEY, token, store, opened).recorded
    assert record_open(KEY, token, store, opened).recorded  # the same open twice is kept once
    assert not record_open(b"wrong", token, store, opened).recorded
    assert not record_open(KEY, None, store, opened).recorded
    profile = store.profiles(["user-1"])["user-1"]
    assert profile.by_kind == {"email_open": 1}


def test_the_gif_and_the_request_token() -> None:
    response = gif_response()
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "image/gif"
    assert base64.b64decode(response["body"]) == PIXEL_GIF
    assert PIXEL_GIF.startswith(b"GIF89a")
    assert token_of_request({"queryStringParameters": {"t": "abc"}}) == "abc"
    assert token_of_request({}) is None
    assert pixel_url("https://px.example/", "a.b") == "https://px.example/?t=a.b"
    assert pixel_url("https://px.example/?x=1", "a.b") == "https://px.example/?x=1&t=a.b"


def test_each_refused_token_says_why() -> None:
    token = mint_token(KEY, CLAIM)
    payload, signature = token.split(".")
    assert check_token(KEY, None, SENT_AT) is PixelRefusal.MISSING
    assert check_token(KEY, "x" * 5000 + ".y", SENT_AT) is PixelRefusal.TOO_LONG
    assert check_token(KEY, "a.b.c", SENT_AT) is PixelRefusal.MALFORMED
    assert check_token(KEY, f"{payload}.", SENT_AT) is PixelRefusal.MALFORMED
    assert check_token(KEY, "é.ü", SENT_AT) is PixelRefusal.MALFORMED
    assert check_token(KEY, f"{payload}.{signature[:-2]}", SENT_AT) is PixelRefusal.FORGED
    assert check_token(b"another-key", token, SENT_AT) is PixelRefusal.FORGED
    assert check_token(KEY, token, CLAIM.expires_at) is PixelRefusal.EXPIRED
    assert check_token(KEY, mint_token(KEY, replace(CLAIM, external_id="")), SENT_AT) is PixelRefusal.NO_USER
    assert check_token(KEY, token, SENT_AT) == CLAIM


def test_a_signed_claim_with_an_offset_of_a_day_or_more_is_refused_not_raised(tmp_path: Path) -> None:
    # timezone() refuses such an offset: recording the open raised ValueError (a traceback logged
    # for every fetch of the image).
    store = SqliteEngagementStore(tmp_path / "state.sqlite3")
    token = mint_token(KEY, replace(CLAIM, utc_offset_minutes=24 * 60))
    outcome = record_open(KEY, token, store, datetime.fromtimestamp(SENT_AT + 7200, UTC))
    assert (outcome.recorded, outcome.reason) == (False, PixelRefusal.UNREADABLE)
    assert store.profiles(["user-1"]) == {}
