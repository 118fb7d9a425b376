"""Field-level dedupe state in DynamoDB: one compact item per (workspace, user).

Item: ``pk`` (S) "<workspace>#<user_key>", ``h`` (B) the user's digests packed by
``cdpbridge.state.packing``, ``t`` (N) epoch seconds of the last write, and ``expires_at`` (N)
when a retention is configured.

Why one packed Binary rather than a Map of attribute -> Binary: by DynamoDB's size rules the two
are the same size (a map costs 3 bytes plus, per entry, the name, the 8-byte value and 1 byte;
the packing costs 3 bytes plus, per entry, the name, 8 bytes and 1 separator byte, minus one),
so capacity units are unchanged, but botocore decodes one value per user instead of one per
attribute: for 20 attributes a user, parsing a BatchGetItem response takes about a ninth of the
CPU (measured: 0.8 ms instead of 7.5 ms per 100 users), and state is read for every row.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from cdpbridge.state._dynamo import (
    MAX_PARTITION_KEY_BYTES,
    Backoff,
    Item,
    batch_get,
    batch_write,
    bounded_key_text,
    default_client,
    ensure_item_fits,
)
from cdpbridge.state.contracts import (
    CorruptFieldStateError,
    FieldStateSnapshot,
    merge_user_state,
    record_applied,
    redact_user_key,
    validate_workspace,
)
from cdpbridge.state.packing import pack_digests, packed_record_entry, unpack_digests

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import WriteRequestTypeDef

logger = Logger(child=True)


class DynamoDbFieldStateStore:
    """FieldStateStore on a DynamoDB table (schema: ``tables.FIELD_STATE_TABLE``).

    ``consistent_read`` (default on) makes a read see every write acknowledged before it: with
    eventually consistent reads a run that follows another within a second could read a digest
    already replaced, and skip a value Braze no longer holds. It doubles read units (one unit per
    4 KB still covers a user with about 200 attributes).

    ``retention_seconds`` sets ``expires_at`` so DynamoDB forgets a user's state that many seconds
    after its last change: a periodic full write then corrects profiles edited in Braze by
    something else (dashboard, SDK, another integration). None keeps state until overwritten.

    Writes are last-writer-wins per user: two runs that update the same user at the same moment
    may each overwrite the other's digests for attributes they did not touch. Losing a digest
    only costs a re-send; the harmful case (an old digest written back over a newer one) needs
    two concurrent runs writing one user, which Braze itself could not order either.
    """

    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        consistent_read: bool = True,
        retention_seconds: int | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not table_name:
            raise ValueError("a field state table name is required")
        self.table_name = table_name
        self._client = client if client is not None else default_client()
        self._consistent_read = consistent_read
        self._retention_seconds = retention_seconds
        self._backoff = backoff or Backoff()
        self._clock = clock

    def _partition_key(self, workspace: str, user_key: str) -> str:
        return bounded_key_text(f"{workspace}#{user_key}", MAX_PARTITION_KEY_BYTES)

    def get_many(self, workspace: str, user_keys: Collection[str]) -> FieldStateSnapshot:
        snapshot, found = self._read_packed(workspace, user_keys)
        for user_key, packed in found:
            try:
                state = unpack_digests(packed)
            except CorruptFieldStateError as exc:
                raise self._corrupt(workspace, user_key, exc) from None
            if state:
                snapshot[user_key] = state
        return snapshot

    def get_many_packed(self, workspace: str, user_keys: Collection[str]) -> FieldStateSnapshot:
        """``get_many`` with the states found left packed (``FieldStateSnapshot.hold_packed``)."""
        snapshot, found = self._read_packed(workspace, user_keys)

        def unpack(user_key: str, packed: bytes) -> dict[str, bytes]:
            try:
                return unpack_digests(packed)
            except CorruptFieldStateError as exc:
                raise self._corrupt(workspace, user_key, exc) from None

        snapshot.hold_packed(found, unpack, packed_record_entry)
        return snapshot

    def _read_packed(
        self, workspace: str, user_keys: Collection[str]
    ) -> tuple[FieldStateSnapshot, list[tuple[str, bytes]]]:
        """An empty snapshot covering ``user_keys``, and each stored user's packed state."""
        validate_workspace(workspace)
        by_partition_key = {self._partition_key(workspace, user_key): user_key for user_key in user_keys}
        snapshot = FieldStateSnapshot(covered=by_partition_key.values())
        found: list[tuple[str, bytes]] = []
        if not by_partition_key:
            return snapshot, found
        keys: list[Item] = [{"pk": {"S": pk}} for pk in by_partition_key]
        for item in batch_get(
            self._client,
            self.table_name,
            keys,
            projection="#pk, #h",
            names={"#pk": "pk", "#h": "h"},
            consistent=self._consistent_read,
            backoff=self._backoff,
        ):
            user_key = by_partition_key[item["pk"]["S"]]
            try:
                found.append((user_key, item["h"]["B"]))
            except KeyError as exc:
                raise self._corrupt(workspace, user_key, exc) from None
        return snapshot, found

    def _corrupt(self, workspace: str, user_key: str, exc: Exception) -> CorruptFieldStateError:
        return CorruptFieldStateError(
            f"DynamoDB table {self.table_name}: field state of user {redact_user_key(user_key)} "
            f"in workspace {workspace} cannot be read: {exc}"
        )

    def apply(
        self,
        workspace: str,
        changes: Mapping[str, Mapping[str, bytes | None]],
        known: FieldStateSnapshot | None = None,
    ) -> None:
        validate_workspace(workspace)
        if not changes:
            return
        unread = [user_key for user_key in changes if known is None or user_key not in known.covered]
        stored = self.get_many(workspace, unread) if unread else FieldStateSnapshot()
        now = int(self._clock())
        requests: list[WriteRequestTypeDef] = []
        merged_by_user: dict[str, dict[str, bytes]] = {}
        for user_key, user_changes in changes.items():
            if known is not None and user_key in known.covered:
                base = known.get(user_key, {})
            else:
                base = stored.get(user_key, {})
            merged = merge_user_state(base, user_changes)
            merged_by_user[user_key] = merged
            if merged == base:
                continue  # nothing new was acknowledged: a write would only cost capacity
            pk = self._partition_key(workspace, user_key)
            if not merged:
                requests.append({"DeleteRequest": {"Key": {"pk": {"S": pk}}}})
                continue
            requests.append({"PutRequest": {"Item": self._item(workspace, user_key, pk, merged, now)}})
        # Every item is built (and size-checked) before the first write, so a refusal writes nothing.
        calls = batch_write(self._client, self.table_name, requests, backoff=self._backoff) if requests else 0
        record_applied(known, merged_by_user)
        logger.debug(
            "field state applied",
            extra={
                "table": self.table_name,
                "users": len(changes),
                "users_read": len(unread),
                "items_written": len(requests),
                "write_requests": calls,
            },
        )

    def _item(self, workspace: str, user_key: str, pk: str, state: Mapping[str, bytes], now: int) -> Item:
        try:
            packed = pack_digests(state)
        except ValueError as exc:
            raise ValueError(
                f"DynamoDB table {self.table_name}: field state of user {redact_user_key(user_key)} "
                f"in workspace {workspace}: {exc}"
            ) from None
        item: Item = {"pk": {"S": pk}, "h": {"B": packed}, "t": {"N": str(now)}}
        if self._retention_seconds is not None:
            item["expires_at"] = {"N": str(now + self._retention_seconds)}
        ensure_item_fits(
            item,
            self.table_name,
            f"field state of user {redact_user_key(user_key)} in workspace {workspace} "
            f"({len(state)} attributes)",
        )
        return item

    def close(self) -> None:
        # The boto3 client is shared and owns no resource worth releasing early.
        return None
