"""`cdpbridge demo`: the main job end to end on the embedded local stack.

It starts the local stack from template.yaml (moto server + the Braze emulator), drops realistic
generated files for every implemented integration into the drop bucket, lets the template's routing
run them (S3 notification -> SQS -> function -> Braze), prints what each run did, then drops the
next day's files and shows what dedupe saved, runs the BlueConic export, and routes a few Braze
Currents files (files, Lytics sink, engagement profiles). Everything runs on loopback and stops at
the end.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from cdpbridge.integrations.registry import IntegrationEntry, get_integration
from cdpbridge_local.demo_amperity import amperity_step
from cdpbridge_local.demo_data import write_blueconic_delta, write_customers_csv, write_lytics_snapshot
from cdpbridge_local.notify_demo import run_notify_step

if TYPE_CHECKING:
    from cdpbridge_local.sinks import LyticsSinkServer

EXPORT_SEGMENT = "Gold and platinum"
SEGMENT_WEBHOOK_SECRET = "demo-shared-secret"  # nosec B105 # noqa: S105 - the local stack's, signs the demo's calls
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


# Braze Currents: a few of Braze's event types, each as one file of events shaped like Braze's own
# sample of that type (../shared/fixtures/currents/ beside the repository), routed by all three routes.
CURRENTS_EVENTS = {
    "users.messages.email.Open": 2_000,
    "users.messages.email.Click": 500,
    "users.behaviors.Purchase": 200,
}
CURRENTS_CONFIG = b"""version: 1
routes:
  files:      {enabled: true, event_types: ["*"], destinations: [amperity]}
  lytics:     {enabled: true, event_types: ["users.messages.*"], stream: braze_engagement}
  engagement: {enabled: true}
"""
LYTICS_STREAM = "braze_engagement"


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
    lytics = get_integration("lytics")
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
        DemoFeed(
            lytics.name,
            f"{lytics.inbound_prefix}audience_membership/audiences_2026-11-0{{day}}.csv",
            f"config/{lytics.name}.yaml",
            _example_config(lytics),
            write_lytics_snapshot,
        ),
    ]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="run the main job end to end on the embedded local stack")
    parser.add_argument("--users", type=int, default=5_000, help="customers per generated file (5,000)")
    parser.add_argument("--change-share", type=float, default=0.1, help="share of values changed on day 2")
    parser.add_argument("--latency-ms", type=int, default=50, help="emulated Braze latency per request")
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.add_argument(
        "--currents-fixtures",
        type=Path,
        help="Braze's Currents sample files (default: shared/fixtures/currents beside the repository); "
        "the Currents step is skipped when they are absent",
    )
    parser.set_defaults(handler=demo_command)


def default_currents_fixtures(template: Path) -> Path:
    return template.resolve().parent.parent / "shared" / "fixtures" / "currents"


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


def _segment_webhook(stack: Any, admin: Any) -> None:
    """Segment Engage in real time: signed calls to the webhook's Function URL, relayed to Braze."""
    from cdpbridge.integrations.segment.webhook import sign  # noqa: PLC0415
    from cdpbridge_local.segment_traffic import EngageTraffic  # noqa: PLC0415

    traffic = EngageTraffic("segment-")
    url = stack.function_urls["SegmentWebhookFunction"]
    secret = SEGMENT_WEBHOOK_SECRET.encode()
    statuses = []
    for call in traffic.calls():
        body = orjson.dumps(call)
        statuses.append(
            admin.post(url, data=body, headers={"x-signature": sign(secret, body)}, timeout=10).status_code
        )
    refused = admin.post(url, data=b"{}", headers={"x-signature": "0" * 40}, timeout=10).status_code
    stack.drain(timeout_s=120)
    held = admin.get(f"{stack.emulator.url}/_emulator/users/{traffic.user(1)}", timeout=10).json()
    accepted = statuses.count(200)
    print(
        f"== Segment webhook: {accepted} signed Engage calls accepted (a wrong signature: {refused}); "
        f"{traffic.user(1)} holds {held['custom_attributes']}\n"
    )


def _outbound_counts(stack: Any) -> dict[str, int]:
    """Events per event type in the files route's JSON lines under outbound/amperity/currents/."""
    import gzip  # noqa: PLC0415

    counts: dict[str, int] = {}
    pages = stack.s3_client.get_paginator("list_objects_v2").paginate(
        Bucket=stack.drop_bucket, Prefix="outbound/amperity/currents/"
    )
    for page in pages:
        for item in page.get("Contents", []):
            event_type = item["Key"].split("/")[3]
            body = stack.s3_client.get_object(Bucket=stack.drop_bucket, Key=item["Key"])["Body"].read()
            counts[event_type] = counts.get(event_type, 0) + len(gzip.decompress(body).splitlines())
    return counts


