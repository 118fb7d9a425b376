"""`cdpbridge currents route`: route Braze Currents files from a laptop, as the Currents function does.

cdpbridge currents route PATH... --config currents.yaml --state STATE --out DIR --report-dir DIR
                         [--lytics-url URL --lytics-token TOKEN]

PATH are Avro files or folders in Braze's layout (<prefix>/dataexport.<cluster>.S3.integration.<id>/
event_type=<type>/date=<YYYY-MM-DD-HH>/<schema id>/<zone>/<name>.avro); DIR stands for the bucket's
outbound/ prefix. STATE is a SQLite file holding the routed event ids, each file's progress and the
engagement profiles: run again with the same STATE and nothing is routed twice. The report (JSON, in
--report-dir, and a summary on stdout) counts records read, routed per route and per event type,
duplicates skipped, and unreadable records with their reason. The Lytics token may also come from
the LYTICS_API_TOKEN environment variable.

cdpbridge currents lytics-sink [--port N] [--token TOKEN]

serves a local Lytics collect API (POST /collect/json/<stream>; GET /_sink/received lists what it
accepted) until Ctrl-C, to point the route's --lytics-url at.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from cdpbridge.currents import (
    CurrentsConfig,
    CurrentsConfigError,
    CurrentsRouteError,
    CurrentsRouter,
    LocalOutputStore,
    LyticsClient,
    RouterServices,
    SqliteCurrentsState,
    load_currents_config,
)
from cdpbridge.currents.local_files import avro_files, route_local_file
from cdpbridge.currents.lytics import lytics_client
from cdpbridge.currents.report import RouteReport, Unreadable
from cdpbridge.engagement import SqliteEngagementStore


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("currents", help="route Braze Currents Avro files", description=__doc__)
    actions = parser.add_subparsers(dest="currents_action", required=True, metavar="ACTION")
    route = actions.add_parser(
        "route",
        help="route Currents files: dedupe on event id, then files, Lytics and engagement profiles",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    route.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="Avro files or folders")
    route.add_argument("--config", type=Path, help="config/currents.yaml (default: files and engagement on)")
    route.add_argument("--state", type=Path, required=True, help="SQLite state file (created if missing)")
    route.add_argument("--out", type=Path, required=True, help="folder standing for the bucket's outbound/")
    route.add_argument("--report-dir", type=Path, required=True, help="folder for the JSON report")
    route.add_argument("--lytics-url", help="Lytics API root for the lytics route (e.g. a local sink)")
    route.add_argument("--lytics-token", help="Lytics API token (default: $LYTICS_API_TOKEN)")
    route.set_defaults(handler=route_command)
    sink = actions.add_parser("lytics-sink", help="serve a local Lytics collect API until Ctrl-C")
    sink.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sink.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one")
    sink.add_argument("--token", default="local-lytics-token", help="the API token it accepts")
    sink.set_defaults(handler=sink_command)


def sink_command(args: argparse.Namespace) -> int:
    from cdpbridge_local.sinks import LyticsSinkServer  # noqa: PLC0415 - aiohttp only for this action

    stopping = threading.Event()
    # Handlers before the URL is printed: a caller may interrupt as soon as it has read it, before
    # this thread is scheduled again.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with LyticsSinkServer(args.token, args.host, args.port) as server:
        print(server.url, flush=True)
        stopping.wait()
    return 0


def route_command(args: argparse.Namespace) -> int:
    try:
        config = load_currents_config(args.config) if args.config else CurrentsConfig()
    except CurrentsConfigError as error:
        print(error, file=sys.stderr)
        return 2
    token = args.lytics_token or os.environ.get("LYTICS_API_TOKEN", "")
    lytics: LyticsClient | None = None
    if args.lytics_url:
        if not token:
            print("--lytics-url needs --lytics-token (or LYTICS_API_TOKEN)", file=sys.stderr)
            return 2
        lytics = lytics_client(token, args.lytics_url, config.routes.lytics)
    state = SqliteCurrentsState(args.state, ttl_seconds=config.dedupe.ttl_days * 86_400)
    engagement = SqliteEngagementStore(args.state, max_observations=config.routes.engagement.max_observations)
    services = RouterServices(config, state, LocalOutputStore(args.out), lytics, engagement)
    router = CurrentsRouter(services, RouteReport())
    try:
        for path in avro_files(args.paths):
            try:
                route_local_file(router, path)
            except CurrentsRouteError as error:
                print(f"{path}: {error}", file=sys.stderr)
                return 2
            except Exception as error:
                # The file stopped where it failed; its progress is kept, the next run resumes it.
                router.report.failures.append(Unreadable(str(path), None, f"{type(error).__name__}: {error}"))
    finally:
        state.close()
        engagement.close()
        if lytics is not None:
            lytics.close()
    report = router.report
    write_report(report, args.report_dir)
    print(summary(report))
    return 1 if report.unreadable or report.failures else 0


def write_report(report: RouteReport, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"currents-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}.json"
    path.write_bytes(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    return path


def summary(report: RouteReport) -> str:
    routed = ", ".join(
        f"{route} {report.routed.get(route, 0)}" for route in ("files", "lytics", "engagement")
    )
    lines = [
        f"files {report.files} ({report.files_already_routed} already routed, "
        f"{report.files_resumed} resumed)",
        f"records read {report.records_read}; routed: {routed}",
        f"duplicates skipped {report.duplicates_skipped}; unreadable records {report.unreadable_records}",
    ]
    lines += [
        f"unreadable: {item.file}"
        + (f" record {item.record}" if item.record is not None else "")
        + f": {item.reason}"
        for item in report.unreadable
    ]
    lines += [f"failed: {item.file}: {item.reason}" for item in report.failures]
    return "\n".join(lines)
