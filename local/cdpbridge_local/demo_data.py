"""Deterministic, realistic demo and benchmark files (customers with standard and custom fields)."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from cdpbridge.integrations.generic import EXAMPLE_MAPPING_PATH as GENERIC_EXAMPLE_MAPPING_PATH

FIRST_NAMES = (
    "Ana",
    "Ben",
    "Chloé",
    "Dmitri",
    "Eva",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kemal",
    "Lena",
)
LAST_NAMES = (
    "Alvarez",
    "Becker",
    "Chen",
    "Dubois",
    "Evans",
    "Fischer",
    "García",
    "Hughes",
    "Ivanova",
    "Jensen",
)
CITIES = (
    ("Berlin", "DE"),
    ("Lyon", "FR"),
    ("Austin", "US"),
    ("Leeds", "GB"),
    ("Porto", "PT"),
    ("Osaka", "JP"),
)
TIERS = ("bronze", "silver", "gold", "platinum")
CHANNELS = ("email", "push", "sms", "in_app")

CUSTOMER_COLUMNS = (
    "customer_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "dob",
    "country",
    "home_city",
    "language",
    "gender",
    "loyalty_tier",
    "loyalty_points",
    "lifetime_value",
    "orders_count",
    "last_order_at",
    "zip_code",
    "newsletter",
    "preferred_channel",
    "favourite_category",
    "churn_score",
)

# The generic integration's example config, the one its registry entry names.
CUSTOMER_MAPPING_YAML = GENERIC_EXAMPLE_MAPPING_PATH.read_text(encoding="utf-8")


def customer_row(index: int, generation: int = 0, change_share: float = 0.0) -> list[str]:
    """One customer; ``generation`` > 0 changes about ``change_share`` of the changeable values."""
    rng = random.Random(index * 7919 + 17)
    city, country = CITIES[rng.randrange(len(CITIES))]
    first = FIRST_NAMES[rng.randrange(len(FIRST_NAMES))]
    last = LAST_NAMES[rng.randrange(len(LAST_NAMES))]
    row = [
        f"C{index:08d}",
        first,
        last,
        f"{first.lower()}.{index}@example.com".replace("é", "e").replace("í", "i"),
        f"+4915{index:09d}"[:15],
        f"{1950 + rng.randrange(55)}-{1 + rng.randrange(12):02d}-{1 + rng.randrange(28):02d}",
        country,
        city,
        ("de", "fr", "en", "en", "pt", "ja")[CITIES.index((city, country))],
        ("F", "M", "O", "N")[rng.randrange(4)],
        TIERS[rng.randrange(len(TIERS))],
        str(rng.randrange(20_000)),
        f"{rng.uniform(0, 5_000):.2f}",
        str(rng.randrange(200)),
        f"2026-{1 + rng.randrange(10):02d}-{1 + rng.randrange(28):02d}T{rng.randrange(24):02d}:15:00Z",
        f"{rng.randrange(100_000):05d}",
        ("true", "false")[rng.randrange(2)],
        CHANNELS[rng.randrange(len(CHANNELS))],
        ("shoes", "books", "garden", "games", "music")[rng.randrange(5)],
        f"{rng.random():.4f}",
    ]
    if generation and change_share > 0:
        changer = random.Random(index * 104_729 + generation)
        # Only the columns a CDP recomputes between runs change; identity fields stay put.
        for column in (10, 11, 12, 13, 14, 17, 19):
            if changer.random() < change_share * len(CUSTOMER_COLUMNS) / 7:
                row[column] = _changed(row[column], column, changer)
    return row


def _changed(value: str, column: int, rng: random.Random) -> str:
    if column == 10:
        return TIERS[(TIERS.index(value) + 1) % len(TIERS)]
    if column in (11, 13):
        return str(int(value) + 1 + rng.randrange(50))
    if column == 12:
        return f"{float(value) + 10 + rng.uniform(0, 90):.2f}"
    if column == 14:
        return f"2026-11-{1 + rng.randrange(22):02d}T{rng.randrange(24):02d}:45:00Z"
    if column == 17:
        return CHANNELS[(CHANNELS.index(value) + 1) % len(CHANNELS)]
    return f"{min(0.9999, float(value) + 0.05):.4f}"


def customer_rows(count: int, generation: int = 0, change_share: float = 0.0) -> Iterator[list[str]]:
    for index in range(count):
        yield customer_row(index, generation, change_share)


def write_customers_csv(path: Path, count: int, generation: int = 0, change_share: float = 0.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CUSTOMER_COLUMNS)
        writer.writerows(customer_rows(count, generation, change_share))
    return path


CUSTOMER_PARQUET_MAPPING_YAML = CUSTOMER_MAPPING_YAML.replace(
    'source: {format: csv, delimiter: ",", encoding: utf-8}', "source: {format: parquet}"
)
# The customers' typed columns in a Parquet file; every other column is a string.
_CUSTOMER_PARQUET_CONVERSIONS: dict[str, Any] = {
    "dob": date.fromisoformat,
    "loyalty_points": int,
    "lifetime_value": Decimal,
    "orders_count": int,
    "last_order_at": datetime.fromisoformat,
    "newsletter": lambda text: text == "true",
    "churn_score": float,
}


def write_customers_parquet(
    path: Path,
    count: int,
    generation: int = 0,
    change_share: float = 0.0,
    *,
    row_group_rows: int = 100_000,
    compression: str = "snappy",
) -> Path:
    """The customers of write_customers_csv as a Parquet file with typed columns: the same values
    (dates as dates, counts as int64, lifetime value as decimal(38,10), the last order as a
    timestamp in Europe/Berlin, booleans, floats), so both files end as the same Braze profiles."""
    import pyarrow as pa  # noqa: PLC0415  (only Parquet demo and bench files need pyarrow)
    import pyarrow.parquet as pq  # noqa: PLC0415

    types = {
        "dob": pa.date32(),
        "loyalty_points": pa.int64(),
        "lifetime_value": pa.decimal128(38, 10),
        "orders_count": pa.int64(),
        "last_order_at": pa.timestamp("us", tz="Europe/Berlin"),
        "newsletter": pa.bool_(),
        "churn_score": pa.float64(),
    }
    schema = pa.schema([(name, types.get(name, pa.string())) for name in CUSTOMER_COLUMNS])
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = customer_rows(count, generation, change_share)
    with pq.ParquetWriter(path, schema, compression=compression) as writer:
        while batch := [row for _, row in zip(range(row_group_rows), rows, strict=False)]:
            columns = [
                [_CUSTOMER_PARQUET_CONVERSIONS.get(name, str)(row[number]) for row in batch]
                for number, name in enumerate(CUSTOMER_COLUMNS)
            ]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema), row_group_size=row_group_rows)
    return path


BLUECONIC_COLUMNS = (
    "profile_id",
    "crm_customer_id",
    "email",
    "firstname",
    "lastname",
    "gender",
    "city",
    "country",
    "language",
    "first_visit_date",
    "acquisition_channel",
    "loyalty_points_earned",
    "interests",
    "viewed_categories",
    "loyalty_tier",
    "churn_risk_score",
    "visits",
    "last_visit_date",
    "preferred_store",
    "consent_marketing",
)
INTERESTS = ("running", "yoga", "cycling", "gaming", "music", "travel", "cooking")
CATEGORIES = ("shoes", "sportswear", "bikes", "headphones", "consoles", "books")
COUNTRY_NAMES = {"DE": "Germany", "FR": "France", "US": "United States", "GB": "United Kingdom"}


def blueconic_delta_row(index: int, day: int) -> list[str]:
    """A BlueConic delta row: every attribute of a changed profile, as BlueConic sends it.

    On day 2 about a tenth of the profiles earned points, moved tier or visited again; the rest of
    each row repeats what day 1 said (BlueConic sends whole profiles), which dedupe makes free.
    """
    rng = random.Random(index * 6151 + 3)
    city, country = CITIES[rng.randrange(4)]
    first = FIRST_NAMES[rng.randrange(len(FIRST_NAMES))]
    interests = sorted(rng.sample(INTERESTS, 1 + rng.randrange(3)))
    visits = 1 + rng.randrange(200)
    tier = TIERS[rng.randrange(len(TIERS))]
    earned = str(rng.randrange(300))
    last_visit = f"2026-11-{1 + rng.randrange(20):02d}T{rng.randrange(24):02d}:10:00Z"
    if day > 1:
        changer = random.Random(index * 15_485_863 + day)
        changed = changer.random() < 0.1
        earned = str(10 + changer.randrange(90)) if changed else ""
        if changed:
            visits += 1 + changer.randrange(3)
            last_visit = f"2026-11-22T{changer.randrange(24):02d}:30:00Z"
            if changer.random() < 0.5:
                tier = TIERS[(TIERS.index(tier) + 1) % len(TIERS)]
    return [
        f"{index:08x}-5d1e-4b8a-9c0f-{index * 7919 % 10**12:012d}",
        f"CRM-{100_000 + index}",
        f"{first.lower()}.bc{index}@example.com".replace("é", "e"),
        first,
        LAST_NAMES[rng.randrange(len(LAST_NAMES))],
        ("female", "male", "other")[rng.randrange(3)],
        city,
        COUNTRY_NAMES.get(country, country),
        ("de", "fr", "en", "en")[CITIES.index((city, country))],
        f"202{rng.randrange(6)}-0{1 + rng.randrange(9)}-1{rng.randrange(10)}T08:31:05Z",
        ("newsletter", "paid_search", "referral", "social")[rng.randrange(4)],
        earned,
        "|".join(interests),
        "[" + ",".join(f'"{c}"' for c in sorted(rng.sample(CATEGORIES, 1 + rng.randrange(2)))) + "]",
        tier,
        f"{rng.random():.2f}",
        str(visits),
        last_visit,
        ("Berlin Mitte", "Lyon Part-Dieu", "Austin Domain", "Leeds Trinity")[rng.randrange(4)],
        ("true", "false")[rng.randrange(2)],
    ]


def write_blueconic_delta(path: Path, count: int, day: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(BLUECONIC_COLUMNS)
        writer.writerows(blueconic_delta_row(index, day) for index in range(count))
    return path


LYTICS_AUDIENCES = ("lytics_all", "lytics_known", "high_value", "cart_abandoners", "lytics_new")
# The demo's Lytics feed is small: it shows the snapshot diff, not throughput.
LYTICS_DEMO_USERS = 300


def lytics_audiences(index: int, day: int) -> list[str]:
    """A customer's Lytics audiences on ``day``: everyone is in lytics_all, and about one customer in
    seven enters or leaves one of the other audiences from one day to the next."""
    audiences = ["lytics_all"]
    for number, audience in enumerate(LYTICS_AUDIENCES[1:], 2):
        member = (index % number) == 0
        if day > 1 and index % 7 == number:
            member = not member
        if member:
            audiences.append(audience)
    return audiences


def write_lytics_snapshot(path: Path, count: int, day: int = 1) -> Path:
    """A Lytics audience membership snapshot of the first customers (external_id, audiences)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["external_id", "audiences"])
        for index in range(min(count, LYTICS_DEMO_USERS)):
            writer.writerow([f"C{index:08d}", "|".join(lytics_audiences(index, day))])
    return path
