"""The dispatcher: every due slot of a program through /campaigns/trigger/send, each user once.

At ``now`` a planned row is due when its slot (``send_at``) is not after ``now``; a due row whose
slot is more than the program's ``grace_minutes`` old is skipped and reported instead of sent late.
A run reads only the planned and claimed rows whose slot is not after ``now`` (the store's due
rows: an index by slot), so its cost follows what is due, not the size of the plan.
Due rows go out slot by slot, 50 recipients a call (Braze's cap), under one send id per slot
(``/sends/id/create``), so Braze's send-id analytics show each slot apart.

Each row is claimed (a conditional write: planned -> claimed) before the call that sends it and
confirmed after (claimed -> sent). Two dispatchers running at once split the rows between them; a
dispatcher that dies between claim and confirmation leaves its rows claimed and nobody sends them
again: at most once. Rows left claimed longer than the grace period are reported as unconfirmed.
A call Braze refuses outright (4xx other than 429) marks its rows failed with the reason; a call
whose outcome is unknown (Braze unavailable after the client's retries) leaves them claimed and
stops the run, because the next call would most likely fail alike.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from aws_lambda_powertools import Logger

from cdpbridge.braze import BrazeClient
from cdpbridge.braze.errors import BrazeError, BrazePermanentError, BrazeRequestError
from cdpbridge.integrations.notify.pixel import claim_for_slot, mint_token, pixel_url
from cdpbridge.integrations.notify.program import ProgramConfig
from cdpbridge.integrations.notify.schedules import ScheduledSend, ScheduleStore, SlotStatus

logger = Logger(child=True)

RECIPIENTS_PER_CALL: Final = 50
SEND_ID_MAX_LENGTH: Final = 64
# The trigger properties every recipient gets (Liquid: {{api_trigger_properties.${notify_slot}}}).
PIXEL_PROPERTY: Final = "notify_pixel_url"


def send_id_of(program: str, send_at: str) -> str:
    """One send id per (program, slot): readable, at most 64 ASCII characters, the same every run."""
    stamp = send_at.replace("-", "").replace(":", "")  # 20261207T091500Z
    send_id = f"notify-{program}-{stamp}"
    if len(send_id) <= SEND_ID_MAX_LENGTH:
        return send_id
    digest = hashlib.sha256(program.encode()).hexdigest()[:12]
    return f"notify-{program[: SEND_ID_MAX_LENGTH - len(stamp) - len(digest) - 9]}-{digest}-{stamp}"


def parse_instant(text: str) -> datetime:
    """An ISO-8601 instant with an offset or Z, as aware UTC."""
    instant = datetime.fromisoformat(text.strip())
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{text!r} has no UTC offset (write Z for UTC)")
    return instant.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class PixelSettings:
    """Mint a pixel URL per recipient into the trigger properties (PIXEL_PROPERTY)."""

    base_url: str
    key: bytes
    valid_days: int = 30


@dataclass(slots=True)
class DispatchReport:
    program: str
    now: str
    due: int = 0
    sent: int = 0
    calls: int = 0
    send_ids: list[str] = field(default_factory=list)
    # Slots sent without their own send id (Braze refused to create it; see _create_send_id).
    send_ids_not_created: list[str] = field(default_factory=list)
    # Claimed by another dispatcher between our read and our claim.
    taken_by_others: int = 0
    # (external_id, send_at) of slots older than the grace period: not sent.
    skipped_late: list[tuple[str, str]] = field(default_factory=list)
    # (external_id, reason) of rows Braze refused.
    failed: list[tuple[str, str]] = field(default_factory=list)
    # Rows claimed but never confirmed (a dispatcher died half-way), older than the grace period.
    unconfirmed: list[str] = field(default_factory=list)
    stopped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "program": self.program,
            "now": self.now,
            "due": self.due,
            "sent": self.sent,
            "calls": self.calls,
            "send_ids": self.send_ids,
            "send_ids_not_created": self.send_ids_not_created,
            "taken_by_others": self.taken_by_others,
            "skipped_late": [{"external_id": user, "send_at": at} for user, at in self.skipped_late],
            "failed": [{"external_id": user, "reason": reason} for user, reason in self.failed],
            "unconfirmed": len(self.unconfirmed),
            "stopped": self.stopped,
        }


def send_dates_around(now: datetime) -> list[date]:
    """The send dates whose slots can fall at ``now``: a local date spans UTC-12..UTC+14."""
    today = now.astimezone(UTC).date()
    return [today - timedelta(days=1), today, today + timedelta(days=1)]


def _chunks(rows: Sequence[ScheduledSend], size: int) -> Iterable[Sequence[ScheduledSend]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


@dataclass(slots=True)
class Dispatcher:
    program: ProgramConfig
    store: ScheduleStore
    client: BrazeClient
    pixel: PixelSettings | None = None
    new_token: Callable[[], str] = field(default_factory=lambda: lambda: uuid.uuid4().hex)
    # Called after every claimed chunk is sent and before it is confirmed (tests stop a run there).
    after_send: Callable[[Sequence[ScheduledSend]], None] | None = None

    def dispatch(self, now: datetime, send_dates: Iterable[date] | None = None) -> DispatchReport:
        now = now.astimezone(UTC)
        now_text = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        grace = timedelta(minutes=self.program.grace_minutes)
        oldest_text = (now - grace).strftime("%Y-%m-%dT%H:%M:%SZ")
        report = DispatchReport(self.program.program, now_text)
        dates = list(send_dates) if send_dates is not None else [self.program.send_date]
        due: dict[str, list[ScheduledSend]] = {}
        for send_date in dates:
            for row in self.store.due_rows(self.program.program, send_date, now_text):
                if row.status is SlotStatus.CLAIMED and row.send_at < oldest_text:
                    report.unconfirmed.append(row.external_id)
                if row.status is not SlotStatus.PLANNED or row.send_at > now_text:
                    continue
                report.due += 1
                if row.send_at < oldest_text:
                    if self.store.skip(
                        row, f"slot {row.send_at} more than {self.program.grace_minutes} min late"
                    ):
                        report.skipped_late.append((row.external_id, row.send_at))
                    continue
                due.setdefault(row.send_at, []).append(row)
        for send_at in sorted(due):
            if not self._send_slot(send_at, due[send_at], report):
                break
        if report.unconfirmed:
            logger.warning("rows claimed but never confirmed", extra={"count": len(report.unconfirmed)})
        logger.info(
            "notify dispatch",
            extra={
                "program": report.program,
                "now": report.now,
                "due": report.due,
                "sent": report.sent,
                "calls": report.calls,
                "slots": len(report.send_ids) + len(report.send_ids_not_created),
                "taken_by_others": report.taken_by_others,
                "skipped_late": len(report.skipped_late),
                "failed": len(report.failed),
                "unconfirmed": len(report.unconfirmed),
            },
        )
        return report

    def _send_slot(self, send_at: str, rows: list[ScheduledSend], report: DispatchReport) -> bool:
        program = self.program
        send_id = send_id_of(program.program, send_at)
        send_id_created = False
        for chunk in _chunks(rows, RECIPIENTS_PER_CALL):
            token = self.new_token()
            claimed = [row for row in chunk if self.store.claim(row, token)]
            report.taken_by_others += len(chunk) - len(claimed)
            if not claimed:
                continue
            if not send_id_created:
                send_id_created = True
                if self._create_send_id(send_id, report):
                    report.send_ids.append(send_id)
            call_send_id = send_id if send_id in report.send_ids else None
            try:
                self.client.trigger_send(
                    program.campaign_id,
                    recipients=[self._recipient(row, send_id) for row in claimed],
                    send_id=call_send_id,
                )
            except (BrazePermanentError, BrazeRequestError) as error:
                # Refused: nothing was sent to these users.
                for row in claimed:
                    self.store.finish(row, token, SlotStatus.FAILED, send_id, str(error)[:500])
                    report.failed.append((row.external_id, str(error)[:200]))
                continue
            except Exception as error:
                # Unknown outcome: the rows stay claimed (never sent twice) and the run stops.
                report.stopped = f"{type(error).__name__}: {error}"[:500]
                logger.error("notify dispatch stopped", extra={"reason": report.stopped, "slot": send_at})
                return False
            report.calls += 1
            if self.after_send is not None:
                self.after_send(claimed)
            for row in claimed:
                self.store.finish(row, token, SlotStatus.SENT, send_id, None)
            report.sent += len(claimed)
        return True

    def _create_send_id(self, send_id: str, report: DispatchReport) -> bool:
        """Creates the slot's send id; a refusal (the daily cap of 100, an id Braze already has)
        costs the slot its own analytics, never its messages: they go out without a send id."""
        try:
            self.client.create_send_id(self.program.campaign_id, send_id)
        except BrazeError as error:
            report.send_ids_not_created.append(send_id)
            logger.warning("send id not created", extra={"send_id": send_id, "reason": str(error)[:300]})
            return False
        return True

    def _recipient(self, row: ScheduledSend, send_id: str) -> dict[str, Any]:
        properties: dict[str, Any] = {"notify_program": row.program, "notify_slot": row.send_at}
        if self.pixel is not None:
            claim = claim_for_slot(
                row.program, row.external_id, send_id, row.local_time, valid_days=self.pixel.valid_days
            )
            properties[PIXEL_PROPERTY] = pixel_url(self.pixel.base_url, mint_token(self.pixel.key, claim))
        return {"external_user_id": row.external_id, "trigger_properties": properties}


__all__ = [
    "PIXEL_PROPERTY",
    "RECIPIENTS_PER_CALL",
    "DispatchReport",
    "Dispatcher",
    "PixelSettings",
    "parse_instant",
    "send_dates_around",
    "send_id_of",
]
