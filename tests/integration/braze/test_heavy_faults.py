"""Thousands of users through heavy fault injection: every user arrives exactly once, nothing is lost."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from cdpbridge.braze import TrackCap, TrackOutcome, TrackRequest, TrackRequestBuilder

from .conftest import ClientFactory, EmulatorAdmin

pytestmark = pytest.mark.integration

USERS = 4000
SLOW_MS = 1500


def test_thousands_of_users_survive_every_fault_kind_at_once(
    make_client: ClientFactory, admin: EmulatorAdmin
) -> None:
    # Given about a quarter of all requests failing in every way the emulator knows, plus slow answers
    window = {"users.track": {"limit": 3000, "window_s": 1}}
    admin.configure(
        seed=2024,
        rate_limits=window,
        faults={
            "status_429": 0.04,
            "status_500": 0.05,
            "status_502_html": 0.05,
            "status_503": 0.05,
            "drop_connection": 0.05,
            "slow_p": 0.03,
            "slow_ms": SLOW_MS,
        },
    )
    client = make_client(
        timeout_s=0.5,
        rate_limits=window,
        retry={"max_attempts": 12, "max_elapsed_s": 60, "base_delay_s": 0.01, "max_delay_s": 0.2},
    )
    # ... and 4,000 users packed 25 to a request (160 requests), sent by 8 threads
    builder = TrackRequestBuilder(TrackCap(mode="per_array", limit=25))
    pending: list[TrackRequest] = []
    for n in range(USERS):
        body = {"external_id": f"heavy-{n}", "seq": n, "segment": f"s{n % 7}"}
        if (done := builder.add("attributes", body, n)) is not None:
            pending.append(done)
    if (last := builder.flush()) is not None:
        pending.append(last)
    assert len(pending) == 160

    # When every request is sent, and whatever ran out of retries is sent again (as a retry file would)
    accepted_refs: list[object] = []
    outcomes: list[TrackOutcome] = []
    passes = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        while pending and passes < 3:
            passes += 1
            results = list(pool.map(client.track, pending))
            outcomes.extend(results)
            retry_later = []
            for request, outcome in zip(pending, results, strict=True):
                if outcome.status == "accepted":
                    accepted_refs.extend(request.refs["attributes"])
                else:
                    assert outcome.status == "retries_exhausted", outcome
                    retry_later.append(request)
            pending = retry_later

    # Then every request was accepted in the end and every ref acknowledged exactly once
    assert pending == []
    assert sorted(accepted_refs) == list(range(USERS))  # type: ignore[type-var]
    # Let the requests the client abandoned on timeouts drain before reading the emulator's state.
    time.sleep(SLOW_MS / 1000 + 0.2)
    assert admin.count() == USERS
    users = admin.all_users()
    external_ids = [user["external_id"] for user in users]
    assert len(external_ids) == len(set(external_ids)) == USERS
    by_id = {user["external_id"]: user for user in users}
    for n in range(USERS):
        attributes = by_id[f"heavy-{n}"]["attributes"]
        assert attributes["seq"] == n and attributes["segment"] == f"s{n % 7}"

    # ... every fault kind really happened, and the client recovered from each
    stats = admin.stats()
    statuses = stats["requests"]["users.track"]
    for status in ("429", "500", "502", "503", "dropped"):
        assert statuses.get(status, 0) > 0, f"no {status} was injected"
    assert stats["faults"].get("slow", 0) > 0
    mine = client.snapshot()["users.track"]
    assert (
        mine.rate_limited > 0 and mine.server_errors > 0 and mine.connection_errors > 0 and mine.timeouts > 0
    )
    assert mine.retries == sum(outcome.attempts - 1 for outcome in outcomes)
    assert mine.requests == sum(outcome.attempts for outcome in outcomes)
