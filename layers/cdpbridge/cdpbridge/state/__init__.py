"""State stores: field-level dedupe digests, the send ledger, checkpoints, S3 idempotency.

DynamoDB implementations serve Lambda; SQLite implementations serve local runs and the CLI; both
honour the protocols in ``contracts``. Table schemas are in ``tables``. The idempotency helpers
(``cdpbridge.state.idempotency``) are imported on first use: Powertools' idempotency utility
takes about a quarter of a second to import, which the CLI and SQLite runs need not pay.
"""

from typing import TYPE_CHECKING, Any

from cdpbridge.state._dynamo import Backoff, batch_get, batch_write, default_client
from cdpbridge.state.contracts import (
    Checkpoint,
    CheckpointStore,
    CorruptFieldStateError,
    FieldStateSnapshot,
    FieldStateStore,
    RunPartsMismatchError,
    SendLedger,
    StateItemTooLargeError,
    StateStoreError,
    StateStoreUnavailableError,
)
from cdpbridge.state.digest import (
    DIGEST_SIZE,
    NULL_DIGEST,
    RECORD_DIGEST_KEY,
    value_digest,
    value_digests,
)
from cdpbridge.state.dynamodb_field_state import DynamoDbFieldStateStore
from cdpbridge.state.dynamodb_run_state import DynamoDbCheckpointStore, DynamoDbSendLedger
from cdpbridge.state.snapshot_roster import (
    DynamoDbSnapshotRoster,
    RosterEntry,
    SnapshotRoster,
    SqliteSnapshotRoster,
)
from cdpbridge.state.sqlite_state import SqliteCheckpointStore, SqliteFieldStateStore, SqliteSendLedger

if TYPE_CHECKING:
    from cdpbridge.state.idempotency import (
        S3ObjectIdempotency,
        idempotency_setup,
        s3_object,
        s3_object_idempotency,
    )

_LAZY_IDEMPOTENCY = frozenset(
    {"S3ObjectIdempotency", "idempotency_setup", "s3_object", "s3_object_idempotency"}
)


def __getattr__(name: str) -> Any:
    if name in _LAZY_IDEMPOTENCY:
        from cdpbridge.state import idempotency  # noqa: PLC0415 - deliberately lazy, see the docstring

        return getattr(idempotency, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DIGEST_SIZE",
    "NULL_DIGEST",
    "RECORD_DIGEST_KEY",
    "Backoff",
    "Checkpoint",
    "CheckpointStore",
    "CorruptFieldStateError",
    "DynamoDbCheckpointStore",
    "DynamoDbFieldStateStore",
    "DynamoDbSendLedger",
    "DynamoDbSnapshotRoster",
    "FieldStateSnapshot",
    "FieldStateStore",
    "RosterEntry",
    "RunPartsMismatchError",
    "S3ObjectIdempotency",
    "SendLedger",
    "SnapshotRoster",
    "SqliteCheckpointStore",
    "SqliteFieldStateStore",
    "SqliteSendLedger",
    "SqliteSnapshotRoster",
    "StateItemTooLargeError",
    "StateStoreError",
    "StateStoreUnavailableError",
    "batch_get",
    "batch_write",
    "default_client",
    "idempotency_setup",
    "s3_object",
    "s3_object_idempotency",
    "value_digest",
    "value_digests",
]
