"""`cdpbridge demo`: the main job end to end on the embedded local stack.

It starts the local stack from template.yaml (moto server + the Braze emulator), drops realistic
generated files for every implemented integration into the drop bucket, lets the template's routing
run them (S3 notification -> SQS -> function -> Braze), prints what each run did, then drops the
next day's files and shows what dedupe saved. Everything runs on loopback and stops at the end.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from cdpbridge.integrations.registry import IntegrationEntry, get_integration
from cdpbridge_local.demo_data import write_blueconic_delta, write_customers_csv
from cdpbridge_local.notify_demo import run_notify_step

EXPORT_SEGMENT = "Gold and platinum"
BLUECONIC_EXPORT_CONFIG = {
    "segment": {"name": EXPORT_SEGMENT},
    "identifiers": [{"braze": "external_id", "column": "crm_customer_id"}],
    "fields": [
        {"braze": "first_name", "column": "firstname"},
        {"braze": "email", "column": "email"},
        {"braze": "custom_attributes.loyalty_tier", "column": "loyalty_tier"},
        {"braze": "custom_attributes.loyalty_points", "column": "loyalty_points"},
        {"braze": "custom_attributes.interests", "column": "interests"},
    ],
}


@dataclass(frozen=True)
class DemoFeed:
    """One integration's file for day 1 and day 2, and the mapping config it needs in the bucket."""

    integration: str
    key: str
    config_key: str
    config: str
    write_day: Callable[[Path, int, int], Path]  # (path, users, day) -> path


def _customers(change_share: float) -> Callable[[Path, int, int], Path]:
    def write(path: Path, users: int, day: int) -> Path:
        return write_customers_csv(
            path, users, generation=day - 1, change_share=change_share if day > 1 else 0
        )

    return write


def _example_config(entry: IntegrationEntry) -> str:
    if entry.example_config is None:
        raise ValueError(f"integration {entry.name!r} has no example config for the demo")
    return entry.example_config.read_text(encoding="utf-8")


def demo_feeds(change_share: float) -> list[DemoFeed]:
    """One feed per integration the demo runs; names, prefixes and configs come from the registry."""
    generic, blueconic = get_integration("generic"), get_integration("blueconic")
    return [
        DemoFeed(
            generic.name,
            f"{generic.inbound_prefix}crm/customers-{{day}}.csv",
            f"config/{generic.name}/crm.yaml",
            _example_config(generic),
            _customers(change_share),
        ),
        DemoFeed(
            blueconic.name,
            f"{blueconic.inbound_prefix}profiles-delta-{{day}}.csv",
            f"config/{blueconic.name}.yaml",
            _example_config(blueconic),
            write_blueconic_delta,
        ),
    ]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="run the main job end to end on the embedded local stack")
    parser.add_argument("--users", type=int, default=5_000, help="customers per generated file (5,000)")
    parser.add_argument("--change-share", type=float, default=0.1, help="share of values changed on day 2")
    parser.add_argument("--latency-ms", type=int, default=50, help="emulated Braze latency per request")
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.set_defaults(handler=demo_command)


def _reports(stack: Any, integration: str) -> dict[str, dict[str, Any]]:
    listing = stack.s3_client.list_objects_v2(Bucket=stack.drop_bucket, Prefix=f"reports/{integration}/")
    reports: dict[str, dict[str, Any]] = {}
    for item in listing.get("Contents", []):
        if item["Key"].endswith(".json"):
            body = stack.s3_client.get_object(Bucket=stack.drop_bucket, Key=item["Key"])["Body"].read()
            reports[item["Key"]] = orjson.loads(body)
    return reports


def _print_report(key: str, report: dict[str, Any], bucket: str) -> None:
    sent, saved = report["data_points_sent"], report["data_points_saved"]
    share = saved / (sent + saved) if sent + saved else 0.0
    print(
        f"   {report['source'].rsplit('/', 1)[-1]:<28} rows {report['rows_read']:>7,}  "
        f"users updated {report['users_written']:>7,}  data points sent {sent:>8,}  "
        f"saved {saved:>8,} ({share:.0%})  requests {report['requests']:>5,}  "
        f"rejects {report['rows_rejected'] + report['objects_rejected_by_braze']:>4,}  "
        f"{report['duration_s']:.1f} s"
    )
    print(f"   {'':<28} report s3://{bucket}/{key}")


