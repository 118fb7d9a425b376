"""Currents files for tests, benchmarks and demos, built from the schemas of Braze's sample files.

Each sample file carries its writer schema and one record; larger files repeat that record with a
fresh event id, time, user and time zone per event, written with the same schema (or the schema
with a new optional field, or under a new event type), so they are what Braze would write.
"""

from __future__ import annotations

import copy
import io
import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro

from cdpbridge.currents.layout import currents_key

SCHEMA_PREFIX = "dataexport.S3.inner."
TIME_ZONES = ("America/New_York", "Europe/Berlin", "Asia/Tokyo", "Australia/Sydney", "America/Los_Angeles")
DEFAULT_HOUR = datetime(2026, 12, 7, 8, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Sample:
    """One of Braze's sample files: its event type, writer schema and record."""

    event_type: str
    schema: dict[str, Any]
    record: dict[str, Any]


def load_sample(path: Path) -> Sample:
    with path.open("rb") as handle:
        reader = fastavro.reader(handle)
        schema: dict[str, Any] = reader.writer_schema  # type: ignore[assignment]
        records = list(reader)
    name = str(schema["name"])
    return Sample(name.removeprefix(SCHEMA_PREFIX), schema, dict(records[0]))  # type: ignore[arg-type]


def load_samples(directory: Path) -> list[Sample]:
    return [load_sample(path) for path in sorted(directory.glob("*.avro"))]


def with_optional_field(schema: dict[str, Any], name: str, doc: str = "added later") -> dict[str, Any]:
    """The schema with one more optional (nullable, default null) string field at the end."""
    changed = copy.deepcopy(schema)
    changed["fields"].append({"name": name, "type": ["null", "string"], "default": None, "doc": doc})
    return changed


def renamed(schema: dict[str, Any], event_type: str) -> dict[str, Any]:
    """The schema under another event type (its record name), as a new Currents event would come."""
    changed = copy.deepcopy(schema)
    changed["name"] = SCHEMA_PREFIX + event_type
    changed.pop("namespace", None)
    return changed


def synthetic_events(
    template: dict[str, Any], count: int, *, seed: int = 7, users: int = 1_000, start: int = 1_796_630_400
) -> Iterator[dict[str, Any]]:
    """``count`` events shaped like ``template``: a unique id each, times over a week, ``users`` users."""
    rng = random.Random(seed)
    has_zone = "timezone" in template
    for index in range(count):
        event = dict(template)
        event["id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        event["time"] = start + rng.randrange(7 * 24 * 3600)
        user = rng.randrange(users)
        if "external_user_id" in template:
            event["external_user_id"] = f"user-{user:07d}"
        if "user_id" in template:
            event["user_id"] = f"{user:024x}"
        if has_zone:
            event["timezone"] = TIME_ZONES[user % len(TIME_ZONES)]
        if "machine_open" in template:
            event["machine_open"] = "true" if index % 4 == 0 else "false"
        yield event


def avro_bytes(schema: dict[str, Any], records: Iterable[dict[str, Any]], *, codec: str = "deflate") -> bytes:
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(copy.deepcopy(schema)), records, codec=codec)
    return buffer.getvalue()


def land(
    root: Path,
    event_type: str,
    data: bytes,
    *,
    name: str = "part-00000.avro",
    prefix: str = "currents",
    hour: datetime = DEFAULT_HOUR,
) -> Path:
    """Writes ``data`` under ``root`` at the key Braze would give it; returns the path."""
    path = root / currents_key(prefix=prefix, event_type=event_type, hour=hour, name=name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
