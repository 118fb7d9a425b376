"""`cdpbridge run FILE_OR_S3_URL --config MAPPING.yaml`: the engine a Lambda runs, from a laptop."""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from cdpbridge.braze import BrazeClient, BrazeSettings, SecretsManagerKeyProvider, TrackCap
from cdpbridge.mapping import MappingConfigError, load_mapping
from cdpbridge.state import (
    SqliteCheckpointStore,
    SqliteFieldStateStore,
    SqliteSendLedger,
    SqliteSnapshotRoster,
)
from cdpbridge.sync.artifacts import LocalArtifactStore
from cdpbridge.sync.counters import RunCounters
from cdpbridge.sync.engine import EngineOptions
from cdpbridge.sync.job import JobRequest, JobServices, PartOutcome, run_part
from cdpbridge.sync.snapshots import reads_whole_file
from cdpbridge_local.parts import run_parts, split

DEFAULT_STATE = Path(".cdpbridge") / "state.sqlite3"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="sync one file (local path or s3:// URL) to Braze through a mapping config",
        description=__doc__,
    )
    parser.add_argument("location", metavar="FILE_OR_S3_URL")
    parser.add_argument("--config", required=True, type=Path, help="mapping config (YAML or JSON)")
    target = parser.add_argument_group("Braze")
    target.add_argument("--braze-url", help="REST endpoint, e.g. the emulator's http://127.0.0.1:PORT")
    target.add_argument("--api-key", help="REST API key (local use; prefer --api-key-secret elsewhere)")
    target.add_argument("--instance", help="Braze instance, e.g. US-03 or EU-01")
    target.add_argument("--api-key-secret", help="Secrets Manager secret name or ARN holding the key")
    target.add_argument("--workspace", help="dedupe state namespace (default: the endpoint)")
    target.add_argument(
        "--track-cap-mode",
        choices=("per_array", "total"),
        default=None,
        help="users.track cap: 75 objects combined (total, the default) or 75 per array (legacy)",
    )
    target.add_argument("--track-cap-limit", type=int, default=None)
    target.add_argument("--in-flight", type=int, default=16, help="users.track requests in flight")
    parser.add_argument(
        "--state", type=Path, default=DEFAULT_STATE, help=f"embedded state store ({DEFAULT_STATE})"
    )
    parser.add_argument(
        "--report-dir", type=Path, default=Path("reports"), help="where reports go (./reports)"
    )
    parser.add_argument("--dry-run", action="store_true", help="send nothing; print what would be sent")
    parser.add_argument("--full-refresh", action="store_true", help="send every value, ignoring dedupe state")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="split an uncompressed file into this many byte ranges, each run by its own process, "
        "as the deployed stack fans a large file out (default 1)",
    )
    parser.set_defaults(handler=run_command)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _braze_client(args: argparse.Namespace) -> tuple[BrazeClient | None, BrazeSettings, str]:
    options: dict[str, Any] = {"max_concurrency": args.in_flight}
    if args.braze_url:
        options["rest_endpoint"] = args.braze_url
    elif args.instance:
        options["instance"] = args.instance
    elif args.dry_run:
        options["rest_endpoint"] = "https://dry-run.invalid"
    else:
        raise SystemExit("cdpbridge run: give --braze-url or --instance (or --dry-run)")
    if args.track_cap_mode or args.track_cap_limit:
        options["track_cap"] = TrackCap(mode=args.track_cap_mode or "total", limit=args.track_cap_limit or 75)
    settings = BrazeSettings(**options)
    endpoint = args.braze_url or args.instance or "dry-run"
    if args.dry_run:
        return None, settings, endpoint
    if args.api_key:
        return BrazeClient(settings, args.api_key), settings, endpoint
    if args.api_key_secret:
        return BrazeClient(settings, SecretsManagerKeyProvider(args.api_key_secret)), settings, endpoint
    raise SystemExit("cdpbridge run: give --api-key or --api-key-secret")


def _version(location: str, s3_client: Any) -> str:
    if location.startswith("s3://"):
        bucket, key = location[5:].split("/", 1)
        return str(s3_client.head_object(Bucket=bucket, Key=key)["ETag"]).strip('"')
    stat = Path(location).stat()
    return f"{stat.st_size}-{stat.st_mtime_ns}"


