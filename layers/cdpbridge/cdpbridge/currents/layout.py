"""Braze Currents' S3 layout: what a key says about the file it names.

Braze writes ``<prefix>/dataexport.<cluster>.S3.integration.<id>/event_type=<type>/
date=<YYYY-MM-DD-HH>/<schema id>/<zone>/<name>.avro``; the prefix is whatever the S3 export
settings name and may itself hold slashes (or be empty).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

_LAYOUT: Final = re.compile(
    r"(?:^|/)dataexport\.(?P<cluster>[^/]+?)\.S3\.integration\.(?P<integration>[^/]+)"
    r"/event_type=(?P<event_type>[^/]+)"
    r"/date=(?P<date>\d{4}-\d{2}-\d{2}-\d{2})"
    r"/(?P<schema_id>[^/]+)/(?P<zone>[^/]+)/(?P<name>[^/]+\.avro)$"
)


class CurrentsLayoutError(ValueError):
    """A key (or local path) that is not in Braze's Currents layout; the message names it."""


@dataclass(frozen=True, slots=True)
class CurrentsKey:
    """The parts of one Currents file's key."""

    key: str
    prefix: str
    cluster: str
    integration_id: str
    event_type: str
    hour: datetime
    schema_id: str
    zone: str
    name: str

    @property
    def day(self) -> str:
        """The UTC day the file's hour belongs to, ``YYYY-MM-DD``."""
        return self.hour.strftime("%Y-%m-%d")

    @property
    def stem(self) -> str:
        """The file name without ``.avro``."""
        return self.name.removesuffix(".avro")


def parse_currents_key(key: str) -> CurrentsKey:
    """The parts of ``key`` (an S3 key already URL-decoded, or a local path in the same layout)."""
    normalised = key.replace("\\", "/")
    match = _LAYOUT.search(normalised)
    if match is None:
        raise CurrentsLayoutError(
            f"{key}: not in Braze's Currents layout (<prefix>/dataexport.<cluster>.S3.integration.<id>/"
            "event_type=<type>/date=<YYYY-MM-DD-HH>/<schema id>/<zone>/<name>.avro)"
        )
    try:
        hour = datetime.strptime(match["date"], "%Y-%m-%d-%H").replace(tzinfo=UTC)
    except ValueError as exc:
        raise CurrentsLayoutError(f"{key}: date={match['date']} is not a valid UTC hour: {exc}") from exc
    return CurrentsKey(
        key=key,
        prefix=normalised[: match.start()].rstrip("/"),
        cluster=match["cluster"],
        integration_id=match["integration"],
        event_type=match["event_type"],
        hour=hour,
        schema_id=match["schema_id"],
        zone=match["zone"],
        name=match["name"],
    )


def currents_key(
    *,
    prefix: str,
    event_type: str,
    hour: datetime,
    name: str,
    cluster: str = "prod-01",
    integration_id: str = "5e8f0e0ba0b5c3000f1d2c3a",
    schema_id: str = "1",
    zone: str = "0",
) -> str:
    """A key in Braze's layout (the local tooling and tests land files under such keys)."""
    parts = [
        f"dataexport.{cluster}.S3.integration.{integration_id}",
        f"event_type={event_type}",
        f"date={hour:%Y-%m-%d-%H}",
        schema_id,
        zone,
        name,
    ]
    return "/".join([prefix.rstrip("/"), *parts] if prefix else parts)
