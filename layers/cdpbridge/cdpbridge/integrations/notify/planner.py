"""The planner core: users and their history into one send slot each on the program's send date.

A CLI or a Lambda gives it the segment's users (external_id, e-mail hash, time zone), the opt-in
history and the Currents observations; it fits the model and returns one row per user:
``external_id, send_at`` (UTC, ISO-8601 with Z), ``local_time`` (the user's wall clock, ISO-8601
with offset) and ``basis``. Slots start on UTC multiples of ``slot_minutes`` and are kept when their
local time falls inside the window on the send date in the user's zone, so a DST change that day
moves or removes local hours exactly as the zone database says.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import IO, Any, Final

from cdpbridge.integrations.notify.fitting import fit
from cdpbridge.integrations.notify.hashing import email_sha256
from cdpbridge.integrations.notify.model import (
    NO_GROUP,
    Basis,
    FitOverrides,
    GroupKey,
    SendTimeModel,
    user_counts,
)
from cdpbridge.integrations.notify.observations import EngagementKind, Observation, time_zone
from cdpbridge.integrations.notify.optin import OptinHistory
from cdpbridge.integrations.notify.program import ProgramConfig, SendWindow

PLAN_COLUMNS: Final = ("external_id", "send_at", "local_time", "basis")
# The fields a Braze segment export must carry for planning (fields_to_export).
SEGMENT_EXPORT_FIELDS: Final = ("external_id", "email", "time_zone")


@dataclass(frozen=True, slots=True)
class PlanUser:
    """One user of the program's segment (the e-mail is hashed before it gets here)."""

    external_id: str
    email_sha256: str | None = None
    time_zone: str | None = None


def plan_user_from_export(record: Mapping[str, Any]) -> PlanUser | None:
    """A user of a Braze segment export (one JSON object), the e-mail hashed at once and dropped.

    None for a user without an external_id: the campaign is triggered per external_id.
    """
    external_id = record.get("external_id")
    if not isinstance(external_id, str) or not external_id:
        return None
    email = record.get("email")
    digest = email_sha256(email) if isinstance(email, str) and email.strip() else None
    zone = record.get("time_zone")
    return PlanUser(external_id, digest, zone if isinstance(zone, str) and zone else None)


@dataclass(frozen=True, slots=True)
class PlanRow:
    external_id: str
    send_at: str
    local_time: str
    basis: Basis


@dataclass(frozen=True, slots=True)
class Slot:
    send_at: str
    local_time: str


@dataclass(slots=True)
class PlanReport:
    users: int = 0
    duplicate_users: int = 0
    # Users whose time zone is missing or unknown: planned in the program's default zone.
    default_zone_users: int = 0
    unknown_zones: dict[str, int] = field(default_factory=dict)
    by_basis: dict[str, int] = field(default_factory=dict)
    # Users not planned because the whole window falls in a DST gap of their zone on the send date.
    without_slot: int = 0


@dataclass(frozen=True, slots=True)
class Plan:
    rows: list[PlanRow]
    model: SendTimeModel
    report: PlanReport