class ProgressLine:
    """One self-overwriting status line on stderr; silent when stderr is not a terminal."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled and stream.isatty()
        self.started = time.monotonic()
        self.last = 0.0

    def __call__(self, counters: RunCounters) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last < 0.2:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-9)
        self.stream.write(
            f"\r{counters.rows_read:>12,} rows  {counters.rows_read / elapsed:>10,.0f} rows/s  "
            f"{counters.requests:>8,} requests  {counters.rows_rejected:>6,} rejected"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")


def summary_table(outcome: PartOutcome, dry_run: bool) -> str:
    c = outcome.counters
    rows: list[tuple[str, str]] = [
        ("rows read", f"{c.rows_read:,}"),
        ("rows rejected", f"{c.rows_rejected:,}"),
        ("user updates", f"{c.users:,}"),
        ("users written" if not dry_run else "users to write", f"{c.users_written:,}"),
        ("attributes sent" if not dry_run else "attributes to send", f"{c.attributes_sent:,}"),
        ("attributes unchanged (skipped)", f"{c.attributes_unchanged:,}"),
        ("events / purchases", f"{c.events_sent:,} / {c.purchases_sent:,}"),
        ("data points billed" if not dry_run else "data points expected", f"{c.data_points_sent:,}"),
        ("data points saved", f"{c.data_points_saved:,}"),
        ("requests" if not dry_run else "requests expected", f"{c.requests:,}"),
        ("request fill", f"{c.fill_ratio:.1%}"),
        ("retries / 429s", f"{c.retries:,} / {c.rate_limited:,}"),
        ("rejected by Braze", f"{c.objects_rejected_by_braze:,}"),
        ("  of them users not in Braze", f"{c.users_missing_in_braze:,}"),
        ("sent to retry file", f"{c.objects_to_retry_file:,}"),
        ("set_if_empty lookups", f"{c.lookup_requests:,} calls, {c.lookup_seconds:.2f} s"),
    ]
    for reason, count in sorted(c.rejects_by_reason.items(), key=lambda item: -item[1]):
        rows.append((f"  reject: {reason}", f"{count:,}"))
    if c.attributes_superseded:
        rows.append(("attributes older than applied (skipped)", f"{c.attributes_superseded:,}"))
    for reason, count in sorted(c.skipped_by_reason.items(), key=lambda item: -item[1]):
        rows.append((f"  skipped: {reason}", f"{count:,}"))
    if outcome.report:
        rows.append(("report", str(outcome.report.get("report_file", ""))))
        if outcome.report.get("rejects_file"):
            rows.append(("rejects", str(outcome.report["rejects_file"])))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def _s3_client(location: str) -> Any:
    if not location.startswith("s3://"):
        return None
    import boto3  # noqa: PLC0415 - only S3 locations need it

    return boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))


def _services(args: argparse.Namespace) -> JobServices:
    """The run's services; each part process of a ``--workers`` run builds its own from ``args``."""
    client, braze_settings, endpoint = _braze_client(args)
    return JobServices(
        client=client,
        field_state=SqliteFieldStateStore(args.state),
        ledger=SqliteSendLedger(args.state),
        checkpoints=SqliteCheckpointStore(args.state),
        artifacts=LocalArtifactStore(args.report_dir),
        options=EngineOptions(
            workspace=args.workspace or endpoint,
            track_cap=braze_settings.track_cap,
            in_flight=args.in_flight,
            full_refresh=args.full_refresh,
            dry_run=args.dry_run,
        ),
        s3_client=_s3_client(args.location),
        reports_prefix="",
        retry_prefix="retry/",
        roster=SqliteSnapshotRoster(args.state),
    )


def run_command(args: argparse.Namespace) -> int:
    try:
        mapping = load_mapping(args.config)
    except (MappingConfigError, OSError) as error:
        print(f"cdpbridge run: {args.config}: {error}", file=sys.stderr)
        return 2
    if not args.location.startswith("s3://") and not Path(args.location).is_file():
        print(f"cdpbridge run: {args.location}: no such file", file=sys.stderr)
        return 2
    args.state.parent.mkdir(parents=True, exist_ok=True)
    services = _services(args)
    version = _version(args.location, services.s3_client)
    started = datetime.now(UTC)
    digest = hashlib.sha256(f"{args.location}@{version}".encode()).hexdigest()[:12]
    # Microseconds: two runs of one file started within a second must not share checkpoints.
    run_id = f"{started:%Y%m%dT%H%M%S%fZ}-{digest}"
    request = JobRequest(
        mapping.integration, args.location, version, run_id, started, mapping, config_name=args.config.stem
    )
    # A snapshot is never split: what it leaves out is known only once all of it is read.
    splits = args.workers > 1 and not reads_whole_file(mapping)
    ranges = split(request, args.workers, services.s3_client) if splits else []
    progress = ProgressLine(sys.stderr, enabled=not args.quiet)
    try:
        if len(ranges) > 1:
            outcome = run_parts(request, ranges, functools.partial(_services, args), progress=progress)
        else:
            outcome = run_part(request, services, progress=progress)
    finally:
        progress.close()
        services.field_state.close()
        if services.client is not None:
            services.client.close()
    if args.dry_run:
        print("dry run: nothing was sent; this is what the run would do")
    print(summary_table(outcome, args.dry_run))
    report = outcome.report or {}
    for warning in report.get("warnings", []):
        print(f"cdpbridge run: warning: {warning}", file=sys.stderr)
    if report.get("failure"):
        # The counters alone would read as a run that simply had nothing to send.
        print(f"cdpbridge run: failed: {report['failure']}", file=sys.stderr)
        return 1
    if outcome.aborted_reason:
        print(f"cdpbridge run: stopped: {outcome.aborted_reason}", file=sys.stderr)
        return 1
    return 0
