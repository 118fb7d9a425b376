"""The opt-in export: a year of campaign and purchase history per user, keyed by the e-mail hash.

Columns (a header row names them; their order is free, other columns are ignored):
``email_sha256, segment, sub_segment, event_type, occurred_at, campaign_id``.

- ``email_sha256``: 64 hex digits, the SHA-256 of the trimmed, lower-cased e-mail (upper-case hex
  is read as the same digest).
- ``segment``: activity level (for example active or inactive); ``sub_segment``: any finer group
  (for example a purchase level). Either may be empty.
- ``event_type``: send, open, click or purchase.
- ``occurred_at``: ISO-8601 with a UTC offset or Z. An explicit offset (even +00:00) is read as
  the user's local time at that moment; Z says nothing of the local time, so the user's zone is
  used for it when the history is joined to users.
- ``campaign_id``: the campaign (empty for a purchase).

The file is read with the project's streaming readers (CSV, TSV, PSV, JSON lines or Avro, plain or
compressed); a bad row is reported by file, row, column and reason and the good rows go through.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import Any, Final

from cdpbridge.integrations.notify.hashing import is_email_sha256
from cdpbridge.integrations.notify.model import NO_GROUP, GroupKey
from cdpbridge.integrations.notify.observations import (
    EngagementKind,
    Observation,
    fixed_offset_hour_of_week,
    hour_of_week,
)
from cdpbridge.records import RejectedRow, RowIssue, RowPosition
from cdpbridge.sources import SourceError, SourceFormat, SourceSpec, infer_format, open_rows

OPTIN_COLUMNS: Final = ("email_sha256", "segment", "sub_segment", "event_type", "occurred_at", "campaign_id")
# An open this soon after a send to the same user is a mail client fetching the message on delivery
# (Apple Mail Privacy Protection and the like), not a person: the export has no flag for it, so the
# timing tells. Any send counts, not only the same campaign's: a person opening another message
# within the same minute is rare, and keeping one 8-byte time per send keeps a million users small.
MACHINE_OPEN_WINDOW_S: Final = 60
# Events before 1970 or far in the future are typing errors, not history.
_EARLIEST: Final = datetime(1970, 1, 2, tzinfo=UTC)
_LATEST: Final = datetime(2100, 1, 1, tzinfo=UTC)


class OptinEventType(StrEnum):
    SEND = "send"
    OPEN = "open"
    CLICK = "click"
    PURCHASE = "purchase"


# Sends are exposure, not engagement: they do not enter the profiles.
ENGAGEMENT_OF: Final[Mapping[OptinEventType, EngagementKind]] = {
    OptinEventType.OPEN: EngagementKind.EMAIL_OPEN,
    OptinEventType.CLICK: EngagementKind.EMAIL_CLICK,
    OptinEventType.PURCHASE: EngagementKind.PURCHASE,
}


@dataclass(frozen=True, slots=True)
class OptinEvent:
    """One good row. ``utc_offset_s`` is None for a time written with Z (local time unknown)."""

    position: RowPosition
    email_sha256: str
    segment: str | None
    sub_segment: str | None
    event_type: OptinEventType
    occurred_at: int
    utc_offset_s: int | None
    local_hour_of_week: int | None
    campaign_id: str | None


def parse_occurred_at(text: str) -> datetime:
    """An ISO-8601 instant that carries its offset (Z or ±HH:MM); ValueError saying why not."""
    value = text.strip()
    if not value:
        raise ValueError("empty")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("not an ISO-8601 date and time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("no UTC offset (end it with Z or ±HH:MM)")
    if not _EARLIEST <= parsed <= _LATEST:
        raise ValueError("outside 1970-2100")
    return parsed


def _has_zulu(text: str) -> bool:
    return text.rstrip().upper().endswith("Z")


def _optional(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _parse_row(position: RowPosition, values: Mapping[str, Any]) -> OptinEvent | list[RowIssue]:
    issues: list[RowIssue] = []
    raw_hash = _optional(values.get("email_sha256"))
    digest = raw_hash.lower() if raw_hash is not None else ""
    if not is_email_sha256(digest):
        # Never echo the value: a raw e-mail address in the hash column must not reach a rejects file.
        detail = "empty" if raw_hash is None else f"{len(raw_hash)} characters"
        issues.append(RowIssue(position, "email_sha256", "not a SHA-256 hex digest (64 hex digits)", detail))
    raw_type = _optional(values.get("event_type"))
    event_type: OptinEventType | None = None
    try:
        event_type = OptinEventType((raw_type or "").lower())
    except ValueError:
        issues.append(
            RowIssue(
                position, "event_type", "not one of send, open, click, purchase", repr((raw_type or "")[:20])
            )
        )
    raw_time = str(values.get("occurred_at") or "")
    occurred: datetime | None = None
    try:
        occurred = parse_occurred_at(raw_time)
    except ValueError as error:
        issues.append(RowIssue(position, "occurred_at", f"bad timestamp: {error}", repr(raw_time[:40])))
    if issues or event_type is None or occurred is None:
        return issues
    offset = None if _has_zulu(raw_time) else occurred.utcoffset()
    return OptinEvent(
        position=position,
        email_sha256=digest,
        segment=_optional(values.get("segment")),
        sub_segment=_optional(values.get("sub_segment")),
        event_type=event_type,
        occurred_at=int(occurred.timestamp()),
        utc_offset_s=None if offset is None else int(offset.total_seconds()),
        local_hour_of_week=None if offset is None else fixed_offset_hour_of_week(occurred),
        campaign_id=_optional(values.get("campaign_id")),
    )


def read_optin_export(
    location: str,
    on_issue: Callable[[RowIssue], None],
    spec: SourceSpec | None = None,
) -> Iterator[OptinEvent]:
    """The good rows of one export file as events; every problem of a bad row goes to ``on_issue``.

    The format follows the file name (``.csv``, ``.tsv``, ``.jsonl``, ``.avro``, compressed or not)
    unless ``spec`` says otherwise. Raises SourceError, naming the file, for a file that lacks any
    of the six columns or cannot be read.
    """
    if spec is None:
        source_format = infer_format(location) or SourceFormat.CSV
        spec = SourceSpec(format=source_format)
    checked = False
    with open_rows(location, spec) as rows:
        for row in rows:
            if isinstance(row, RejectedRow):
                for issue in row.issues:
                    on_issue(issue)
                continue
            if not checked:
                missing = [column for column in OPTIN_COLUMNS if column not in row.values]
                if missing:
                    raise SourceError(
                        location,
                        f"missing columns {', '.join(missing)} (an opt-in export has "
                        f"{', '.join(OPTIN_COLUMNS)})",
                        row=0,
                    )
                checked = True
            parsed = _parse_row(row.position, row.values)
            if isinstance(parsed, OptinEvent):
                yield parsed
            else:
                for issue in parsed:
                    on_issue(issue)


# -- the history, joined to users later --------------------------------------------------------------


@dataclass(slots=True)
class OptinUser:
    """One hashed user's groups, engagement events and send times (only to spot machine opens)."""

    group: GroupKey
    group_seen_at: int
    # (kind, occurred_at epoch seconds, local hour of week or None when only UTC is known)
    events: list[tuple[EngagementKind, int, int | None]]
    send_times: array[int] = field(default_factory=lambda: array("q"))

    def machine_open_filter(self) -> Callable[[EngagementKind, int], bool]:
        """A test for "this event is a machine open" (an e-mail open just after a send)."""
        sends = sorted(self.send_times)

        def is_machine_open(kind: EngagementKind, occurred_at: int) -> bool:
            if kind is not EngagementKind.EMAIL_OPEN or not sends:
                return False
            # The latest send at or before the open.
            index = bisect_right(sends, occurred_at) - 1
            return index >= 0 and occurred_at - sends[index] < MACHINE_OPEN_WINDOW_S

        return is_machine_open


