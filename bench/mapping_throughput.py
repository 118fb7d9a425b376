"""Mapper throughput: microseconds per 20-column CSV row through ``Mapper.map_row``.

The rows look like a CDP profile export: an id, names, e-mail and phone (unique per row), standard
fields with few distinct values (country, language, gender, time zone, subscription state), typed
custom attributes (integer sum, decimal, datetime, boolean, array add), and three remaining columns
mapped with a prefix. Values are strings, as the CSV reader delivers them. The mapper is built fresh
for every repeat, so warming its per-field memo is part of the measured time. Time is this process's
CPU time, so colleagues' work on a shared machine does not inflate it.

    .venv/bin/python bench/mapping_throughput.py [--rows 20000] [--repeats 5] [--json out.json]

A second run maps the same rows with nothing but an identifier and ``remaining`` (every column as
prefixed text), the cheapest useful config. Prints µs/row (best and median of the repeats) and a JSON
line {"mapping_us_per_row": ..., "mapping_plain_us_per_row": ...}.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

from harness import write_json

from cdpbridge.mapping import Mapper, load_mapping
from cdpbridge.records import RowPosition, SourceRow

CONFIG = """
version: 1
integration: blueconic
source: {format: csv}
identifier: {column: customer_id, as: external_id}
default_country_code: "+49"
fields:
  - {column: first_name, attribute: first_name}
  - {column: last_name, attribute: last_name}
  - {column: email, attribute: email}
  - {column: mobile, attribute: phone}
  - {column: birthday, attribute: dob}
  - {column: country, attribute: country}
  - {column: language, attribute: language}
  - {column: gender, attribute: gender}
  - {column: timezone, attribute: time_zone}
  - {column: newsletter, attribute: email_subscribe}
  - {column: points, attribute: loyalty_points, type: integer, strategy: sum}
  - {column: tier, attribute: tier, type: string}
  - {column: ltv, attribute: lifetime_value, type: decimal}
  - {column: last_order_at, attribute: last_order_at, type: datetime}
  - {column: vip, attribute: vip, type: boolean, strategy: clear}
  - {column: interests, attribute: interests, type: array, separator: ";", strategy: add}
remaining: {prefix: "bc_"}
"""

# The floor: the same rows, every column but the identifier as a prefixed text attribute.
PLAIN_CONFIG = """
version: 1
identifier: {column: customer_id}
remaining: {prefix: "bc_"}
"""

COLUMNS = 20


def make_rows(count: int, seed: int = 7) -> list[SourceRow]:
    rng = random.Random(seed)
    countries = ["DE", "Germany", "AT", "Austria", "CH", "FR", "France", "NL", "US", "USA", "GB", "UK"]
    languages = ["de", "en", "fr", "nl", "de-DE", "en-GB", "German", "English"]
    genders = ["m", "f", "male", "female", "o", "M", "F"]
    zones = ["Europe/Berlin", "Europe/Vienna", "Europe/Zurich", "Europe/Paris", "America/New_York"]
    newsletter = ["true", "false", "opted_in", "unsubscribed", "yes"]
    tiers = ["bronze", "silver", "gold", "platinum"]
    interests = ["shoes;bags", "travel", "tech;games;music", "", "garden;tech"]
    rows: list[SourceRow] = []
    for index in range(count):
        day = rng.randint(1, 28)
        values = {
            "customer_id": f"C{index:08d}",
            "first_name": f"Name{index}",
            "last_name": f"Family{index % 5000}",
            "email": f"user.{index}@Example.COM",
            "mobile": f"0151 {rng.randint(1000000, 9999999)}",
            "birthday": f"19{rng.randint(50, 99)}-{rng.randint(1, 12):02d}-{day:02d}",
            "country": rng.choice(countries),
            "language": rng.choice(languages),
            "gender": rng.choice(genders),
            "timezone": rng.choice(zones),
            "newsletter": rng.choice(newsletter),
            "points": str(rng.randint(0, 50)),
            "tier": rng.choice(tiers),
            "ltv": f"{rng.randint(0, 5000)}.{rng.randint(0, 99):02d}",
            "last_order_at": f"2024-{rng.randint(1, 12):02d}-{day:02d}T{rng.randint(0, 23):02d}:15:00Z",
            "vip": rng.choice(["true", "false", ""]),
            "interests": rng.choice(interests),
            "zip": f"{rng.randint(1000, 99999):05d}",
            "segment": rng.choice(["a", "b", "c", "d"]),
            "score": rng.choice(["12", "7", "nan", "3"]),
        }
        assert len(values) == COLUMNS
        rows.append(SourceRow(RowPosition("bench.csv", index + 1), values))
    return rows


def run(rows: list[SourceRow], repeats: int, config_text: str = CONFIG) -> list[float]:
    config = load_mapping(config_text)
    per_row_us: list[float] = []
    for _ in range(repeats):
        mapper = Mapper(config)
        map_row = mapper.map_row
        started = time.process_time()
        for row in rows:
            map_row(row)
        per_row_us.append((time.process_time() - started) / len(rows) * 1e6)
    return per_row_us


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)

    rows = make_rows(args.rows)
    sample = Mapper(load_mapping(CONFIG)).map_row(rows[0])
    if sample.issues:
        raise SystemExit(f"benchmark rows do not map cleanly: {sample.issues}")
    timings = run(rows, args.repeats)
    plain_timings = run(rows, args.repeats, PLAIN_CONFIG)
    result = {
        "mapping_us_per_row": round(min(timings), 2),
        "mapping_us_per_row_median": round(statistics.median(timings), 2),
        "mapping_plain_us_per_row": round(min(plain_timings), 2),
        "columns": COLUMNS,
        "rows": args.rows,
        "repeats": args.repeats,
    }
    print(
        f"mapping: {result['mapping_us_per_row']} µs/row best, {result['mapping_us_per_row_median']} µs/row "
        f"median ({COLUMNS} columns, {args.rows} rows, {args.repeats} repeats)"
    )
    print(f"mapping, all text columns via remaining: {result['mapping_plain_us_per_row']} µs/row best")
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
