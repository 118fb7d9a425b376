"""What a routing run did, per file and in total: the counts the CLI's report and the logs carry."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

ROUTES = ("files", "lytics", "engagement")


@dataclass(slots=True)
class Unreadable:
    """A file or record that could not be routed; ``record`` is None when the whole file failed."""

    file: str
    record: int | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "record": self.record, "reason": self.reason}


@dataclass(slots=True)
class EventTypeCounts:
    read: int = 0
    duplicates: int = 0
    routed: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "duplicates_skipped": self.duplicates,
            "routed": {route: self.routed.get(route, 0) for route in ROUTES},
        }


@dataclass(slots=True)
class RouteReport:
    files: int = 0
    files_already_routed: int = 0
    files_resumed: int = 0
    records_read: int = 0
    duplicates_skipped: int = 0
    machine_opens_excluded: int = 0
    routed: Counter[str] = field(default_factory=Counter)
    event_types: dict[str, EventTypeCounts] = field(default_factory=dict)
    unreadable: list[Unreadable] = field(default_factory=list)
    # Files whose routing stopped on an error (a route refused, state unavailable): routed again,
    # from where they stopped, on the next run or delivery.
    failures: list[Unreadable] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    lytics_requests: int = 0

    def for_type(self, event_type: str) -> EventTypeCounts:
        counts = self.event_types.get(event_type)
        if counts is None:
            counts = self.event_types[event_type] = EventTypeCounts()
        return counts

    def add_routed(self, event_type: str, route: str, count: int) -> None:
        if count:
            self.routed[route] += count
            self.for_type(event_type).routed[route] += count

    @property
    def unreadable_records(self) -> int:
        return sum(1 for item in self.unreadable if item.record is not None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "files_already_routed": self.files_already_routed,
            "files_resumed": self.files_resumed,
            "records_read": self.records_read,
            "routed": {route: self.routed.get(route, 0) for route in ROUTES},
            "duplicates_skipped": self.duplicates_skipped,
            "machine_opens_excluded": self.machine_opens_excluded,
            "unreadable_records": self.unreadable_records,
            "unreadable_files": sum(1 for item in self.unreadable if item.record is None),
            "unreadable": [item.to_dict() for item in self.unreadable],
            "failed_files": [item.to_dict() for item in self.failures],
            "event_types": {name: counts.to_dict() for name, counts in sorted(self.event_types.items())},
            "lytics_requests": self.lytics_requests,
            "outputs": sorted(self.outputs),
        }
