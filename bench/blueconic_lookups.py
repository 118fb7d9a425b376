"""What set_if_empty costs a BlueConic import: the /users/export/ids look-ups it needs, in calls and time.

A set_if_empty field is written only while Braze holds no value. When the bridge has written the
attribute before, its dedupe state decides; otherwise the engine asks Braze with /users/export/ids,
50 users a call, within that endpoint's rate limit (250 calls a minute for workspaces onboarded after
August 2024). This script runs a BlueConic delta of generated profiles (the shipped example mapping:
two set_if_empty fields) through the engine against the emulator in its own process, three times:

1. first delta, no dedupe state: every user needs a look-up;
2. the same delta again (a new file version): the state decides, no look-up;
3. the first delta on a fresh Braze with set_if_empty replaced by set: the run without look-ups.

    .venv/bin/python bench/blueconic_lookups.py [--users 3000] [--latency-ms 300] [--json out.json]

Each Braze call (users.track and users/export/ids alike) takes --latency-ms in the emulator (300 ms
models Braze's round trip, as the other benchmarks do). Prints one line per run and a JSON summary
with lookup_requests, lookup_seconds and the run's duration.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import API_KEY, EmulatorProcess, machine_facts, write_json

from cdpbridge.braze import BrazeClient, BrazeSettings
from cdpbridge.integrations.blueconic import EXAMPLE_DELTA_PATH, example_mapping
from cdpbridge.mapping import MappingConfig, Strategy
from cdpbridge.state import SqliteCheckpointStore, SqliteFieldStateStore, SqliteSendLedger
from cdpbridge.sync.artifacts import LocalArtifactStore
from cdpbridge.sync.engine import EngineOptions
from cdpbridge.sync.job import JobRequest, JobServices, run_part

# Braze's documented limit for /users/export/ids (workspaces onboarded after August 2024).
EXPORT_IDS_PER_MINUTE = 250
USERS_PER_LOOKUP = 50


def write_delta(path: Path, users: int) -> Path:
    with EXAMPLE_DELTA_PATH.open(newline="", encoding="utf-8") as handle:
        columns = list(csv.DictReader(handle).fieldnames or [])
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for index in range(users):
            writer.writerow(
                {
                    "profile_id": f"00000000-0000-4000-8000-{index:012d}",
                    "crm_customer_id": f"CRM-{index:07d}",
                    "email": f"user{index}@example.com",
                    "firstname": ("Ana", "Ben", "Chloé", "Dmitri")[index % 4],
                    "lastname": f"Tester{index}",
                    "gender": ("female", "male")[index % 2],
                    "city": ("Berlin", "Lyon", "Austin")[index % 3],
                    "country": ("DE", "FR", "US")[index % 3],
                    "language": ("de", "fr", "en")[index % 3],
                    "first_visit_date": f"2024-0{1 + index % 9}-1{index % 10}T10:00:00Z",
                    "acquisition_channel": ("newsletter", "social", "referral")[index % 3],
                    "loyalty_points_earned": str(index % 40),
                    "interests": "running|yoga",
                    "viewed_categories": '["shoes"]',
                    "loyalty_tier": ("bronze", "silver", "gold")[index % 3],
                    "churn_risk_score": f"0.{index % 100:02d}",
                    "visits": str(index % 300),
                    "last_visit_date": "2024-05-06T07:00:00Z",
                    "preferred_store": "Mitte",
                    "consent_marketing": "true",
                }
            )
    return path


def without_set_if_empty(mapping: MappingConfig) -> MappingConfig:
    fields = [
        spec.model_copy(update={"strategy": Strategy.SET}) if spec.strategy is Strategy.SET_IF_EMPTY else spec
        for spec in mapping.fields
    ]
    return mapping.model_copy(update={"fields": fields})


def run(path: Path, mapping: MappingConfig, workdir: Path, url: str, run_id: str) -> dict[str, Any]:
    settings = BrazeSettings(rest_endpoint=url, max_concurrency=64)
    state = workdir / "state.sqlite3"
    services = JobServices(
        client=BrazeClient(settings, API_KEY),
        field_state=SqliteFieldStateStore(state),
        ledger=SqliteSendLedger(state),
        checkpoints=SqliteCheckpointStore(state),
        artifacts=LocalArtifactStore(workdir / "reports"),
        options=EngineOptions(workspace="bench", track_cap=settings.track_cap, in_flight=64),
        reports_prefix="",
    )
    stat = path.stat()
    request = JobRequest(
        "blueconic", str(path), f"{stat.st_size}-{run_id}", run_id, datetime.now(UTC), mapping
    )
    started = time.monotonic()
    outcome = run_part(request, services)
    duration = time.monotonic() - started
    counters = outcome.counters
    return {
        "users": counters.users,
        "duration_s": round(duration, 2),
        "lookup_requests": counters.lookup_requests,
        "lookup_users": counters.lookup_users,
        "lookup_seconds": round(counters.lookup_seconds, 2),
        "lookup_share": round(counters.lookup_seconds / duration, 3) if duration else 0.0,
        "set_if_empty_skipped": counters.attributes_set_if_empty_skipped,
        "track_requests": counters.requests,
        "data_points_sent": counters.data_points_sent,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--latency-ms", type=float, default=300.0)
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args(argv)

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, EmulatorProcess(latency_ms=args.latency_ms) as emulator:
        workdir = Path(tmp)
        delta = write_delta(workdir / "delta.csv", args.users)
        mapping = example_mapping()
        results["first_delta"] = run(delta, mapping, workdir / "a", emulator.url, "first")
        results["repeat_delta"] = run(delta, mapping, workdir / "a", emulator.url, "repeat")
        emulator.clear_profiles()
        results["no_set_if_empty"] = run(
            delta, without_set_if_empty(mapping), workdir / "b", emulator.url, "plain"
        )

    first = results["first_delta"]
    bound_users_per_minute = EXPORT_IDS_PER_MINUTE * USERS_PER_LOOKUP
    summary = {
        "benchmark": "blueconic_lookups",
        "users": args.users,
        "latency_ms": args.latency_ms,
        **{name: figures for name, figures in results.items()},
        "lookup_ms_per_user": round(first["lookup_seconds"] * 1000 / max(1, first["lookup_users"]), 3),
        "lookup_seconds_added": round(first["duration_s"] - results["no_set_if_empty"]["duration_s"], 2),
        "rate_limit_bound_users_per_minute": bound_users_per_minute,
        "machine": machine_facts(),
    }
    for name, figures in results.items():
        print(
            f"{name:16} {figures['duration_s']:7.2f} s  lookups {figures['lookup_requests']:4d} calls "
            f"{figures['lookup_seconds']:6.2f} s ({figures['lookup_share']:.0%} of the run)  "
            f"track {figures['track_requests']} requests"
        )
    print(
        f"first delta: {summary['lookup_ms_per_user']} ms of look-up per user; the rate limit alone caps "
        f"look-ups at {bound_users_per_minute:,} users a minute"
    )
    write_json(args.json, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