def _engagement_profiles(stack: Any) -> int:
    table = stack.physical_id("EngagementProfileTable")
    pages = stack.dynamodb_client.get_paginator("scan").paginate(TableName=table, Select="COUNT")
    return sum(int(page["Count"]) for page in pages)


def currents_step(stack: Any, lytics: LyticsSinkServer, fixtures: Path) -> None:
    """Braze Currents files under currents/, routed to outbound/, the Lytics sink and the profiles;
    then one file delivered again, as Braze may, routes nothing new."""
    from datetime import UTC, datetime  # noqa: PLC0415

    from cdpbridge.currents import currents_key  # noqa: PLC0415
    from cdpbridge_local.currents_data import avro_bytes, load_sample, synthetic_events  # noqa: PLC0415

    missing = [name for name in CURRENTS_EVENTS if not (fixtures / f"{name}.avro").is_file()]
    if missing:
        print(
            f"== Braze Currents: skipped, Braze's sample files are not in {fixtures} "
            f"(missing {', '.join(missing)}; pass --currents-fixtures)\n"
        )
        return
    print(f"== Braze Currents: {len(CURRENTS_EVENTS)} files land under currents/ as Braze writes them")
    stack.put_object("config/currents.yaml", CURRENTS_CONFIG)
    hour = datetime(2026, 12, 7, 8, tzinfo=UTC)
    started = time.monotonic()
    landed: list[tuple[str, bytes]] = []
    for seed, (event_type, count) in enumerate(CURRENTS_EVENTS.items()):
        sample = load_sample(fixtures / f"{event_type}.avro")
        data = avro_bytes(sample.schema, synthetic_events(sample.record, count, seed=seed))
        key = currents_key(prefix="currents", event_type=event_type, hour=hour, name="demo-0.avro")
        stack.put_object(key, data)
        landed.append((key, data))
        print(f"   s3://{stack.drop_bucket}/{key}: {count:,} events")
    stack.drain(timeout_s=300)
    print(f"   routed in {time.monotonic() - started:.1f} s")
    for event_type, lines in sorted(_outbound_counts(stack).items()):
        print(f"   files route       outbound/amperity/currents/{event_type}/: {lines:,} events")
    posted = len(lytics.sink.events(LYTICS_STREAM))
    print(f"   lytics route      {posted:,} message events posted to stream {LYTICS_STREAM} ({lytics.url})")
    print(f"   engagement route  {_engagement_profiles(stack):,} user profiles (opens, clicks, purchases)")
    key, data = landed[0]
    again = key.replace("demo-0.avro", "demo-1.avro")
    before = sum(_outbound_counts(stack).values())
    stack.put_object(again, data)
    stack.drain(timeout_s=300)
    new = sum(_outbound_counts(stack).values()) - before + len(lytics.sink.events(LYTICS_STREAM)) - posted
    print(f"   the open file delivered again (as {again.rsplit('/', 1)[-1]}): {new:,} events routed anew\n")


def demo_command(args: argparse.Namespace) -> int:
    import secrets  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    import requests  # noqa: PLC0415

    from cdpbridge_local.sinks import LyticsSinkServer  # noqa: PLC0415
    from cdpbridge_local.stack import LocalStack  # noqa: PLC0415 - keeps --help fast

    started = time.monotonic()
    feeds = demo_feeds(args.change_share)
    lytics_token = secrets.token_urlsafe(24)
    with (
        tempfile.TemporaryDirectory(prefix="cdpbridge-demo-") as workdir,
        LyticsSinkServer(lytics_token) as lytics,
        LocalStack.start(
            template=args.template,
            parameters={
                "BlueConicExportSegment": EXPORT_SEGMENT,
                "EnableCurrents": "true",
                "LyticsUrl": lytics.url,
            },
            # The Currents function reads the sink's token from the secret the stack creates.
            secret_values={
                "LyticsTokenSecretResource": lytics_token,
                "SegmentWebhookSecret": SEGMENT_WEBHOOK_SECRET,
            },
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
        _segment_webhook(stack, admin)
        amperity_step(stack, Path(workdir), args.users, _reports)
        currents_step(stack, lytics, args.currents_fixtures or default_currents_fixtures(args.template))
        run_notify_step(stack, admin)
        sample = admin.get(f"{stack.emulator.url}/_emulator/users/C00000042", timeout=10).json()
        print("One profile as Braze holds it (C00000042):")
        for name, value in sorted(sample.get("attributes", {}).items()):
            print(f"   {name:<20} {value}")
    print(f"\nDemo finished in {time.monotonic() - started:.1f} s; the local stack is stopped.")
    return 0
