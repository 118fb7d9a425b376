"""How many full users.track requests per second the Braze emulator serves.

Starts `cdpbridge emulator` in its own process (no latency, no rate limits), then drives it from this
process with a pool of keep-alive connections (aiohttp) sending users.track requests of 75 attribute
objects with 20 custom attributes each, for --duration seconds. Prints requests/s and objects/s, the
emulator's CPU time per request, and a JSON line {"emulator_capacity_rps": ...}.

With --breakdown it also measures, in this process and without HTTP, the CPU time per request of the
three steps the emulator runs for each body: JSON parsing, validation and applying to profiles.

    .venv/bin/python bench/emulator_capacity.py [--duration 10] [--concurrency 8] [--breakdown]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import subprocess
import sys
import time

import aiohttp
import orjson
from harness import process_cpu_seconds

from cdpbridge_local.emulator.state import UserStore
from cdpbridge_local.emulator.validation import AttributeUpdate, TrackRules, validate_attributes

OBJECTS_PER_REQUEST = 75
ATTRIBUTES_PER_OBJECT = 20
DISTINCT_BODIES = 200
API_KEY = "local-dev-key"


def build_bodies(users: int, count: int = DISTINCT_BODIES) -> list[bytes]:
    """Pre-encoded bodies cycling over ``users`` external ids, with mixed value types and about a
    third of the values changing from one body to the next (so both writes and unchanged writes)."""
    bodies = []
    for batch in range(count):
        objects = []
        for index in range(OBJECTS_PER_REQUEST):
            user = (batch * OBJECTS_PER_REQUEST + index) % users
            obj: dict[str, object] = {"external_id": f"bench-user-{user}"}
            for attribute in range(ATTRIBUTES_PER_OBJECT):
                name = f"attribute_{attribute:02d}"
                kind = attribute % 4
                if kind == 0:
                    obj[name] = f"value-{user}-{attribute}-{batch % 3}"
                elif kind == 1:
                    obj[name] = user * attribute + batch % 2
                elif kind == 2:
                    obj[name] = round(user / (attribute + 1), 3)
                else:
                    obj[name] = (user + attribute) % 2 == 0
            objects.append(obj)
        bodies.append(orjson.dumps({"attributes": objects}))
    return bodies


def start_emulator(profile: str | None) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable]
    if profile:
        command += ["-m", "cProfile", "-o", profile]
    command += [
        "-m",
        "cdpbridge_local.cli",
        "emulator",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--no-rate-limits",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith("http://"):
        process.kill()
        raise SystemExit(f"the emulator did not start: {url!r}")
    return process, url


def breakdown(bodies: list[bytes], rounds: int = 3) -> dict[str, float]:
    """CPU microseconds per request of parsing, validating and applying, after a warm-up round that
    creates the profiles (so later rounds update, as a long benchmark run does)."""
    rules = TrackRules()
    store = UserStore()
    spent = {"parse_us": 0.0, "validate_us": 0.0, "apply_us": 0.0}
    measured = 0
    for round_index in range(rounds + 1):
        for body in bodies:
            started = time.process_time()
            objects = orjson.loads(body)["attributes"]
            parsed = time.process_time()
            updates = [validate_attributes(obj, rules) for obj in objects]
            validated = time.process_time()
            for update in updates:
                assert isinstance(update, AttributeUpdate)
                store.apply_attributes(update)
            applied = time.process_time()
            if round_index:
                spent["parse_us"] += parsed - started
                spent["validate_us"] += validated - parsed
                spent["apply_us"] += applied - validated
                measured += 1
    return {name: round(total / measured * 1e6, 1) for name, total in spent.items()}


async def drive(
    url: str, bodies: list[bytes], duration: float, concurrency: int
) -> tuple[int, dict[int, int]]:
    statuses: dict[int, int] = {}
    completed = 0
    deadline = time.perf_counter() + duration
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker(offset: int) -> None:
            nonlocal completed
            index = offset
            while time.perf_counter() < deadline:
                async with session.post(f"{url}/users/track", data=bodies[index % len(bodies)]) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                completed += 1
                index += concurrency

        await asyncio.gather(*(worker(offset) for offset in range(concurrency)))
    return completed, statuses


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--users", type=int, default=50_000, help="distinct external ids the bodies cycle over"
    )
    parser.add_argument("--url", help="drive an emulator that is already running instead of starting one")
    parser.add_argument("--profile", help="run the emulator under cProfile and write the stats here")
    parser.add_argument("--breakdown", action="store_true", help="also time parse/validate/apply in-process")
    args = parser.parse_args()

    bodies = build_bodies(args.users)
    process = None
    url = args.url
    if url is None:
        process, url = start_emulator(args.profile)
    try:
        asyncio.run(drive(url, bodies, args.warmup, args.concurrency))
        cpu_before = process_cpu_seconds(process.pid) if process else None
        started = time.perf_counter()
        completed, statuses = asyncio.run(drive(url, bodies, args.duration, args.concurrency))
        elapsed = time.perf_counter() - started
        cpu_after = process_cpu_seconds(process.pid) if process else None
    finally:
        if process is not None:
            process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
            if process.poll() is None:
                process.kill()

    rps = completed / elapsed
    print(f"requests: {completed} in {elapsed:.1f} s, statuses {statuses}")
    print(f"requests/s: {rps:,.0f}   objects/s: {rps * OBJECTS_PER_REQUEST:,.0f}")
    result: dict[str, object] = {
        "emulator_capacity_rps": round(rps, 1),
        "emulator_capacity_objects_per_s": round(rps * OBJECTS_PER_REQUEST),
        "concurrency": args.concurrency,
        "objects_per_request": OBJECTS_PER_REQUEST,
        "attributes_per_object": ATTRIBUTES_PER_OBJECT,
    }
    if cpu_before is not None and cpu_after is not None and completed:
        per_request_ms = (cpu_after - cpu_before) / completed * 1000
        result["emulator_cpu_ms_per_request"] = round(per_request_ms, 3)
        print(f"emulator CPU per request: {per_request_ms:.3f} ms")
    if args.breakdown:
        # As many bodies as the emulator saw users, so the profile working set matches the run.
        steps = breakdown(build_bodies(args.users, max(DISTINCT_BODIES, args.users // OBJECTS_PER_REQUEST)))
        print("in-process CPU per request: " + ", ".join(f"{name} {value}" for name, value in steps.items()))
        result.update({f"emulator_{name}_per_request": value for name, value in steps.items()})
    print(orjson.dumps(result).decode())
    return 0 if set(statuses) == {201} else 1


if __name__ == "__main__":
    sys.exit(main())
