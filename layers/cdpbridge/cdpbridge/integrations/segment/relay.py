"""The relay: calls the webhook queued, sent to Braze in full users.track requests.

A batch of queue messages (each a JSON array of calls) runs through the same transformer and engine
as a file: dedupe, the latest call per user and attribute by timestamp, full requests, retries. A
call is told apart by its messageId: its position's row is derived from it, so the engine's send
ledger (kept two weeks) never sends the event of a call delivered twice again, and the field
state's applied times keep an older call from overwriting a newer value, whichever batch brings it.
A message whose calls Braze did not all take is reported failed, so the queue delivers it again;
what was applied of it is then skipped. The state of the attributes a request writes is forgotten
before it goes (and again when no answer came), so whether Braze took it without answering or the
process died before its answer was recorded, a newer call equal to the value before it is still
sent, and the older call delivered again is then dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

from cdpbridge.braze import BrazeClient
from cdpbridge.integrations.segment.transform import SegmentTransformer
from cdpbridge.integrations.segment.webhook import unpack_calls
from cdpbridge.mapping import MappingConfig
from cdpbridge.records import RejectedRow, RowIssue, RowPosition, SourceRow
from cdpbridge.state import FieldStateStore, SendLedger
from cdpbridge.sync.artifacts import ArtifactStore, RejectsWriter, merge_rejects
from cdpbridge.sync.counters import RunCounters
from cdpbridge.sync.engine import EngineOptions, SyncEngine
from cdpbridge.sync.retry import RetryEntry

# One ledger scope for every webhook call: a call is identified by its messageId, whatever the batch.
LEDGER_SCOPE: Final = "segment:webhook"
SOURCE_PREFIX: Final = "webhook:"
MINIMAL_CONFIG: Final = "version: 1\nintegration: segment\nsource: {format: jsonl}\n"


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """One relay queue message: its SQS id and its body (a JSON array of calls)."""

    message_id: str
    body: str


@dataclass(slots=True)
class RelayServices:
    client: BrazeClient | None
    field_state: FieldStateStore
    ledger: SendLedger
    artifacts: ArtifactStore
    options: EngineOptions
    reports_prefix: str = "reports/"


@dataclass(slots=True)
class RelayOutcome:
    counters: RunCounters
    # SQS ids of the messages to deliver again (a call of theirs went unsent).
    failed_message_ids: list[str] = field(default_factory=list)
    rejects_location: str | None = None
    aborted_reason: str | None = None


def call_row(message_id: str | None, queue_message_id: str, index: int) -> int:
    """The row number of a call: a stable 56-bit number from its messageId (from its place in the
    queue message when it has none), so that the send ledger recognises the call again."""
    identity = message_id if message_id else f"{queue_message_id}#{index}"
    return int.from_bytes(hashlib.blake2b(identity.encode(), digest_size=7).digest(), "big")


class _CallRows:
    """The calls of a batch as the engine reads rows (a batch is never resumed part-way)."""

    def __init__(self, messages: Sequence[QueuedMessage]) -> None:
        self._messages = messages

    def __iter__(self) -> Iterator[SourceRow | RejectedRow]:
        for message in self._messages:
            source = SOURCE_PREFIX + message.message_id
            try:
                calls = unpack_calls(message.body)
            except ValueError as error:
                position = RowPosition(source, 0, 0)
                yield RejectedRow(position, [RowIssue(position, None, str(error))])
                continue
            for index, call in enumerate(calls):
                call_id = call.get("messageId")
                row = call_row(call_id if isinstance(call_id, str) else None, message.message_id, index)
                yield SourceRow(RowPosition(source, row, index), call)

    def resume_point(self) -> Any:
        return None


def relay_batch(
    messages: Sequence[QueuedMessage],
    config: MappingConfig,
    services: RelayServices,
    *,
    batch_id: str,
    now: datetime | None = None,
) -> RelayOutcome:
    """Sends the calls of ``messages`` to Braze; says which messages must be delivered again."""
    # A transformer per batch: its memory of message ids must not outlive a batch, or a message
    # delivered again after a failure would find its calls "already seen".
    transformer = SegmentTransformer(config)
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d")
    report_stem = f"{services.reports_prefix}segment/webhook/{stamp}/{batch_id}"
    rejects = RejectsWriter(services.artifacts, report_stem)
    unsent: list[RetryEntry] = []
    counters = RunCounters()
    engine = SyncEngine(
        client=services.client,
        field_state=services.field_state,
        ledger=services.ledger,
        # A batch is never read again once a later one ran: what a request writes is forgotten
        # before it goes, so a crash after Braze applied it leaves no out-of-date state behind.
        options=replace(services.options, forget_before_send=True),
        rejects=rejects,
        retry_sink=unsent.extend,
        counters=counters,
    )
    result = engine.run(_CallRows(messages), transformer, scope=LEDGER_SCOPE)
    rejects.flush()
    location = merge_rejects(services.artifacts, rejects.segment_keys, f"{report_stem}.rejects.csv")
    if result.aborted_reason is not None:
        # Braze refused the credentials: nothing of the batch can go, all of it is tried again.
        failed = [message.message_id for message in messages]
    else:
        failed = sorted({entry.ref.position.source.removeprefix(SOURCE_PREFIX) for entry in unsent})
    return RelayOutcome(counters, failed, location, result.aborted_reason)


__all__ = [
    "LEDGER_SCOPE",
    "MINIMAL_CONFIG",
    "QueuedMessage",
    "RelayOutcome",
    "RelayServices",
    "call_row",
    "relay_batch",
]
