"""Run counters and the data point estimate that goes into every report."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cdpbridge.updates import AttributeWrite, WriteMode

# Writing these costs no data point (Braze bills identifiers and subscription state for free).
FREE_ATTRIBUTES = frozenset(
    {
        "external_id",
        "braze_id",
        "user_alias",
        "email_subscribe",
        "push_subscribe",
        "subscription_groups",
    }
)


def nested_key_count(value: dict[str, Any]) -> int:
    """Every key of a nested object is billed, at every depth."""
    total = 0
    for key, inner in value.items():
        if key == "_merge_objects":
            continue
        total += 1
        if isinstance(inner, dict) and "$time" not in inner:
            total += nested_key_count(inner)
    return total


def attribute_data_points(name: str, write: AttributeWrite) -> int:
    """Data points Braze bills for writing one attribute the way ``write`` asks."""
    if name in FREE_ATTRIBUTES:
        return 0
    if write.mode in (WriteMode.ADD, WriteMode.REMOVE):
        return len(write.value) if isinstance(write.value, list) else 1
    if write.mode is WriteMode.MEMBERS:
        # Planned into {"add": [...], "remove": [...]}: each member added or removed is billed.
        return sum(len(write.value.get(key, ())) for key in ("add", "remove"))
    if isinstance(write.value, dict):
        return max(1, nested_key_count(write.value))
    return 1


def event_data_points(event: dict[str, Any]) -> int:
    """One for the event or purchase itself plus one per property."""
    properties = event.get("properties")
    return 1 + (len(properties) if isinstance(properties, dict) else 0)


_REASON_COUNTERS = frozenset({"rejects_by_reason", "skipped_by_reason"})


@dataclass(slots=True)
class RunCounters:
    """Everything a run report counts; parts of a fanned-out run are merged with ``merge``."""

    rows_read: int = 0
    rows_rejected: int = 0
    users: int = 0  # rows that mapped to a user update
    # Rows skipped unmapped: their record is the one Braze acknowledged last for the user.
    records_unchanged: int = 0
    users_written: int = 0  # attribute objects sent (users with at least one changed attribute)
    attributes_sent: int = 0
    attributes_unchanged: int = 0
    attributes_set_if_empty_skipped: int = 0
    events_sent: int = 0
    purchases_sent: int = 0
    events_already_sent: int = 0
    data_points_sent: int = 0
    data_points_saved: int = 0
    requests: int = 0
    objects_sent: int = 0
    request_fill_units: int = 0  # objects counted against the cap (see engine._request_fill)
    request_slots: int = 0
    retries: int = 0
    rate_limited: int = 0
    objects_rejected_by_braze: int = 0
    # Attribute objects Braze refused because the user is not in Braze (update-only: not created).
    users_missing_in_braze: int = 0
    objects_to_retry_file: int = 0
    retry_entries_replayed: int = 0
    lookup_requests: int = 0
    lookup_users: int = 0
    lookup_seconds: float = 0.0
    # What the run asked of AWS (priced by cdpbridge.sync.aws_cost): invocations and their seconds,
    # field-state users read and written (with the write units their items take), send-ledger and
    # checkpoint requests, S3 requests by price class.
    invocations: int = 0
    invocation_seconds: float = 0.0
    state_users_read: int = 0
    state_users_written: int = 0
    state_write_units: int = 0
    ledger_reads: int = 0
    ledger_writes: int = 0
    checkpoint_reads: int = 0
    checkpoint_writes: int = 0
    s3_get_requests: int = 0
    s3_put_requests: int = 0
    # The users.track cap the run was lowered to after "Max Input Length Exceeded"; 0: never lowered.
    track_cap_lowered_to: int = 0
    # The most requests in flight the engine's window reached (parts: the largest of them).
    in_flight_peak: int = 0
    # Snapshot feeds: (user, member) pairs the previous snapshots held and this one left out.
    snapshot_members_absent: int = 0
    # Writes older (by the source's own time) than the value already applied for the attribute.
    attributes_superseded: int = 0
    rejects_by_reason: Counter[str] = field(default_factory=Counter)
    # Records that asked for nothing on purpose (UserUpdate.skipped), by reason.
    skipped_by_reason: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            result[name] = dict(value) if isinstance(value, Counter) else value
        result["fill_ratio"] = self.fill_ratio
        return result

    @property
    def fill_ratio(self) -> float:
        """Cap units used over the cap units the requests had (1.0 = every request full)."""
        return round(self.request_fill_units / self.request_slots, 4) if self.request_slots else 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunCounters:
        counters = cls()
        for name in cls.__slots__:
            if name not in data:
                continue
            if name in _REASON_COUNTERS:
                setattr(counters, name, Counter({str(k): int(v) for k, v in data[name].items()}))
            else:
                setattr(counters, name, type(getattr(counters, name))(data[name]))
        return counters

    def merge(self, other: RunCounters) -> None:
        for name in self.__slots__:
            if name in _REASON_COUNTERS:
                getattr(self, name).update(getattr(other, name))
            elif name == "in_flight_peak":
                self.in_flight_peak = max(self.in_flight_peak, other.in_flight_peak)
            elif name == "track_cap_lowered_to":
                lowered = [
                    value for value in (self.track_cap_lowered_to, other.track_cap_lowered_to) if value
                ]
                self.track_cap_lowered_to = min(lowered, default=0)
            else:
                setattr(self, name, getattr(self, name) + getattr(other, name))

    def reject(self, reason: str, count: int = 1) -> None:
        self.rejects_by_reason[reason] += count
