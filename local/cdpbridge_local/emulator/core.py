"""The emulator's whole state in one object: config, profiles, workspace, limits, faults and stats.

Only the event loop thread touches it; tests and tools read it through the admin API.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from cdpbridge_local.emulator.cohorts import CohortRegistry
from cdpbridge_local.emulator.config import EmulatorConfig
from cdpbridge_local.emulator.exports import ExportManager
from cdpbridge_local.emulator.faults import FaultInjector
from cdpbridge_local.emulator.ratelimit import RateLimiter
from cdpbridge_local.emulator.state import UserStore
from cdpbridge_local.emulator.validation import TrackRules
from cdpbridge_local.emulator.workspace import Workspace


class RequestStats:
    def __init__(self) -> None:
        self.requests: dict[str, dict[str, int]] = {}
        self.faults: Counter[str] = Counter()
        self.rate_limited: Counter[str] = Counter()
        self.object_errors: Counter[str] = Counter()
        self.error_types: Counter[str] = Counter()

    def record(self, endpoint: str, status: str) -> None:
        by_status = self.requests.get(endpoint)
        if by_status is None:
            by_status = self.requests[endpoint] = {}
        by_status[status] = by_status.get(status, 0) + 1


def rules_of(config: EmulatorConfig) -> TrackRules:
    return TrackRules(
        array_max_length=config.array_max_length,
        event_properties_max_bytes=config.event_properties_max_bytes,
        nested_object_max_bytes=config.nested_object_max_bytes,
    )


class Emulator:
    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.store = UserStore(array_max_length=self.config.array_max_length)
        self.workspace = Workspace()
        self.cohorts = CohortRegistry()
        self.exports = ExportManager()
        self.limiter = RateLimiter(self.config.rate_limits)
        self.faults = FaultInjector(self.config.faults, self.config.seed)
        self.stats = RequestStats()
        self.dispatches: list[dict[str, Any]] = []
        self.rules = rules_of(self.config)

    def configure(self, config: EmulatorConfig) -> None:
        """Adopt a new config; a changed seed restarts the fault sequence from it."""
        previous = self.config
        self.config = config
        self.rules = rules_of(config)
        self.store.array_max_length = config.array_max_length
        self.limiter.configure(config.rate_limits)
        self.faults.settings = config.faults
        if config.seed != previous.seed:
            self.faults.reseed(config.seed)

    def reset(self, include_config: bool) -> None:
        """Clear profiles, stats, dispatches, exports, cohorts and rate-limit windows.

        With ``include_config`` the config, API keys, segments, campaigns and partners go back to
        their defaults too.
        """
        if include_config:
            self.workspace.clear()
            self.cohorts = CohortRegistry()
            self.configure(EmulatorConfig())
        self.store.clear()
        self.cohorts.clear_cohorts()
        self.exports.clear()
        self.limiter.reset()
        self.faults.reseed(self.config.seed)
        self.stats = RequestStats()
        self.dispatches = []

    def stats_view(self) -> dict[str, Any]:
        totals = self.store.totals
        return {
            "requests": {endpoint: dict(statuses) for endpoint, statuses in self.stats.requests.items()},
            "data_points": totals.data_points,
            "unchanged_writes": totals.unchanged_writes,
            "objects": {
                "attributes": totals.attributes,
                "events": totals.events,
                "purchases": totals.purchases,
            },
            "object_errors": dict(self.stats.object_errors),
            "error_types": dict(self.stats.error_types),
            "users": len(self.store),
            "users_created": totals.users_created,
            "faults": dict(self.stats.faults),
            "rate_limited": dict(self.stats.rate_limited),
            "dispatches": len(self.dispatches),
            "exports": len(self.exports.jobs),
        }
