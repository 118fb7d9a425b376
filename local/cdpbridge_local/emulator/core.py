"""The emulator's whole state in one object: config, profiles, workspace, limits, faults and stats.

Only the event loop thread touches it; tests and tools read it through the admin API.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from cdpbridge_local.emulator.cohorts import CohortRegistry
from cdpbridge_local.emulator.config import EmulatorConfig
from cdpbridge_local.emulator.exports import ExportManager
from cdpbridge_local.emulator.faults import FaultInjector
from cdpbridge_local.emulator.ratelimit import RateLimiter
from cdpbridge_local.emulator.state import UserStore
from cdpbridge_local.emulator.validation import TrackRules
from cdpbridge_local.emulator.workspace import Workspace


class CallerStage(StrEnum):
    """Where a request is when the caller hook is asked whether its caller is still there."""

    RECEIVED = "received"  # passed the fault gate, not applied yet
    APPLIED = "applied"  # applied, the answer not written yet


class CallerHook(Protocol):
    """A test harness's say over a request's caller (e.g. killing the process that sent it).

    Returns True when the caller is gone: before applying, the request is then not applied; after
    applying, it counts as applied but unanswered. Runs on the emulator's event loop thread.
    """

    def __call__(self, stage: CallerStage, endpoint: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class UnansweredRequest:
    """A request the emulator applied whose answer never reached its caller."""

    endpoint: str
    cause: str  # a fault kind, "caller_gone" or "client_gone"
    body: Any  # the request's JSON body (what was applied)

    def to_view(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "cause": self.cause, "body": self.body}


class RequestStats:
    def __init__(self) -> None:
        self.requests: dict[str, dict[str, int]] = {}
        self.faults: Counter[str] = Counter()
        self.rate_limited: Counter[str] = Counter()
        self.object_errors: Counter[str] = Counter()
        self.error_types: Counter[str] = Counter()
        # Applied but unanswered: the requests a client may send again and Braze apply twice.
        self.unanswered: list[UnansweredRequest] = []

    def record(self, endpoint: str, status: str) -> None:
        by_status = self.requests.get(endpoint)
        if by_status is None:
            by_status = self.requests[endpoint] = {}
        by_status[status] = by_status.get(status, 0) + 1


def rules_of(config: EmulatorConfig) -> TrackRules:
    return TrackRules(
        array_max_length=config.array_max_length,
        event_properties_max_bytes=config.event_properties_max_bytes,
        purchase_properties_max_bytes=config.purchase_properties_max_bytes,
        nested_object_max_bytes=config.nested_object_max_bytes,
        object_array_max_bytes=config.object_array_max_bytes,
    )


class Emulator:
    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.store = UserStore(
            array_max_length=self.config.array_max_length,
            object_array_max_bytes=self.config.object_array_max_bytes,
        )
        self.workspace = Workspace()
        self.cohorts = CohortRegistry()
        self.exports = ExportManager()
        self.exports.in_progress_message = self.config.export_in_progress_message
        self.limiter = RateLimiter(self.config.rate_limits)
        self.faults = FaultInjector(self.config.faults, self.config.seed)
        self.stats = RequestStats()
        # The message dispatch log (campaign and Canvas sends and schedules), oldest first.
        self.dispatches: list[dict[str, Any]] = []
        # Custom send identifiers created, per (campaign_id, UTC day).
        self.send_ids: dict[tuple[str, str], list[str]] = {}
        self.rules = rules_of(self.config)
        # Set by a test harness in the same process; survives resets.
        self.caller_hook: CallerHook | None = None

    def configure(self, config: EmulatorConfig) -> None:
        """Adopt a new config; a changed seed restarts the fault sequence from it."""
        previous = self.config
        self.config = config
        self.rules = rules_of(config)
        self.store.array_max_length = config.array_max_length
        self.store.object_array_max_bytes = config.object_array_max_bytes
        self.exports.in_progress_message = config.export_in_progress_message
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
        self.send_ids = {}

    def stats_view(self) -> dict[str, Any]:
        totals = self.store.totals
        return {
            "requests": {endpoint: dict(statuses) for endpoint, statuses in self.stats.requests.items()},
            "data_points": totals.data_points,
            # Newer contracts bill monthly active users: the count is kept, the points are not billed.
            "data_points_billed": totals.data_points if self.config.bills_data_points else 0,
            "nested_updates_dropped": self.store.nested_updates_dropped,
            "object_array_updates_dropped": self.store.object_array_updates_dropped,
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
            "applied_unanswered": dict(Counter(request.cause for request in self.stats.unanswered)),
            "rate_limited": dict(self.stats.rate_limited),
            "dispatches": len(self.dispatches),
            "exports": len(self.exports.jobs),
        }
