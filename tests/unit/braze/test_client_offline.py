"""Client behaviour that needs no server: refusing bad calls before sending, reading bodies, mapping errors.

Everything that talks HTTP is tested against the emulator in tests/integration/braze/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from urllib3 import HTTPHeaderDict

from cdpbridge.braze import (
    BrazeClient,
    BrazeRequestError,
    BrazeSettings,
    CohortChange,
    TrackCap,
    TrackRequest,
    TrackRequestBuilder,
)
from cdpbridge.braze.client import _cohort_batches, _decode, _map_track_errors

# Nothing listens here; every test below must fail before a connection is attempted.
UNREACHABLE = "http://127.0.0.1:9"


@pytest.fixture
def client() -> Iterator[BrazeClient]:
    with BrazeClient(BrazeSettings(rest_endpoint=UNREACHABLE), "key") as braze:
        yield braze
    assert braze.total_stats().requests == 0


def response(status: int, content_type: str | None, body: bytes) -> tuple[int, HTTPHeaderDict, bytes]:
    headers = HTTPHeaderDict()
    if content_type is not None:
        headers["content-type"] = content_type  # looked up as Content-Type: the case must not matter
    return status, headers, body


def test_an_html_502_page_is_read_without_parsing_it_as_json() -> None:
    # Given a load balancer's HTML error page / When decoded / Then no JSON error, a readable message
    page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    payload, message, errors = _decode(*response(502, "text/html", page))
    assert payload is None and errors == []
    assert message == f"HTTP 502 with a non-JSON body (text/html, {len(page)} bytes)"


def test_a_body_claiming_json_that_is_not_is_reported_not_raised() -> None:
    payload, message, _ = _decode(*response(500, "application/json", b"<html>oops"))
    assert payload is None and "malformed JSON" in message


def test_brazes_message_and_errors_are_taken_from_a_json_body() -> None:
    body = b'{"message": "Invalid campaign_id", "errors": ["campaign not found"]}'
    payload, message, errors = _decode(*response(400, "application/json; charset=utf-8", body))
    assert payload["message"] == "Invalid campaign_id"
    assert message == "Invalid campaign_id" and errors == ["campaign not found"]


def test_partial_errors_map_back_to_the_refs_of_the_named_objects() -> None:
    builder = TrackRequestBuilder(TrackCap())
    for n in range(3):
        builder.add("attributes", {"external_id": str(n)}, f"row-{n}")
    builder.add("events", {"external_id": "0", "name": "e"}, "event-row")
    request = builder.flush()
    assert request is not None
    mapped = _map_track_errors(
        request,
        [
            {"type": "'dob' must be a date", "input_array": "attributes", "index": 1},
            {"type": "bad time", "input_array": "events", "index": 0},
        ],
    )
    assert [(e.kind, e.index, e.ref, e.error_type) for e in mapped] == [
        ("attributes", 1, "row-1", "'dob' must be a date"),
        ("events", 0, "event-row", "bad time"),
    ]


def test_an_error_naming_no_valid_object_is_charged_to_every_object_it_could_mean() -> None:
    # Given errors without a usable index / Then no object they might mean is claimed as processed
    builder = TrackRequestBuilder(TrackCap())
    builder.add("attributes", {"external_id": "1"}, "a0")
    builder.add("attributes", {"external_id": "2"}, "a1")
    builder.add("events", {"external_id": "1", "name": "e"}, "e0")
    request = builder.flush()
    assert request is not None
    by_array = _map_track_errors(request, [{"type": "too many", "input_array": "attributes", "index": 7}])
    assert [e.ref for e in by_array] == ["a0", "a1"]
    whole = _map_track_errors(request, [{"type": "Max Input Length Exceeded"}])
    assert [e.ref for e in whole] == ["a0", "a1", "e0"]
    assert _map_track_errors(request, ["plain text error"])[0].error_type == "plain text error"


def test_cohort_changes_are_split_in_order_into_requests_of_1000_ids() -> None:
    # Given 1,500 additions then 700 removals / When batched
    changes: list[CohortChange | dict[str, Any]] = [
        CohortChange(user_ids=[f"u{n}" for n in range(1500)]),
        {"user_ids": [f"r{n}" for n in range(700)], "should_remove": True},
    ]
    batches = list(_cohort_batches(changes))
    # Then every request holds at most 1,000 ids and the order (latest change wins) is kept
    assert [count for _, count in batches] == [1000, 1000, 200]
    first, second, third = (batch for batch, _ in batches)
    assert first == [{"user_ids": [f"u{n}" for n in range(1000)], "should_remove": False}]
    assert second == [
        {"user_ids": [f"u{n}" for n in range(1000, 1500)], "should_remove": False},
        {"user_ids": [f"r{n}" for n in range(500)], "should_remove": True},
    ]
    assert third == [{"user_ids": [f"r{n}" for n in range(500, 700)], "should_remove": True}]


def test_a_cohort_change_must_name_exactly_one_kind_of_id() -> None:
    with pytest.raises(BrazeRequestError, match="change #1"):
        list(_cohort_batches([{"user_ids": ["a"], "device_ids": ["b"]}]))


def test_trigger_send_refuses_more_than_50_recipients(client: BrazeClient) -> None:
    recipients = [{"external_user_id": str(n)} for n in range(51)]
    with pytest.raises(BrazeRequestError, match="at most 50 recipients"):
        client.trigger_send("campaign", recipients=recipients)


@pytest.mark.parametrize(
    ("recipients", "broadcast", "reason"),
    [
        ([{"external_user_id": "1"}], True, "cannot be combined"),
        (None, False, "broadcast must be true"),
        ([{"trigger_properties": {}}], False, "recipient #1 must name exactly one"),
    ],
)
def test_trigger_send_enforces_the_broadcast_rule(
    client: BrazeClient, recipients: list[dict[str, object]] | None, broadcast: bool, reason: str
) -> None:
    with pytest.raises(BrazeRequestError, match=reason):
        client.trigger_send("campaign", recipients=recipients, broadcast=broadcast)


def test_export_ids_refuses_more_than_50_identifiers_in_all(client: BrazeClient) -> None:
    with pytest.raises(BrazeRequestError, match="at most 50 identifiers"):
        client.export_ids(external_ids=[str(n) for n in range(40)], emails=[f"{n}@x.test" for n in range(11)])
    with pytest.raises(BrazeRequestError, match="at least one"):
        client.export_ids()


def test_schedule_trigger_refuses_a_schedule_without_a_time(client: BrazeClient) -> None:
    with pytest.raises(BrazeRequestError, match="invalid schedule: time"):
        client.schedule_trigger("campaign", schedule={"in_local_time": True}, broadcast=True)


def test_a_partner_name_cannot_reshape_the_url(client: BrazeClient) -> None:
    with pytest.raises(BrazeRequestError, match="invalid partner name"):
        client.cohort_upsert("../users/delete", "k", "s", "c", "n")


def test_an_empty_track_request_is_refused(client: BrazeClient) -> None:
    with pytest.raises(BrazeRequestError, match="at least one object"):
        client.track(TrackRequest())
