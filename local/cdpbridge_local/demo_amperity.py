"""The Amperity step of `cdpbridge demo`: typed query results into the customers Braze already holds.

Amperity updates only users Braze knows: the results cover demo customers (created by the generic
feed on day 1) plus a few ids Braze has never seen, which are counted and not created. The same file
dropped again writes nothing.
"""

from __future__ import annotations

import csv
import random
import time
from pathlib import Path
from typing import Any

from cdpbridge.integrations.registry import get_integration

RESULT_COLUMNS = (
    "customer_id",
    "loyalty_member",
    "last_purchase_at",
    "l12m_monetary",
    "predicted_clv",
    "l12m_frequency",
    "preferred_store",
    "loyalty_tier",
    "birthdate",
)
# The example config's fields that these columns feed; the rest of the example reads columns the
# demo results do not have (optional for this run: the step writes its own config).
DEMO_MAPPING_FIELDS = """
fields:
  - {column: birthdate, attribute: dob, type: date}
  - {column: loyalty_member, type: boolean}
  - {column: last_purchase_at, type: datetime}
  - {column: l12m_monetary, type: decimal}
  - {column: predicted_clv, type: float}
  - {column: l12m_frequency, type: integer}
  - {column: preferred_store, type: "varchar(20)"}
  - {column: loyalty_tier, type: string}
"""
UNKNOWN_CUSTOMERS = 3
STORES = ("Berlin Mitte", "Lyon Part-Dieu", "Málaga Centro", "Hamburg", "Aarhus")
TIERS = ("bronze", "silver", "gold", "platinum")


def write_amperity_results(path: Path, known: int) -> Path:
    """Results for demo customers C00000000.. and UNKNOWN_CUSTOMERS ids Braze does not hold."""
    ids = [f"C{index:08d}" for index in range(known)] + [f"AMP-NEW-{n}" for n in range(UNKNOWN_CUSTOMERS)]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(RESULT_COLUMNS)
        for index, customer_id in enumerate(ids):
            rng = random.Random(index)
            writer.writerow(
                [
                    customer_id,
                    "true" if rng.random() < 0.4 else "false",
                    f"2024-05-{1 + rng.randrange(28):02d} {rng.randrange(24):02d}:15:00+02:00",
                    f"{rng.randrange(100_000) / 100:.2f}",
                    f"{rng.random() * 5000:.3f}",
                    str(rng.randrange(60)),
                    STORES[rng.randrange(len(STORES))],
                    TIERS[rng.randrange(len(TIERS))],
                    f"{1950 + rng.randrange(55)}-{1 + rng.randrange(12):02d}-{1 + rng.randrange(28):02d}",
                ]
            )
    return path


def demo_mapping_yaml() -> str:
    """The registry's example config, its fields replaced by those of the demo's columns."""
    entry = get_integration("amperity")
    assert entry.example_config is not None
    example = entry.example_config.read_text(encoding="utf-8")
    return example[: example.index("\nfields:")] + DEMO_MAPPING_FIELDS


def amperity_step(stack: Any, workdir: Path, users: int, reports: Any) -> None:
    """Drop the results twice and print one line per run. ``reports(stack, name)`` lists reports."""
    known = min(users, 1_000)
    stack.put_object("config/amperity.yaml", demo_mapping_yaml())
    path = write_amperity_results(workdir / "amperity-results.csv", known)
    print(
        f"== Amperity: typed query results for {known:,} customers Braze holds and "
        f"{UNKNOWN_CUSTOMERS} it does not (update-only)"
    )
    for run, key in enumerate(("inbound/amperity/results-1.csv", "inbound/amperity/results-2.csv"), 1):
        before = set(reports(stack, "amperity"))
        started = time.monotonic()
        stack.put_object(key, path.read_bytes())
        stack.drain(timeout_s=300)
        for report in [value for name, value in reports(stack, "amperity").items() if name not in before]:
            label = f"run {run}" + (" (same file)" if run == 2 else "")
            print(
                f"   {label}: users updated {report['users_written']:,}, "
                f"attributes sent {report['attributes_sent']:,}, "
                f"unchanged {report['attributes_unchanged']:,}, "
                f"not in Braze (not created) {report['users_missing_in_braze']:,}  "
                f"{time.monotonic() - started:.1f} s"
            )
    print()
