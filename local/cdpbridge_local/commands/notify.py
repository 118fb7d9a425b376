"""`cdpbridge notify`: plan and dispatch a Notify program from a laptop, and mint pixel URLs.

cdpbridge notify plan --program PROGRAM.yaml --engagement PATH... [--optin FILE]
                      --braze-url URL --api-key KEY --state STATE --out PLAN.csv

exports the program's segment (as a zip at a URL: no bucket needed), routes the Currents Avro files
or folders PATH (Braze's layout) into the engagement profiles kept in STATE (a file already routed
is not routed again), reads the opt-in export FILE, and writes each user's slot to PLAN.csv
(external_id, send_at, local_time, basis) and to the schedules in STATE.

cdpbridge notify dispatch --program PROGRAM.yaml --plan PLAN.csv --now ISO-8601
                          --braze-url URL --api-key KEY --state STATE

loads PLAN.csv into the schedules in STATE (rows already claimed or sent stay as they are) and sends
every slot due at --now through /campaigns/trigger/send, 50 recipients a call, each user once:
run it again, at the same or a later --now, and nothing is sent twice. A slot more than the
program's grace_minutes before --now is skipped and reported. Prints the report as JSON.

cdpbridge notify pixel-url --base-url URL --key-file FILE --program P --external-id ID
                           --send-id S --local-time ISO-8601 [--valid-days N]
cdpbridge notify pixel-url --base-url URL --key-file FILE --liquid

prints a signed pixel URL for one send, or (--liquid) the <img> tag to paste into the campaign,
which reads the per-recipient URL the dispatcher puts in the trigger properties.
"""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from cdpbridge.braze import BrazeClient, BrazeSettings
from cdpbridge.braze.errors import BrazeError
from cdpbridge.currents import CurrentsConfig, CurrentsRouter, RouterServices, SqliteCurrentsState
from cdpbridge.currents.config import FilesRoute, Routes
from cdpbridge.currents.local_files import avro_files, route_local_file
from cdpbridge.currents.report import RouteReport
from cdpbridge.engagement import SqliteEngagementStore
from cdpbridge.integrations.notify.dispatcher import (
    PIXEL_PROPERTY,
    Dispatcher,
    PixelSettings,
    parse_instant,
    send_id_of,
)
from cdpbridge.integrations.notify.optin import OptinHistory, load_optin_history
from cdpbridge.integrations.notify.pixel import claim_for_slot, mint_token, pixel_url
from cdpbridge.integrations.notify.planner import PLAN_COLUMNS, write_plan_csv
from cdpbridge.integrations.notify.planning import (
    SegmentDownloadError,
    UrlExportCounters,
    export_segment_users,
    plan_program,
    schedule_plan,
)
from cdpbridge.integrations.notify.program import ProgramConfig, ProgramConfigError, load_program
from cdpbridge.integrations.notify.schedules import ScheduledSend, SqliteScheduleStore
from cdpbridge.records import RowIssue
from cdpbridge.sources import SourceError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("notify", help="plan and dispatch Notify programs", description=__doc__)
    actions = parser.add_subparsers(dest="notify_action", required=True, metavar="ACTION")
    formatter = argparse.RawDescriptionHelpFormatter

    plan = actions.add_parser(
        "plan", help="plan a program's send slots", description=__doc__, formatter_class=formatter
    )
    plan.add_argument("--program", type=Path, required=True, help="PROGRAM.yaml")
    plan.add_argument(
        "--engagement",
        type=Path,
        nargs="+",
        default=[],
        metavar="PATH",
        help="Currents Avro files or folders",
    )
    plan.add_argument("--optin", type=Path, action="append", default=[], metavar="FILE", help="opt-in export")
    _braze_arguments(plan)
    plan.add_argument("--state", type=Path, required=True, help="SQLite state file (created if missing)")
    plan.add_argument("--out", type=Path, required=True, help="PLAN.csv to write")
    plan.add_argument("--now", help="the planning instant for recency (default: now)")
    plan.add_argument("--export-wait", type=float, default=3600.0, help="seconds to wait for the export")
    plan.set_defaults(handler=plan_command)

    dispatch = actions.add_parser(
        "dispatch", help="send what is due at --now", description=__doc__, formatter_class=formatter
    )
    dispatch.add_argument("--program", type=Path, required=True, help="PROGRAM.yaml")
    dispatch.add_argument("--plan", type=Path, required=True, help="PLAN.csv written by notify plan")
    dispatch.add_argument("--now", required=True, help="ISO-8601 instant with Z or an offset")
    _braze_arguments(dispatch)
    dispatch.add_argument("--state", type=Path, required=True, help="SQLite state file (created if missing)")
    dispatch.add_argument("--pixel-base-url", help="the pixel's Function URL: adds notify_pixel_url per user")
    dispatch.add_argument("--pixel-key-file", type=Path, help="file holding the pixel key")
    dispatch.set_defaults(handler=dispatch_command)

    pixel = actions.add_parser(
        "pixel-url", help="mint a signed tracking-pixel URL", description=__doc__, formatter_class=formatter
    )
    pixel.add_argument("--base-url", required=True, help="the pixel's Function URL")
    pixel.add_argument("--key-file", type=Path, help="file holding the pixel key")
    pixel.add_argument("--liquid", action="store_true", help="print the campaign's <img> tag instead")
    pixel.add_argument("--program")
    pixel.add_argument("--external-id")
    pixel.add_argument("--send-id", help="default: the slot's send id")
    pixel.add_argument(
        "--local-time", help="the send's local time, ISO-8601 with offset (PLAN.csv local_time)"
    )
    pixel.add_argument("--valid-days", type=int, default=30)
    pixel.set_defaults(handler=pixel_command)