@dataclass(slots=True)
class OptinHistory:
    users: dict[str, OptinUser]
    rows: int = 0
    sends: int = 0

    def add(self, event: OptinEvent) -> None:
        self.rows += 1
        group = GroupKey(event.segment, event.sub_segment)
        user = self.users.get(event.email_sha256)
        if user is None:
            user = self.users[event.email_sha256] = OptinUser(group, event.occurred_at, [])
        elif event.occurred_at >= user.group_seen_at:
            # A user's segment can change during the year: the latest row says where they are now.
            user.group, user.group_seen_at = group, event.occurred_at
        kind = ENGAGEMENT_OF.get(event.event_type)
        if kind is None:
            self.sends += 1
            user.send_times.append(event.occurred_at)
            return
        user.events.append((kind, event.occurred_at, event.local_hour_of_week))

    def group_of(self, email_sha256: str) -> GroupKey:
        user = self.users.get(email_sha256)
        return user.group if user is not None else NO_GROUP

    def observations(self, email_sha256: str, user_key: str, zone: tzinfo) -> list[Observation]:
        """The user's engagement without machine opens; a time written with Z gets its local hour in
        ``zone`` (DST-correct)."""
        user = self.users.get(email_sha256)
        if user is None:
            return []
        result = []
        is_machine_open = user.machine_open_filter()
        for kind, occurred_at, written_hour in user.events:
            if is_machine_open(kind, occurred_at):
                continue
            local_hour = (
                written_hour
                if written_hour is not None
                else hour_of_week(datetime.fromtimestamp(occurred_at, UTC), zone)
            )
            result.append(Observation(user_key, kind, occurred_at, local_hour))
        return result


def load_optin_history(
    locations: Sequence[str], on_issue: Callable[[RowIssue], None], spec: SourceSpec | None = None
) -> OptinHistory:
    history = OptinHistory({})
    for location in locations:
        for event in read_optin_export(location, on_issue, spec):
            history.add(event)
    return history