def _blueconic_export(stack: Any, admin: Any) -> None:
    """The scheduled export: a Braze segment back to BlueConic as a CSV under outbound/blueconic/."""
    emulator = stack.emulator.url
    stack.put_object("config/blueconic-export.yaml", orjson.dumps(BLUECONIC_EXPORT_CONFIG))
    admin.post(
        f"{emulator}/_emulator/segments",
        json={
            "name": EXPORT_SEGMENT,
            "filter": {"attribute": "loyalty_tier", "op": "in", "value": ["gold", "platinum"]},
        },
        timeout=10,
    ).raise_for_status()
    export_s3 = {
        "endpoint_url": stack.moto_url,
        "bucket": stack.drop_bucket,
        "path": "",
        "region": "us-east-1",
    }
    admin.put(
        f"{emulator}/_emulator/config", json={"export_s3": export_s3, "export_delay_s": 1.0}, timeout=10
    )
    print(f"== BlueConic export: the schedule fires for Braze segment '{EXPORT_SEGMENT}'")
    started = time.monotonic()
    stack.fire_schedule("BlueConicExportFunction")
    stack.drain(timeout_s=300)
    listing = stack.s3_client.list_objects_v2(Bucket=stack.drop_bucket, Prefix="outbound/blueconic/")
    for item in listing.get("Contents", []):
        body = stack.s3_client.get_object(Bucket=stack.drop_bucket, Key=item["Key"])["Body"].read().decode()
        lines = body.splitlines()
        print(f"   s3://{stack.drop_bucket}/{item['Key']}: {len(lines) - 1:,} profiles")
        for line in lines[:3]:
            print(f"      {line}")
    print(f"   exported, waited for and converted in {time.monotonic() - started:.1f} s\n")


def demo_command(args: argparse.Namespace) -> int:
    import tempfile  # noqa: PLC0415

    import requests  # noqa: PLC0415

    from cdpbridge_local.stack import LocalStack  # noqa: PLC0415 - keeps --help fast

    started = time.monotonic()
    feeds = demo_feeds(args.change_share)
    with (
        tempfile.TemporaryDirectory(prefix="cdpbridge-demo-") as workdir,
        LocalStack.start(
            template=args.template,
            parameters={"BlueConicExportSegment": EXPORT_SEGMENT},
            # Braze takes minutes to export a segment, the emulator a second: poll accordingly.
            env_vars={
                "BlueConicExportFunction": {
                    "EXPORT_POLL_INITIAL_S": "0.5",
                    "EXPORT_POLL_MAX_S": "1",
                    "EXPORT_QUIET_PERIOD_S": "0.5",
                    "EXPORT_INLINE_WAIT_MAX_S": "5",
                },
                "NotifyPlannerFunction": {
                    "EXPORT_POLL_INITIAL_S": "0.5",
                    "EXPORT_POLL_MAX_S": "1",
                    "EXPORT_QUIET_PERIOD_S": "0.5",
                    "EXPORT_INLINE_WAIT_MAX_S": "5",
                },
            },
            failed_message_visibility_s=0,
        ) as stack,
    ):
        assert stack.emulator is not None
        admin = requests.Session()
        admin.put(f"{stack.emulator.url}/_emulator/config", json={"latency_ms": args.latency_ms}, timeout=10)
        print(f"Local stack up in {time.monotonic() - started:.1f} s: moto server {stack.moto_url},")
        print(
            f"Braze emulator {stack.emulator.url} ({args.latency_ms} ms a request), "
            f"bucket {stack.drop_bucket}\n"
        )
        for feed in feeds:
            stack.put_object(feed.config_key, feed.config)
        seen: set[str] = set()
        for day in (1, 2):
            title = (
                "full files"
                if day == 1
                else f"the next day's files ({args.change_share:.0%} of values changed)"
            )
            print(f"== Day {day}: {title}")
            for feed in feeds:
                path = feed.write_day(Path(workdir) / f"{feed.integration}-{day}", args.users, day)
                stack.put_object(feed.key.format(day=day), path.read_bytes())
            landed = time.monotonic()
            stack.drain(timeout_s=300)
            print(f"   all files routed and synced in {time.monotonic() - landed:.1f} s")
            for feed in feeds:
                for key, report in sorted(_reports(stack, feed.integration).items()):
                    if key not in seen:
                        seen.add(key)
                        _print_report(key, report, stack.drop_bucket)
            stats = admin.get(f"{stack.emulator.url}/_emulator/stats", timeout=10).json()
            count = admin.get(f"{stack.emulator.url}/_emulator/users", params={"count": 1}, timeout=10).json()
            print(
                f"   Braze now holds {count['count']:,} profiles; {stats['data_points']:,} data points "
                f"billed so far, {stats['unchanged_writes']:,} of them for values that did not change\n"
            )
        _blueconic_export(stack, admin)
        run_notify_step(stack, admin)
        sample = admin.get(f"{stack.emulator.url}/_emulator/users/C00000042", timeout=10).json()
        print("One profile as Braze holds it (C00000042):")
        for name, value in sorted(sample.get("attributes", {}).items()):
            print(f"   {name:<20} {value}")
    print(f"\nDemo finished in {time.monotonic() - started:.1f} s; the local stack is stopped.")
    return 0
