"""Counters of what the client did, per endpoint family; safe to update from many threads."""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class FamilyStats:
    """Counts for one endpoint family. ``requests`` counts HTTP attempts, retries included."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0  # 429 answers
    server_errors: int = 0  # 5xx answers
    connection_errors: int = 0  # refused, reset or dropped connections
    timeouts: int = 0
    permanent_errors: int = 0  # 4xx answers other than 429
    key_refreshes: int = 0  # API key re-read after a 401
    exhausted: int = 0  # calls that ran out of attempts or time
    cap_lowered: int = 0  # users.track answers "Max Input Length Exceeded" that halved the cap

    def __add__(self, other: FamilyStats) -> FamilyStats:
        return FamilyStats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


STAT_NAMES: tuple[str, ...] = tuple(f.name for f in fields(FamilyStats))
_INDEX = {name: index for index, name in enumerate(STAT_NAMES)}


class ClientStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, list[int]] = {}

    def add(self, family: str, name: str, amount: int = 1) -> None:
        index = _INDEX[name]
        with self._lock:
            counts = self._counts.get(family)
            if counts is None:
                counts = self._counts[family] = [0] * len(STAT_NAMES)
            counts[index] += amount

    def snapshot(self) -> dict[str, FamilyStats]:
        with self._lock:
            return {family: FamilyStats(*counts) for family, counts in self._counts.items()}

    def total(self) -> FamilyStats:
        result = FamilyStats()
        for family_stats in self.snapshot().values():
            result = result + family_stats
        return result
