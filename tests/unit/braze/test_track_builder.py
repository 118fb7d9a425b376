"""TrackRequestBuilder: full requests in both cap modes, refs kept beside their objects, flush."""

from __future__ import annotations

import orjson
import pytest

from cdpbridge.braze import AdaptiveTrackCap, TrackCap, TrackRequest, TrackRequestBuilder


def attribute(n: int) -> dict[str, object]:
    return {"external_id": f"user-{n}", "tier": n}


def event(n: int) -> dict[str, object]:
    return {"external_id": f"user-{n}", "name": "opened", "time": "2025-01-01T00:00:00Z"}


def test_per_array_mode_fills_75_attributes_before_handing_a_request_over() -> None:
    # Given the classic cap / When 75 attributes are added / Then nothing is handed over yet
    builder = TrackRequestBuilder(TrackCap())
    assert all(builder.add("attributes", attribute(n), f"ref-{n}") is None for n in range(75))
    # When the 76th arrives / Then the full request comes back and the 76th starts the next one
    full = builder.add("attributes", attribute(75), "ref-75")
    assert full is not None
    assert len(full.attributes) == 75 and full.refs["attributes"] == [f"ref-{n}" for n in range(75)]
    assert full.fill_ratio(TrackCap()) == 1.0
    rest = builder.flush()
    assert rest is not None and rest.attributes == [attribute(75)] and rest.refs["attributes"] == ["ref-75"]


def test_per_array_mode_fills_each_array_independently() -> None:
    # Given 75 attributes, 75 events and 75 purchases interleaved / Then they share one request
    builder = TrackRequestBuilder(TrackCap(mode="per_array", limit=75))
    for n in range(75):
        assert builder.add("attributes", attribute(n), ("a", n)) is None
        assert builder.add("events", event(n), ("e", n)) is None
        assert builder.add("purchases", {"external_id": f"user-{n}", "product_id": "p"}, ("p", n)) is None
    assert builder.pending() == 225
    # When one more event arrives / Then the 225-object request is handed over
    full = builder.add("events", event(99), ("e", 99))
    assert full is not None
    assert (len(full.attributes), len(full.events), len(full.purchases)) == (75, 75, 75)
    assert full.object_count() == 225
    assert full.refs["events"][10] == ("e", 10) and full.refs["purchases"][74] == ("p", 74)
    assert builder.pending() == 1


def test_total_mode_caps_the_three_arrays_together() -> None:
    # Given a cap of 75 objects in total / When 50 attributes and 25 events are added
    cap = TrackCap(mode="total", limit=75)
    builder = TrackRequestBuilder(cap)
    for n in range(50):
        assert builder.add("attributes", attribute(n), n) is None
    for n in range(25):
        assert builder.add("events", event(n), 100 + n) is None
    # Then the next object of any kind completes the request
    full = builder.add("purchases", {"external_id": "x", "product_id": "p"}, "last")
    assert full is not None
    assert full.object_count() == 75 and full.fill_ratio(cap) == 1.0
    assert full.refs["attributes"] == list(range(50)) and full.refs["events"] == [100 + n for n in range(25)]
    rest = builder.flush()
    assert rest is not None and rest.refs["purchases"] == ["last"] and rest.object_count() == 1


def test_a_long_stream_yields_only_full_requests_and_one_partial_flush() -> None:
    cap = TrackCap(mode="total", limit=50)
    builder = TrackRequestBuilder(cap)
    requests: list[TrackRequest] = []
    for n in range(1234):
        if n % 3 == 0:
            done = builder.add("events", event(n), n)
        else:
            done = builder.add("attributes", attribute(n), n)
        if done is not None:
            requests.append(done)
    last = builder.flush()
    assert last is not None
    assert all(request.object_count() == 50 for request in requests)
    assert len(requests) == 24 and last.object_count() == 34
    # Every ref appears exactly once, next to its own object.
    seen = [ref for request in [*requests, last] for kind in request.refs for ref in request.refs[kind]]
    assert sorted(seen) == list(range(1234))  # type: ignore[type-var]
    for request in [*requests, last]:
        for obj, ref in zip(request.attributes, request.refs["attributes"], strict=True):
            assert obj["external_id"] == f"user-{ref}"


def test_flush_hands_over_the_partial_request_once() -> None:
    builder = TrackRequestBuilder(TrackCap())
    assert builder.flush() is None
    builder.add("events", event(1), "only")
    partial = builder.flush()
    assert partial is not None and partial.events == [event(1)]
    assert partial.fill_ratio(TrackCap()) == pytest.approx(1 / 75)
    assert builder.flush() is None
    assert builder.pending() == 0


def test_the_body_leaves_out_empty_arrays() -> None:
    request = TrackRequest(
        attributes=[attribute(1)], refs={"attributes": ["r"], "events": [], "purchases": []}
    )
    assert orjson.loads(request.to_body()) == {"attributes": [attribute(1)]}


def test_an_unknown_kind_is_refused() -> None:
    builder = TrackRequestBuilder(TrackCap())
    with pytest.raises(ValueError, match=r"unknown users\.track array 'attribute'"):
        builder.add("attribute", attribute(1), None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("mode", "limit"), [("sum", 75), ("total", 0), ("per_array", 5000)])
def test_an_impossible_cap_is_refused(mode: str, limit: int) -> None:
    with pytest.raises(ValueError, match="track cap"):
        TrackCap(mode=mode, limit=limit)  # type: ignore[arg-type]


def mixed(attributes: int, events: int) -> TrackRequest:
    request = TrackRequest()
    for n in range(attributes):
        request.attributes.append({"external_id": f"a{n}"})
        request.refs["attributes"].append(f"a{n}")
    for n in range(events):
        request.events.append({"external_id": f"e{n}", "name": "x", "time": "2026-01-01"})
        request.refs["events"].append(f"e{n}")
    return request


def test_split_in_total_mode_keeps_brazes_processing_order() -> None:
    pieces = mixed(50, 30).split(38, "total")
    assert [piece.object_count() for piece in pieces] == [38, 38, 4]
    assert pieces[1].refs["attributes"] == [f"a{n}" for n in range(38, 50)]
    assert pieces[1].refs["events"] == [f"e{n}" for n in range(26)]


def test_split_in_per_array_mode_cuts_each_array() -> None:
    pieces = mixed(50, 30).split(25, "per_array")
    assert [(len(piece.attributes), len(piece.events)) for piece in pieces] == [(25, 25), (25, 5)]


def test_halves_take_half_of_every_array_and_lose_no_ref() -> None:
    first, second = mixed(5, 3).halves()
    assert (first.refs["attributes"], first.refs["events"]) == (["a0", "a1", "a2"], ["e0", "e1"])
    assert (second.refs["attributes"], second.refs["events"]) == (["a3", "a4"], ["e2"])
    assert mixed(1, 0).halves()[0].object_count() == 1


def test_adaptive_cap_halves_once_per_refused_size_and_never_below_one() -> None:
    cap = AdaptiveTrackCap(TrackCap(mode="total", limit=75))
    assert (cap.limit, cap.lowered_to) == (75, None)
    assert cap.lower(75) == 38 and cap.lower(75) == 38  # a second refusal at the old cap changes nothing
    assert cap.lower(38) == 19 and cap.lowered == 2 and cap.lowered_to == 19
    for _ in range(10):
        cap.lower(cap.limit)
    assert cap.limit == 1
