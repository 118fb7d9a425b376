"""Deterministic, realistic demo and benchmark files (customers with standard and custom fields)."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from pathlib import Path

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

CUSTOMER_MAPPING_YAML = """\
version: 1
integration: generic
source: {format: csv, delimiter: ",", encoding: utf-8}
identifier: {column: customer_id, as: external_id}
create_missing: true
fields:
  - {column: first_name, attribute: first_name, type: string, strategy: set}
  - {column: last_name, attribute: last_name, type: string, strategy: set}
  - {column: email, attribute: email, type: string, strategy: set}
  - {column: phone, attribute: phone, type: string, strategy: set}
  - {column: dob, attribute: dob, type: date, strategy: set}
  - {column: country, attribute: country, type: string, strategy: set}
  - {column: home_city, attribute: home_city, type: string, strategy: set}
  - {column: language, attribute: language, type: string, strategy: set}
  - {column: gender, attribute: gender, type: string, strategy: set}
  - {column: loyalty_tier, attribute: loyalty_tier, type: string, strategy: set}
  - {column: loyalty_points, attribute: loyalty_points, type: integer, strategy: set}
  - {column: lifetime_value, attribute: lifetime_value, type: decimal, strategy: set}
  - {column: orders_count, attribute: orders_count, type: integer, strategy: set}
  - {column: last_order_at, attribute: last_order_at, type: datetime, strategy: set}
  - {column: zip_code, attribute: zip_code, type: string, strategy: set}
  - {column: newsletter, attribute: newsletter, type: boolean, strategy: set}
  - {column: preferred_channel, attribute: preferred_channel, type: string, strategy: set}
  - {column: favourite_category, attribute: favourite_category, type: string, strategy: set}
  - {column: churn_score, attribute: churn_score, type: float, strategy: set}
"""


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