def _braze_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--braze-url", required=True, help="REST endpoint, e.g. the emulator's URL")
    parser.add_argument("--api-key", required=True, help="REST API key")


def _client(args: argparse.Namespace) -> BrazeClient:
    return BrazeClient(BrazeSettings(rest_endpoint=args.braze_url), args.api_key)


def _program(path: Path) -> ProgramConfig | None:
    try:
        return load_program(path)
    except ProgramConfigError as error:
        print(error, file=sys.stderr)
        return None


def _route_engagement(paths: list[Path], state: Path, engagement: SqliteEngagementStore) -> RouteReport:
    """Currents files into the engagement profiles only (no files out, no Lytics)."""
    config = CurrentsConfig(routes=Routes(files=FilesRoute(enabled=False)))
    currents_state = SqliteCurrentsState(state, ttl_seconds=config.dedupe.ttl_days * 86_400)
    router = CurrentsRouter(RouterServices(config, currents_state, None, None, engagement), RouteReport())
    try:
        for path in avro_files(paths):
            route_local_file(router, path)
    finally:
        currents_state.close()
    return router.report


def plan_command(args: argparse.Namespace) -> int:
    program = _program(args.program)
    if program is None:
        return 2
    now = parse_instant(args.now) if args.now else datetime.now(UTC)
    issues: list[RowIssue] = []
    optin: OptinHistory | None = None
    if args.optin:
        try:
            optin = load_optin_history([str(path) for path in args.optin], issues.append)
        except SourceError as error:
            print(error, file=sys.stderr)
            return 2
    for issue in issues[:20]:
        print(f"opt-in: {issue}", file=sys.stderr)
    engagement = SqliteEngagementStore(args.state)
    schedules = SqliteScheduleStore(args.state)
    client = _client(args)
    try:
        routed = _route_engagement(args.engagement, args.state, engagement)
        counters = UrlExportCounters()
        try:
            users = export_segment_users(client, program.segment_id, counters, max_wait_s=args.export_wait)
        except (SegmentDownloadError, BrazeError) as error:
            print(f"segment {program.segment_id}: {error}", file=sys.stderr)
            return 1
        planned = plan_program(program, users, optin, engagement, now)
        written = write_plan_csv(planned.rows, args.out)
        stored = schedule_plan(schedules, program, planned)
    finally:
        engagement.close()
        schedules.close()
        client.close()
    summary = {
        "program": program.program,
        "send_date": program.send_date.isoformat(),
        "segment_users": counters.users,
        "export_users_without_external_id": counters.without_external_id,
        "export_unreadable_lines": counters.unreadable_lines,
        "planned": written,
        "by_basis": planned.report.by_basis,
        "default_zone_users": planned.report.default_zone_users,
        "without_slot": planned.report.without_slot,
        "optin_rejected_rows": len(issues),
        "currents_unreadable": len(routed.unreadable),
        "schedules": {
            "inserted": stored.inserted,
            "moved": stored.moved,
            "unchanged": stored.unchanged,
            "kept_claimed": stored.kept_claimed,
        },
        "out": str(args.out),
    }
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    return 0


