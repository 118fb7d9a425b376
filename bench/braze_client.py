"""CPU cost of the Braze client: the users.track builder per object, and a users.track call end to end.

Part 1 (no HTTP): microseconds per object through TrackRequestBuilder.add (both cap modes) and per
request for TrackRequest.to_body (75 objects of 20 attributes).

Part 2 (HTTP): `cdpbridge emulator` in its own process (no latency, no rate limit) receives --requests
users.track requests of 75 objects x 20 attributes from --threads threads, twice: once through
BrazeClient.track (rate limiter, retries, stats, status and content-type checks, partial-error
mapping) and once through a bare urllib3 connection pool (the client's transport) posting the same
orjson-encoded bodies. CPU time is this process's only (the emulator's is its own), so the difference
is what the client adds per call.

    .venv/bin/python bench/braze_client.py [--requests 2000] [--threads 8] [--json out.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import urllib3
from harness import API_KEY, UNLIMITED, EmulatorProcess, machine_facts, rate, write_json

from cdpbridge.braze import BrazeClient, BrazeSettings, TrackCap, TrackRequest, TrackRequestBuilder

OBJECTS_PER_REQUEST = 75
ATTRIBUTES_PER_OBJECT = 20


def make_object(user: int) -> dict[str, Any]:
    obj: dict[str, Any] = {"external_id": f"bench-{user}"}
    for attribute in range(ATTRIBUTES_PER_OBJECT):
        kind = attribute % 4
        name = f"attribute_{attribute:02d}"
        if kind == 0:
            obj[name] = f"value-{user}-{attribute}"
        elif kind == 1:
            obj[name] = user * attribute
        elif kind == 2:
            obj[name] = round(user / (attribute + 1), 3)
        else:
            obj[name] = (user + attribute) % 2 == 0
    return obj


def make_requests(count: int, users: int) -> list[TrackRequest]:
    builder = TrackRequestBuilder(TrackCap())
    made: list[TrackRequest] = []
    n = 0
    while len(made) < count:
        done = builder.add("attributes", make_object(n % users), n)
        n += 1
        if done is not None:
            made.append(done)
    return made


def builder_us_per_object(cap: TrackCap, objects: list[dict[str, Any]], repeats: int) -> float:
    timings = []
    kinds = ("attributes", "attributes", "events")
    for _ in range(repeats):
        start = time.process_time()
        builder = TrackRequestBuilder(cap)
        for index, obj in enumerate(objects):
            builder.add(kinds[index % 3], obj, index)  # type: ignore[arg-type]
        builder.flush()
        timings.append((time.process_time() - start) / len(objects) * 1e6)
    return min(timings)


def encode_us_per_request(requests_: list[TrackRequest], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        start = time.process_time()
        for request in requests_:
            request.to_body()
        timings.append((time.process_time() - start) / len(requests_) * 1e6)
    return min(timings)


class InMemoryPool(urllib3.HTTPConnectionPool):
    """Answers every request with Braze's 201 without a socket, so only Python-side work is timed."""

    BODY = b'{"message":"success","attributes_processed":75,"events_processed":0,"purchases_processed":0}'

    def urlopen(self, method: str, url: str, *args: Any, **kwargs: Any) -> urllib3.BaseHTTPResponse:
        headers = {
            "Content-Type": "application/json",
            "X-RateLimit-Limit": "3000",
            "X-RateLimit-Remaining": "2999",
            "X-RateLimit-Reset": str(int(time.time()) + 3),
        }
        return urllib3.HTTPResponse(body=self.BODY, headers=headers, status=201, request_method=method)


def in_memory_us_per_track(requests_: list[TrackRequest], repeats: int) -> tuple[float, float]:
    """CPU µs per users.track call with the network taken out: through BrazeClient and the bare pool."""
    pool = InMemoryPool("rest.iad-01.braze.com")
    settings = BrazeSettings(
        instance="US-01", rate_limits={"users.track": {"limit": 1_000_000_000, "window_s": 1}}
    )
    client = BrazeClient(settings, API_KEY, pool=pool)
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    through_client: list[float] = []
    bare: list[float] = []
    for _ in range(repeats):
        start = time.process_time()
        for request in requests_:
            client.track(request)
        through_client.append((time.process_time() - start) / len(requests_) * 1e6)
        start = time.process_time()
        for request in requests_:
            response = pool.urlopen("POST", "/users/track", body=request.to_body(), headers=headers)
            assert response.data
        bare.append((time.process_time() - start) / len(requests_) * 1e6)
    return min(through_client), min(bare)


