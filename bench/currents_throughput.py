"""Currents: records decoded and routed per second per core, peak memory, and the Lambda time of a file.

Files are built from Braze's sample schemas (shared/fixtures/currents beside the repository) with
fresh ids, times and users per event. Rates are events over this process's CPU time (one thread:
per core), so colleagues' work on a shared machine does not inflate them.

1. decode: fastavro alone over a file of --events events of --event-type (the floor);
2. route: the same file through the JSON-lines route (dedupe on SQLite, gzip level from the config,
   default 1), engagement off: the figure the target (>= 200,000 events/s per core) is about;
3. mix: one file of --mix-events events for each of the 94 event types, decoded and routed;
4. memory: peak RSS of a child process routing the --events file, and one a tenth its size;
5. lambda: the function's own runtime (S3 range reads, DynamoDB state and profiles, S3 outputs,
   every route but Lytics) on the --events file against moto server in a process of its own; the
   wall time is an upper bound of the Lambda time (moto is one Python process, slower than
   DynamoDB), and a model adds DynamoDB's ~10 ms per request, as many in flight as the stores keep,
   to this process's CPU time; both with what they cost at 1,769 MB (one vCPU).

    .venv/bin/python bench/currents_throughput.py [--events 100000] [--mix-events 2000] [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness import REPO_ROOT, process_peak_rss_mb, rate, write_json

from cdpbridge.currents import (
    CurrentsFile,
    CurrentsRouter,
    LocalOutputStore,
    RouterServices,
    SqliteCurrentsState,
    parse_currents_config,
)
from cdpbridge.currents.local_files import route_local_file
from cdpbridge_local.currents_data import Sample, avro_bytes, land, load_samples, synthetic_events

FIXTURES = REPO_ROOT / ".." / "shared" / "fixtures" / "currents"
FILES_ONLY = (
    "version: 1\nroutes: {files: {enabled: true}, lytics: {enabled: false}, engagement: {enabled: false}}\n"
)
LAMBDA_MEMORY_MB = 1769
LAMBDA_PRICE_PER_GB_S = 0.0000166667  # x86, us-east-1; arm64 is 20% less


def build_file(root: Path, sample: Sample, events: int, name: str = "part-00000.avro") -> Path:
    data = avro_bytes(sample.schema, synthetic_events(sample.record, events, users=max(10, events // 10)))
    return land(root, sample.event_type, data, name=name)


def decode_seconds(path: Path, event_type: str) -> tuple[int, float]:
    data = path.read_bytes()
    started = time.process_time()
    opened = CurrentsFile(io.BytesIO(data), str(path), event_type)
    count = sum(len(chunk.records) for chunk in opened.chunks(0, 2000))
    return count, time.process_time() - started


def route_seconds(paths: list[Path], work: Path) -> tuple[int, float, int]:
    """Routes ``paths`` with fresh state; returns events routed, CPU seconds and output bytes."""
    config = parse_currents_config(FILES_ONLY)
    state = SqliteCurrentsState(work / "state.sqlite3")
    router = CurrentsRouter(RouterServices(config, state, LocalOutputStore(work / "outbound")))
    started = time.process_time()
    for path in paths:
        route_local_file(router, path)
    seconds = time.process_time() - started
    state.close()
    assert not router.report.unreadable, router.report.unreadable[:3]
    size = sum(path.stat().st_size for path in (work / "outbound").rglob("*.gz"))
    return router.report.routed["files"], seconds, size


def child_peak_rss_mb(path: Path) -> float:
    """Peak RSS of a fresh process that routes ``path`` (imports included)."""
    completed = subprocess.run(
        [sys.executable, __file__, "--child-route", str(path)], capture_output=True, text=True, check=True
    )
    return float(json.loads(completed.stdout.strip().splitlines()[-1])["peak_rss_mb"])


def child_route(path: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="currents-bench-") as work:
        route_seconds([path], Path(work))
    print(json.dumps({"peak_rss_mb": round(own_peak_rss_mb(), 1)}))


def own_peak_rss_mb() -> float:
    """This process's peak RSS. ru_maxrss would not do: Linux carries it over from the parent
    through fork and exec, so a child started by a larger parent reports the parent's peak."""
    peak = process_peak_rss_mb(os.getpid())
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def moto_process() -> Iterator[str]:
    """moto server in a process of its own (its CPU is not ours), on a free loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as attempt:
                if attempt.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def lambda_run(path: Path, event_type: str) -> dict[str, Any]:
    """The function's runtime on one file against moto server: wall and CPU seconds, requests."""
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415

    from cdpbridge.currents import CURRENTS_STATE_TABLE  # noqa: PLC0415
    from cdpbridge.currents.function import AwsClients  # noqa: PLC0415
    from cdpbridge.currents.runtime import handle_currents_message  # noqa: PLC0415
    from cdpbridge.currents.settings import CurrentsSettings  # noqa: PLC0415
    from cdpbridge.engagement import ENGAGEMENT_PROFILE_TABLE  # noqa: PLC0415
    from cdpbridge.state.tables import create_table  # noqa: PLC0415

    with moto_process() as url:
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": url,
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_DEFAULT_REGION": "us-east-1",
            }
        )
        config = Config(max_pool_connections=32)
        s3 = boto3.client("s3", config=config)
        dynamodb = boto3.client("dynamodb", config=config)
        s3.create_bucket(Bucket="currents-bench")
        key = "currents/" + path.as_posix().split("/currents/", 1)[1]
        s3.put_object(Bucket="currents-bench", Key=key, Body=path.read_bytes())
        create_table(dynamodb, CURRENTS_STATE_TABLE, "currents-state")
        create_table(dynamodb, ENGAGEMENT_PROFILE_TABLE, "engagement")
        calls: dict[str, int] = {}

        def count(event_name: str, **_: Any) -> None:
            operation = event_name.rsplit(".", 1)[-1]
            calls[operation] = calls.get(operation, 0) + 1

        boto3.DEFAULT_SESSION.events.register("before-call.*.*", count)  # type: ignore[union-attr]
        body = json.dumps(
            {
                "Records": [
                    {
                        "eventSource": "aws:s3",
                        "eventName": "ObjectCreated:Put",
                        "s3": {"bucket": {"name": "currents-bench"}, "object": {"key": key}},
                    }
                ]
            }
        )
        settings = CurrentsSettings(
            drop_bucket="currents-bench", state_table="currents-state", engagement_table="engagement"
        )
        clients = AwsClients(boto3.client("s3", config=config), boto3.client("secretsmanager"))
        wall, cpu = time.monotonic(), time.process_time()
        report = handle_currents_message(body, settings=settings, clients=clients)
        wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    assert report is not None and not report.unreadable
    # moto answers from one Python process on a shared machine, slower than DynamoDB; the model adds
    # to our own CPU time the requests at DynamoDB's ~10 ms, as many in flight as the stores keep.
    state_requests = calls.get("BatchGetItem", 0) + calls.get("BatchWriteItem", 0)
    modeled = cpu + state_requests / 8 * 0.010 + calls.get("PutItem", 0) / 16 * 0.010 + 0.1
    return {
        "event_type": event_type,
        "events": report.records_read,
        "routed": dict(report.routed),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "requests": dict(sorted(calls.items())),
        "lambda_gb_s": round(wall * LAMBDA_MEMORY_MB / 1024, 2),
        "lambda_usd": round(wall * LAMBDA_MEMORY_MB / 1024 * LAMBDA_PRICE_PER_GB_S, 6),
        "modeled_lambda_s": round(modeled, 2),
        "modeled_lambda_usd": round(modeled * LAMBDA_MEMORY_MB / 1024 * LAMBDA_PRICE_PER_GB_S, 6),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--event-type", default="users.messages.email.Open")
    parser.add_argument("--mix-events", type=int, default=2_000, help="events per type in the 94-type mix")
    parser.add_argument("--skip-lambda", action="store_true", help="leave out the moto-server run")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child-route", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_route:
        child_route(args.child_route)
        return 0

    samples = {sample.event_type: sample for sample in load_samples(FIXTURES)}
    sample = samples[args.event_type]
    result: dict[str, Any] = {"parameters": {"events": args.events, "event_type": args.event_type}}
    with tempfile.TemporaryDirectory(prefix="currents-bench-") as directory:
        root = Path(directory)
        print(
            f"building files ({args.events:,} {args.event_type}, {args.mix_events:,} x 94)", file=sys.stderr
        )
        big = build_file(root / "in", sample, args.events)
        small = build_file(root / "small", sample, max(1, args.events // 10))
        mix = [build_file(root / "mix", each, args.mix_events) for each in samples.values()]

        decoded, decode_s = decode_seconds(big, args.event_type)
        routed, route_s, output_bytes = route_seconds([big], root / "work-big")
        result["decode_records_per_s"] = rate(decoded, decode_s)
        result["route_records_per_s"] = rate(routed, route_s)
        result["route_overhead_us_per_record"] = round((route_s - decode_s) / max(routed, 1) * 1e6, 2)
        result["avro_bytes_per_record"] = round(big.stat().st_size / args.events, 1)
        result["jsonl_gz_bytes_per_record"] = round(output_bytes / max(routed, 1), 1)

        mix_decoded = 0
        mix_decode_s = 0.0
        for path, each in zip(mix, samples.values(), strict=True):
            count, seconds = decode_seconds(path, each.event_type)
            mix_decoded += count
            mix_decode_s += seconds
        mix_routed, mix_route_s, _ = route_seconds(mix, root / "work-mix")
        result["mix"] = {
            "event_types": len(mix),
            "events": mix_routed,
            "decode_records_per_s": rate(mix_decoded, mix_decode_s),
            "route_records_per_s": rate(mix_routed, mix_route_s),
        }
        result["peak_rss_mb"] = child_peak_rss_mb(big)
        result["peak_rss_mb_tenth_file"] = child_peak_rss_mb(small)
        if not args.skip_lambda:
            print("routing through the function's runtime against moto server", file=sys.stderr)
            result["lambda"] = lambda_run(big, args.event_type)

    print(
        f"{args.event_type}, {args.events:,} events: decode {result['decode_records_per_s']:,.0f}/s, "
        f"route {result['route_records_per_s']:,.0f}/s per core "
        f"(+{result['route_overhead_us_per_record']} µs/event over decode); "
        f"94-type mix: decode {result['mix']['decode_records_per_s']:,.0f}/s, "
        f"route {result['mix']['route_records_per_s']:,.0f}/s; "
        f"peak RSS {result['peak_rss_mb']} MB "
        f"({result['peak_rss_mb_tenth_file']} MB for a tenth of the file)",
        file=sys.stderr,
    )
    if "lambda" in result:
        lam = result["lambda"]
        print(
            f"function runtime on moto: {lam['wall_s']} s wall, {lam['cpu_s']} s CPU, "
            f"{lam['lambda_gb_s']} GB-s (${lam['lambda_usd']}) at {LAMBDA_MEMORY_MB} MB; "
            f"modeled on DynamoDB latency {lam['modeled_lambda_s']} s (${lam['modeled_lambda_usd']}); "
            f"requests {lam['requests']}",
            file=sys.stderr,
        )
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
