"""Planning a program from its stores: the segment's users, the opt-in history, the engagement
profiles, into the schedules. The CLI and the planner function run exactly this.

The engagement profile store (Currents and the tracking pixel) counts hour of week from Monday
00:00 local, as the model does (``observations.hour_of_week``); ``engagement_history`` is the one
place that turns its observations into the model's, and says which kinds the model reads.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson
import urllib3

from cdpbridge.braze import BrazeClient
from cdpbridge.engagement import EngagementKind as StoredKind
from cdpbridge.engagement import EngagementStore
from cdpbridge.integrations.notify.observations import EngagementKind, Observation
from cdpbridge.integrations.notify.optin import OptinHistory
from cdpbridge.integrations.notify.planner import (
    SEGMENT_EXPORT_FIELDS,
    Plan,
    PlanUser,
    join_history,
    plan,
    plan_user_from_export,
)
from cdpbridge.integrations.notify.program import ProgramConfig
from cdpbridge.integrations.notify.schedules import PlanWrite, ScheduledSend, ScheduleStore

# The stored kinds the model reads. SMS, in-app message and Content Card clicks are kept in the
# profiles for other uses but say little about when a person reads an e-mail or a push.
MODEL_KIND_OF: Final[Mapping[StoredKind, EngagementKind]] = {
    StoredKind.EMAIL_OPEN: EngagementKind.EMAIL_OPEN,
    StoredKind.EMAIL_CLICK: EngagementKind.EMAIL_CLICK,
    StoredKind.PUSH_OPEN: EngagementKind.PUSH_OPEN,
    StoredKind.PURCHASE: EngagementKind.PURCHASE,
}
_PROFILE_READ_BATCH: Final = 1000


def engagement_history(store: EngagementStore, external_ids: Collection[str]) -> dict[str, list[Observation]]:
    """The users' engagement profiles as the model's observations, keyed by external_id.

    Both sides count hour of week from Monday 00:00 in the user's own zone (an event stored without
    a zone is placed in the user's latest known zone when its profile is read), so hours carry over
    unchanged.
    """
    history: dict[str, list[Observation]] = {}
    ids = list(external_ids)
    for start in range(0, len(ids), _PROFILE_READ_BATCH):
        for user_id, profile in store.profiles(ids[start : start + _PROFILE_READ_BATCH]).items():
            observations = [
                Observation(user_id, MODEL_KIND_OF[stored.kind], stored.occurred_at, stored.hour_of_week)
                for stored in profile.observations
                if stored.kind in MODEL_KIND_OF
            ]
            if observations:
                history[user_id] = observations
    return history


def plan_program(
    program: ProgramConfig,
    users: Iterable[PlanUser],
    optin: OptinHistory | None,
    engagement: EngagementStore | None,
    now: datetime,
) -> Plan:
    """Joins the users to both histories and picks each one's slot."""
    user_list = list(users)
    history = engagement_history(engagement, [user.external_id for user in user_list]) if engagement else None
    return plan(program, join_history(program, user_list, optin, history), now)


def schedule_plan(store: ScheduleStore, program: ProgramConfig, planned: Plan) -> PlanWrite:
    """Writes the plan's rows to the schedules, idempotently per (program, user, date)."""
    rows = [
        ScheduledSend(
            program.program, program.send_date, row.external_id, row.send_at, row.local_time, row.basis.value
        )
        for row in planned.rows
    ]
    return store.write_plan(rows)


# ------------------------------------------------------------------ a segment export by URL (laptop)


class SegmentDownloadError(RuntimeError):
    """The export's archive never became available, or is not a zip of JSON lines."""


@dataclass(slots=True)
class UrlExportCounters:
    users: int = 0
    without_external_id: int = 0
    unreadable_lines: int = 0


def fetch_export_archive(
    url: str,
    *,
    max_wait_s: float = 3600.0,
    poll_s: float = 2.0,
    http: urllib3.PoolManager | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bytes:
    """The zip Braze writes at ``url`` when the workspace has no S3 export credentials.

    Braze answers the URL before the archive exists (an S3 403/404): poll until it is there.
    """
    pool = http or urllib3.PoolManager()
    deadline = clock() + max_wait_s
    delay = poll_s
    while True:
        response = pool.request("GET", url, timeout=urllib3.Timeout(connect=10.0, read=120.0), retries=False)
        if response.status == 200:
            return bytes(response.data)
        if response.status not in (403, 404):
            raise SegmentDownloadError(f"segment export archive: HTTP {response.status}")
        if clock() + delay > deadline:
            raise SegmentDownloadError(f"segment export archive not ready after {max_wait_s:.0f} s")
        sleep(delay)
        delay = min(delay * 1.5, 60.0)


def users_of_archive(archive: bytes, counters: UrlExportCounters) -> Iterator[PlanUser]:
    """The users of an export zip (JSON lines in every member); e-mails hashed on the way."""
    try:
        zipped = zipfile.ZipFile(io.BytesIO(archive))
    except zipfile.BadZipFile as error:
        raise SegmentDownloadError(f"segment export archive is not a zip: {error}") from error
    with zipped:
        for name in zipped.namelist():
            with zipped.open(name) as member:
                for line in io.TextIOWrapper(member, encoding="utf-8"):
                    if not line.strip():
                        continue
                    try:
                        record: Any = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        counters.unreadable_lines += 1
                        continue
                    user = plan_user_from_export(record) if isinstance(record, dict) else None
                    if user is None:
                        counters.without_external_id += 1
                        continue
                    counters.users += 1
                    yield user


def export_segment_users(
    client: BrazeClient,
    segment_id: str,
    counters: UrlExportCounters,
    *,
    max_wait_s: float = 3600.0,
    poll_s: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[PlanUser]:
    """Exports the segment as a zip at a URL (no bucket needed) and reads its users."""
    started = client.export_segment(segment_id, SEGMENT_EXPORT_FIELDS, output_format="zip")
    if not started.url:
        raise SegmentDownloadError(
            "Braze wrote the export into the workspace's S3 bucket (it has S3 export credentials): "
            "run the planner function, which reads the bucket"
        )
    archive = fetch_export_archive(started.url, max_wait_s=max_wait_s, poll_s=poll_s, sleep=sleep)
    return list(users_of_archive(archive, counters))


__all__ = [
    "MODEL_KIND_OF",
    "SegmentDownloadError",
    "UrlExportCounters",
    "engagement_history",
    "export_segment_users",
    "fetch_export_archive",
    "plan_program",
    "schedule_plan",
    "users_of_archive",
]