def drive(
    send: Callable[[TrackRequest], bool], requests_: list[TrackRequest], threads: int
) -> dict[str, float]:
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        accepted = sum(pool.map(send, requests_))
    wall = time.perf_counter() - wall_start
    cpu = time.process_time() - cpu_start
    if accepted != len(requests_):
        raise SystemExit(f"only {accepted} of {len(requests_)} requests were accepted")
    return {
        "requests_per_s": rate(len(requests_), wall),
        "cpu_us_per_request": round(cpu / len(requests_) * 1e6, 1),
        "wall_s": round(wall, 2),
    }


def bare_pool(url: str, threads: int) -> urllib3.HTTPConnectionPool:
    parsed = urllib3.util.parse_url(url)
    return urllib3.HTTPConnectionPool(parsed.host or "", parsed.port, maxsize=threads, block=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)

    objects = [make_object(n) for n in range(30_000)]
    per_array_us = builder_us_per_object(TrackCap(mode="per_array"), objects, args.repeats)
    total_us = builder_us_per_object(TrackCap(mode="total", limit=75), objects, args.repeats)
    prepared = make_requests(args.requests, users=20_000)
    encode_us = encode_us_per_request(prepared[:400], args.repeats)
    print(f"builder: {per_array_us:.3f} µs/object (per_array), {total_us:.3f} µs/object (total)")
    shape = f"{OBJECTS_PER_REQUEST} x {ATTRIBUTES_PER_OBJECT} attributes"
    print(f"to_body: {encode_us:.1f} µs per request of {shape}")
    in_memory_client, in_memory_bare = in_memory_us_per_track(prepared[:500], args.repeats)
    print(
        f"in-memory transport: {in_memory_client:.1f} µs/track through BrazeClient, {in_memory_bare:.1f} µs"
        f" through the bare pool: the client's own logic costs {in_memory_client - in_memory_bare:.1f} µs"
    )

    with EmulatorProcess(latency_ms=0.0, track_limit=UNLIMITED) as emulator:
        settings = BrazeSettings(
            rest_endpoint=emulator.url,
            max_concurrency=args.threads,
            rate_limits={"users.track": {"limit": 1_000_000_000, "window_s": 1}},
        )
        pool = bare_pool(emulator.url, args.threads)
        headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
        timeout = urllib3.Timeout(connect=5, read=30)

        def bare(request: TrackRequest) -> bool:
            response = pool.urlopen(
                "POST",
                "/users/track",
                body=request.to_body(),
                headers=headers,
                retries=False,
                timeout=timeout,
            )
            return response.status == 201

        with BrazeClient(settings, API_KEY) as client:

            def through_client(request: TrackRequest) -> bool:
                return client.track(request).status == "accepted"

            # Warm both paths (connections, imports) before measuring.
            drive(bare, prepared[:50], args.threads)
            drive(through_client, prepared[:50], args.threads)
            # Interleaved, so that a busy moment on a shared machine hits both alike.
            bare_runs: list[dict[str, float]] = []
            client_runs: list[dict[str, float]] = []
            for _ in range(args.repeats):
                bare_runs.append(drive(bare, prepared, args.threads))
                client_runs.append(drive(through_client, prepared, args.threads))
            stats = client.total_stats()
        pool.close()

    bare_cpu = statistics.median(run["cpu_us_per_request"] for run in bare_runs)
    client_cpu = statistics.median(run["cpu_us_per_request"] for run in client_runs)
    result = {
        "braze_builder_us_per_object": round(per_array_us, 3),
        "braze_builder_total_cap_us_per_object": round(total_us, 3),
        "braze_to_body_us_per_request": round(encode_us, 1),
        "braze_client_logic_us_per_track": round(in_memory_client - in_memory_bare, 1),
        "braze_client_cpu_us_per_track": client_cpu,
        "bare_urllib3_cpu_us_per_track": bare_cpu,
        "braze_client_overhead_us_per_track": round(client_cpu - bare_cpu, 1),
        "braze_client_requests_per_s": max(run["requests_per_s"] for run in client_runs),
        "bare_urllib3_requests_per_s": max(run["requests_per_s"] for run in bare_runs),
        "client_retries": stats.retries,
        "requests": args.requests,
        "threads": args.threads,
        "objects_per_request": OBJECTS_PER_REQUEST,
        "attributes_per_object": ATTRIBUTES_PER_OBJECT,
        "machine": machine_facts(),
    }
    print(
        f"users.track through BrazeClient: {client_cpu} µs CPU/request, "
        f"{result['braze_client_requests_per_s']} requests/s ({args.threads} threads)"
    )
    print(
        f"same bodies through a bare urllib3 pool: {bare_cpu} µs CPU/request, "
        f"{result['bare_urllib3_requests_per_s']} requests/s; client overhead "
        f"{result['braze_client_overhead_us_per_track']} µs/request (medians of {args.repeats} runs)"
    )
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