def day_slots(zone: tzinfo, day: date, window: SendWindow, slot_minutes: int) -> dict[int, Slot]:
    """For each local hour of ``day`` that holds a slot inside the window: its first slot.

    Slots are UTC instants on multiples of ``slot_minutes``; an hour skipped by a DST change has no
    slot, and an hour that happens twice gives its first occurrence.
    """
    start_utc = datetime.combine(day, time(0), zone).astimezone(UTC)
    end_utc = datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
    step = timedelta(minutes=slot_minutes)
    epoch_minutes = int(start_utc.timestamp()) // 60
    instant = datetime.fromtimestamp(-(-epoch_minutes // slot_minutes) * slot_minutes * 60, UTC)
    slots: dict[int, Slot] = {}
    while instant < end_utc:
        local = instant.astimezone(zone)
        minute = local.hour * 60 + local.minute
        in_window = local.date() == day and window.start_minute <= minute < window.end_minute
        if in_window and local.hour not in slots:
            slots[local.hour] = Slot(
                instant.strftime("%Y-%m-%dT%H:%M:%SZ"), local.isoformat(timespec="seconds")
            )
        instant += step
    return slots


def _kind_weights(program: ProgramConfig) -> dict[EngagementKind, float]:
    weights = dict.fromkeys(EngagementKind, 1.0)
    weights.update({EngagementKind(kind): weight for kind, weight in program.model.kind_weights.items()})
    return weights


def overrides_of(program: ProgramConfig) -> FitOverrides:
    settings = program.model
    return FitOverrides(
        half_life_days=settings.half_life_days,
        user_strength=settings.user_prior_strength,
        sub_segment_strength=settings.sub_segment_prior_strength,
        segment_strength=settings.segment_prior_strength,
        day_strength=settings.day_prior_strength,
        kind_weights=_kind_weights(program),
    )


@dataclass(frozen=True, slots=True)
class PlanInputs:
    """The users to plan, each one's zone, groups and history, keyed by external_id."""

    users: list[PlanUser]
    zones: dict[str, str]
    groups: dict[str, GroupKey]
    histories: dict[str, list[Observation]]
    report: PlanReport


def join_history(
    program: ProgramConfig,
    users: Iterable[PlanUser],
    optin: OptinHistory | None = None,
    engagement: Mapping[str, Sequence[Observation]] | None = None,
) -> PlanInputs:
    """Joins the segment's users to the opt-in history (by e-mail hash) and to the Currents
    engagement (by external_id). A user listed twice is planned once."""
    report = PlanReport()
    planned: list[PlanUser] = []
    zones: dict[str, str] = {}
    groups: dict[str, GroupKey] = {}
    histories: dict[str, list[Observation]] = {}
    for user in users:
        if user.external_id in zones:
            report.duplicate_users += 1
            continue
        zone_name = user.time_zone or program.default_time_zone
        try:
            zone = time_zone(zone_name)
        except ValueError:
            report.unknown_zones[zone_name] = report.unknown_zones.get(zone_name, 0) + 1
            zone_name = program.default_time_zone
            zone = time_zone(zone_name)
            report.default_zone_users += 1
        else:
            if not user.time_zone:
                report.default_zone_users += 1
        zones[user.external_id] = zone_name
        planned.append(user)
        observations: list[Observation] = []
        if optin is not None and user.email_sha256:
            groups[user.external_id] = optin.group_of(user.email_sha256)
            observations.extend(optin.observations(user.email_sha256, user.external_id, zone))
        if engagement is not None:
            observations.extend(engagement.get(user.external_id, ()))
        if observations:
            histories[user.external_id] = observations
    report.users = len(planned)
    return PlanInputs(planned, zones, groups, histories, report)


def plan(
    program: ProgramConfig, inputs: PlanInputs, now: datetime, model: SendTimeModel | None = None
) -> Plan:
    """One row per user: their best slot on the send date. ``now`` measures recency."""
    now_s = int(now.timestamp())
    if model is None:
        model = fit(inputs.histories, inputs.groups, now_s, overrides_of(program))
    hyper = model.hyperparameters
    decay = hyper.decay_per_second()
    weights = hyper.kind_weights
    kernel = hyper.hour_kernel
    day = program.send_date
    weekday = day.weekday()
    zone_slots: dict[str, tuple[dict[int, Slot], tuple[int, ...]]] = {}
    rows: list[PlanRow] = []
    report = replace(inputs.report, by_basis={}, unknown_zones=dict(inputs.report.unknown_zones))
    for user in inputs.users:
        zone_name = inputs.zones[user.external_id]
        slots_and_hours = zone_slots.get(zone_name)
        if slots_and_hours is None:
            slots = day_slots(time_zone(zone_name), day, program.window, program.slot_minutes)
            slots_and_hours = zone_slots[zone_name] = (slots, tuple(sorted(slots)))
        slots, hours = slots_and_hours
        if not hours:
            # The window falls wholly in a DST gap of this zone on this date (a window of under an hour).
            report.without_slot += 1
            continue
        history = inputs.histories.get(user.external_id)
        counts = user_counts(history, now_s, decay, weights, kernel) if history else None
        choice = model.choose(counts, inputs.groups.get(user.external_id, NO_GROUP), weekday, hours)
        slot = slots[choice.hour_of_day]
        rows.append(PlanRow(user.external_id, slot.send_at, slot.local_time, choice.basis))
        report.by_basis[choice.basis.value] = report.by_basis.get(choice.basis.value, 0) + 1
    rows.sort(key=lambda row: (row.send_at, row.external_id))
    return Plan(rows, model, report)


def write_plan(rows: Iterable[PlanRow], output: IO[str]) -> int:
    writer = csv.writer(output, lineterminator="\n")
    writer.writerow(PLAN_COLUMNS)
    count = 0
    for row in rows:
        writer.writerow((row.external_id, row.send_at, row.local_time, row.basis.value))
        count += 1
    return count


def write_plan_csv(rows: Iterable[PlanRow], path: Path) -> int:
    """Writes PLAN.csv (through a temporary file, so a reader never sees half a plan)."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8", newline="") as output:
        count = write_plan(rows, output)
    partial.replace(path)
    return count