class PlanFileError(ValueError):
    """PLAN.csv is not a plan: the message names the file, row and reason."""


def read_plan_csv(path: Path, program: ProgramConfig) -> tuple[list[ScheduledSend], list[str]]:
    """The plan's rows as schedule rows for the program's send date; bad rows are listed, not kept."""
    rows: list[ScheduledSend] = []
    problems: list[str] = []
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [column for column in PLAN_COLUMNS if column not in (reader.fieldnames or ())]
            if missing:
                raise PlanFileError(f"{path}: missing columns {', '.join(missing)}")
            for number, record in enumerate(reader, start=2):
                try:
                    send_at = parse_instant(record["send_at"]).strftime("%Y-%m-%dT%H:%M:%SZ")
                    datetime.fromisoformat(record["local_time"])
                except (ValueError, TypeError) as error:
                    problems.append(f"{path}: row {number}: send_at/local_time: {error}")
                    continue
                if not record["external_id"]:
                    problems.append(f"{path}: row {number}: external_id: empty")
                    continue
                rows.append(
                    ScheduledSend(
                        program.program,
                        program.send_date,
                        record["external_id"],
                        send_at,
                        record["local_time"],
                        record["basis"],
                    )
                )
    except OSError as error:
        raise PlanFileError(f"{path}: {error}") from error
    return rows, problems


def dispatch_command(args: argparse.Namespace) -> int:
    program = _program(args.program)
    if program is None:
        return 2
    try:
        now = parse_instant(args.now)
    except ValueError as error:
        print(f"--now: {error}", file=sys.stderr)
        return 2
    try:
        rows, problems = read_plan_csv(args.plan, program)
    except PlanFileError as error:
        print(error, file=sys.stderr)
        return 2
    for problem in problems:
        print(problem, file=sys.stderr)
    pixel: PixelSettings | None = None
    if args.pixel_base_url:
        if not args.pixel_key_file:
            print("--pixel-base-url needs --pixel-key-file", file=sys.stderr)
            return 2
        pixel = PixelSettings(args.pixel_base_url, args.pixel_key_file.read_bytes().strip())
    store = SqliteScheduleStore(args.state)
    client = _client(args)
    try:
        store.write_plan(rows)
        report = Dispatcher(program, store, client, pixel).dispatch(now)
    finally:
        store.close()
        client.close()
    print(
        orjson.dumps(
            {**report.to_dict(), "plan_rejected_rows": len(problems)}, option=orjson.OPT_INDENT_2
        ).decode()
    )
    return 1 if report.stopped or report.failed else 0


def pixel_command(args: argparse.Namespace) -> int:
    if args.liquid:
        # The dispatcher mints one URL per recipient and send into the trigger properties.
        print(
            f'<img src="{{{{api_trigger_properties.${{{PIXEL_PROPERTY}}}}}}}" width="1" height="1" alt="" />'
        )
        return 0
    needed = {"--key-file": args.key_file, "--program": args.program, "--external-id": args.external_id}
    needed["--local-time"] = args.local_time
    missing = [flag for flag, value in needed.items() if not value]
    if missing:
        print(f"pixel-url needs {', '.join(missing)} (or --liquid)", file=sys.stderr)
        return 2
    try:
        local = datetime.fromisoformat(args.local_time)
        if local.utcoffset() is None:
            raise ValueError("no UTC offset")
    except ValueError as error:
        print(f"--local-time: {error}", file=sys.stderr)
        return 2
    send_id = args.send_id or send_id_of(args.program, local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    claim = claim_for_slot(
        args.program, args.external_id, send_id, args.local_time, valid_days=args.valid_days
    )
    print(pixel_url(args.base_url, mint_token(args.key_file.read_bytes().strip(), claim)))
    return 0


__all__ = ["read_plan_csv", "register"]
