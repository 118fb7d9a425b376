"""Where the engine's CPU goes per row, stage by stage, on the customer file of the full-file benchmark.

Each stage runs alone over the same rows, in this process, timed with process CPU time:
- read: the CSV source (open_rows) to SourceRow objects;
- map: Mapper.map_row (the demo customer mapping: 20 typed columns);
- plan: dedupe planning against an empty state (one digest per attribute);
- build: users.track objects and full requests, as the engine builds them;
- state: committing what Braze acknowledged to SQLite field state (per-1,000-user groups);
- http: the Braze client sending the built requests to an in-process emulator with no latency (the
  emulator's own CPU is subtracted by running it in a child process).

Then, not part of the sum, ``engine_dry_run``: the engine itself (SyncEngine.run in dry-run mode,
reading the file) over the same rows: the read, map, plan and build stages plus the engine's own
work per chunk and per request (state reads, ledger, batching), without HTTP or state writes.

    .venv/bin/python bench/engine_stages.py [--rows 100000] [--json out.json]

Prints µs per row for each stage and their sum, and one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

from harness import API_KEY, EmulatorProcess, TrackLimit, customers_file, write_json

from cdpbridge.braze import BrazeClient, BrazeSettings, RateLimit, TrackCap, TrackRequest, TrackRequestBuilder
from cdpbridge.integrations.registry import get_integration
from cdpbridge.mapping import MappingConfig, load_mapping
from cdpbridge.records import SourceRow
from cdpbridge.sources import SourceSpec, open_rows
from cdpbridge.state import SqliteFieldStateStore, SqliteSendLedger
from cdpbridge.sync.artifacts import LocalArtifactStore, RejectsWriter
from cdpbridge.sync.dedupe import PlannedUser, plan_user
from cdpbridge.sync.engine import EngineOptions, SyncEngine
from cdpbridge.sync.objects import ObjectRef
from cdpbridge_local.demo_data import CUSTOMER_MAPPING_YAML


def cpu_us_per_row(rows: int, started: float) -> float:
    return round((time.process_time() - started) / rows * 1e6, 2)


def build_requests(plans: list[PlannedUser]) -> list[TrackRequest]:
    """users.track objects and full requests for the plans' attribute writes, as the engine builds them."""
    builder = TrackRequestBuilder(TrackCap())
    requests = []
    for plan in plans:
        update = plan.update
        ref = ObjectRef(
            update.position,
            update.user_key,
            "attributes",
            plan.attributes_object(plan.writes),
            plan.digests,
            None,
            plan.data_points,
        )
        request = builder.add("attributes", ref.body, ref)
        if request is not None:
            requests.append(request)
    last = builder.flush()
    if last is not None:
        requests.append(last)
    return requests


def measure(row_count: int) -> dict[str, float]:
    path = customers_file(row_count)
    mapping = load_mapping(CUSTOMER_MAPPING_YAML)
    spec = mapping.source.reader_spec()
    figures: dict[str, float] = {}
    # Every stage holds all the rows at once (the engine holds one chunk): with the collector on,
    # its scans of those would be measured instead of the stages.
    gc.collect()
    gc.disable()

    started = time.process_time()
    with open_rows(str(path), spec) as stream:
        rows = [row for row in stream if isinstance(row, SourceRow)]
    figures["read"] = cpu_us_per_row(len(rows), started)

    mapper = get_integration(mapping.integration).transformer(mapping)
    started = time.process_time()
    updates = [mapper.map_row(row) for row in rows]
    figures["map"] = cpu_us_per_row(len(rows), started)

    started = time.process_time()
    plans = [plan_user(update, None, False) for update in updates]
    figures["plan"] = cpu_us_per_row(len(rows), started)

    started = time.process_time()
    requests = build_requests(plans)
    figures["build"] = cpu_us_per_row(len(plans), started)

    with tempfile.TemporaryDirectory(prefix="cdpbridge-bench-stages-") as directory:
        state_path = Path(directory) / "state.sqlite3"
        store = SqliteFieldStateStore(state_path)
        started = time.process_time()
        for first in range(0, len(plans), 1000):
            group = plans[first : first + 1000]
            store.apply("bench", {plan.update.user_key: plan.digests for plan in group})
        figures["state"] = cpu_us_per_row(len(plans), started)
        store.close()

    with EmulatorProcess(latency_ms=0, track_limit=TrackLimit(1_000_000, 1)) as emulator:
        settings = BrazeSettings(
            rest_endpoint=emulator.url,
            max_concurrency=4,
            rate_limits={"users.track": RateLimit(limit=1_000_000, window_s=1)},
        )
        client = BrazeClient(settings, API_KEY)
        started = time.process_time()
        for request in requests:
            client.track(request)
        figures["http"] = cpu_us_per_row(len(rows), started)
        client.close()
    figures["total"] = round(sum(figures.values()), 2)
    gc.enable()
    # The engine sets its own collector thresholds for a run.
    figures["engine_dry_run"] = engine_dry_run(path, mapping, spec, len(rows))
    return figures


def engine_dry_run(path: Path, mapping: MappingConfig, spec: SourceSpec, row_count: int) -> float:
    with tempfile.TemporaryDirectory(prefix="cdpbridge-bench-stages-") as directory:
        state_path = Path(directory) / "state.sqlite3"
        engine = SyncEngine(
            client=None,
            field_state=SqliteFieldStateStore(state_path),
            ledger=SqliteSendLedger(state_path),
            options=EngineOptions(workspace="bench", dry_run=True),
            rejects=RejectsWriter(LocalArtifactStore(Path(directory)), "rejects"),
            retry_sink=lambda entries: None,
        )
        started = time.process_time()
        with open_rows(str(path), spec) as stream:
            engine.run(stream, get_integration(mapping.integration).transformer(mapping), scope="bench")
        return cpu_us_per_row(row_count, started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    figures = measure(args.rows)
    for stage, value in figures.items():
        print(f"{stage:>6}: {value:8.2f} µs/row")
    write_json(args.json, {"rows": args.rows, "us_per_row": figures})


if __name__ == "__main__":
    main()
