"""Send ledger and checkpoints on the DynamoDB run-state table (schema: ``tables.RUN_STATE_TABLE``).

Ledger items: ``pk`` "sent#<scope>", ``sk`` "blk#<block>", ``ids`` (SS) the acknowledged ids of
the block, ``expires_at`` (N). Ids of the form "<row>:<letters><index>" (what the engine writes,
e.g. "1234:e0") share a block with the same letters and index range of 64 neighbouring rows, so a
users.track request of 75 events touches two or three items instead of 75: marking them costs
2-3 UpdateItem calls of 1 write unit each (an item of 64 short ids is well under 1 KB) where one
item per id costs 75 write units, and checking them one BatchGetItem of 2-3 keys. Indexes of 16
and above get their own blocks per row, so no block holds more than 1,024 ids (under 40 KB
whatever the row numbers). Any other id gets an item of its own ("id#<id>"): correct, not compact.
``ADD`` to a string set is atomic and idempotent, so concurrent or repeated marks need no read.

Checkpoint items: ``pk`` "run#<run_id>", ``sk`` "part#<part>" with the checkpoint as JSON in
``body``, ``done`` (BOOL), ``summary`` (JSON S); and one ``sk`` "meta" item per run with
``total_parts`` (N) and ``done_order`` (L of S), the parts in the order they finished.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools import Logger

from cdpbridge.state._codec import checkpoint_body, decode_checkpoint, to_json
from cdpbridge.state._dynamo import (
    MAX_PARTITION_KEY_BYTES,
    MAX_SORT_KEY_BYTES,
    Backoff,
    Item,
    batch_get,
    batch_write,
    bounded_key_text,
    default_client,
    ensure_item_fits,
    is_conditional_check_failure,
)
from cdpbridge.state.contracts import (
    Checkpoint,
    RunPartsMismatchError,
    part_order,
    validate_run_part,
    validate_total_parts,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import WriteRequestTypeDef

logger = Logger(child=True)

DEFAULT_RUN_STATE_TTL_SECONDS: Final = 14 * 24 * 3600

ROWS_PER_BLOCK: Final = 64
SMALL_INDEX_LIMIT: Final = 16
INDEXES_PER_BLOCK: Final = 256
_COMPACT_ID: Final = re.compile(r"(\d{1,18}):([A-Za-z]{0,8})(\d{1,9})")


def ledger_block(item_id: str) -> str:
    """The sort key of the ledger item that holds ``item_id`` (see the module docstring)."""
    match = _COMPACT_ID.fullmatch(item_id)
    if match is None:
        return "id#" + bounded_key_text(item_id, MAX_SORT_KEY_BYTES)
    row, letters, index = int(match[1]), match[2], int(match[3])
    if index < SMALL_INDEX_LIMIT:
        return f"blk#{letters}{row // ROWS_PER_BLOCK}"
    return f"blk#{letters}{row}.{index // INDEXES_PER_BLOCK}"


def _group_by_block(ids: Collection[str]) -> dict[str, set[str]]:
    blocks: dict[str, set[str]] = defaultdict(set)
    for item_id in ids:
        if not item_id:
            raise ValueError("a ledger id must not be empty")
        blocks[ledger_block(item_id)].add(item_id)
    return blocks


class DynamoDbSendLedger:
    """SendLedger on the run-state table; entries expire ``ttl_seconds`` after their last mark."""

    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        ttl_seconds: int = DEFAULT_RUN_STATE_TTL_SECONDS,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not table_name:
            raise ValueError("a run state table name is required")
        self.table_name = table_name
        self._client = client if client is not None else default_client()
        self._ttl_seconds = ttl_seconds
        self._backoff = backoff or Backoff()
        self._clock = clock

    def _partition_key(self, scope: str) -> str:
        if not scope:
            raise ValueError("a ledger scope must not be empty")
        return bounded_key_text(f"sent#{scope}", MAX_PARTITION_KEY_BYTES)

    def already_sent(self, scope: str, ids: Collection[str]) -> set[str]:
        pk = self._partition_key(scope)
        blocks = _group_by_block(ids)
        if not blocks:
            return set()
        keys: list[Item] = [{"pk": {"S": pk}, "sk": {"S": block}} for block in blocks]
        sent: set[str] = set()
        # Strongly consistent: a resumed run must see every mark made before it stopped.
        for item in batch_get(
            self._client,
            self.table_name,
            keys,
            projection="#sk, #ids",
            names={"#sk": "sk", "#ids": "ids"},
            consistent=True,
            backoff=self._backoff,
        ):
            wanted = blocks.get(item["sk"]["S"], set())
            sent.update(wanted.intersection(item.get("ids", {}).get("SS", ())))
        return sent

    def mark_sent(self, scope: str, ids: Collection[str]) -> None:
        pk = self._partition_key(scope)
        blocks = _group_by_block(ids)
        expires_at = str(int(self._clock()) + self._ttl_seconds)
        singles: list[WriteRequestTypeDef] = []
        for block, members in blocks.items():
            if block.startswith("id#"):
                # One id per item: a put is as idempotent as ADD and can be batched 25 at a time.
                item: Item = {
                    "pk": {"S": pk},
                    "sk": {"S": block},
                    "ids": {"SS": sorted(members)},
                    "expires_at": {"N": expires_at},
                }
                singles.append({"PutRequest": {"Item": item}})
                continue
            self._client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": pk}, "sk": {"S": block}},
                UpdateExpression="ADD #ids :ids SET #exp = :exp",
                ExpressionAttributeNames={"#ids": "ids", "#exp": "expires_at"},
                ExpressionAttributeValues={":ids": {"SS": sorted(members)}, ":exp": {"N": expires_at}},
            )
        if singles:
            batch_write(self._client, self.table_name, singles, backoff=self._backoff)

    def close(self) -> None:
        # The boto3 client is shared and owns no resource worth releasing early.
        return None


class DynamoDbCheckpointStore:
    """CheckpointStore on the run-state table; items expire ``ttl_seconds`` after their last write."""

    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        ttl_seconds: int = DEFAULT_RUN_STATE_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not table_name:
            raise ValueError("a run state table name is required")
        self.table_name = table_name
        self._client = client if client is not None else default_client()
        self._ttl_seconds = ttl_seconds
        self._clock = clock

    @staticmethod
    def _partition_key(run_id: str) -> str:
        return bounded_key_text(f"run#{run_id}", MAX_PARTITION_KEY_BYTES)

    @staticmethod
    def _sort_key(part: str) -> str:
        return bounded_key_text(f"part#{part}", MAX_SORT_KEY_BYTES)

    def _expires_at(self) -> str:
        return str(int(self._clock()) + self._ttl_seconds)

    def load(self, run_id: str, part: str = "0") -> Checkpoint | None:
        validate_run_part(run_id, part)
        response = self._client.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": self._partition_key(run_id)}, "sk": {"S": self._sort_key(part)}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return None if item is None else self._decode(run_id, item)

    def save(self, checkpoint: Checkpoint, part: str | None = None) -> None:
        part = checkpoint.part if part is None else part
        validate_run_part(checkpoint.run_id, part)
        what = f"checkpoint of run {checkpoint.run_id} part {part}"
        item: Item = {
            "pk": {"S": self._partition_key(checkpoint.run_id)},
            "sk": {"S": self._sort_key(part)},
            "part": {"S": part},
            "body": {"S": checkpoint_body(checkpoint, what)},
            "done": {"BOOL": checkpoint.done},
            "expires_at": {"N": self._expires_at()},
        }
        if checkpoint.summary is not None:
            item["summary"] = {"S": to_json(checkpoint.summary, what)}
        ensure_item_fits(item, self.table_name, what)
        self._client.put_item(TableName=self.table_name, Item=item)

    def list_parts(self, run_id: str) -> list[Checkpoint]:
        validate_run_part(run_id, "0")
        checkpoints: list[Checkpoint] = []
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": {"#pk": "pk", "#sk": "sk"},
            "ExpressionAttributeValues": {
                ":pk": {"S": self._partition_key(run_id)},
                ":prefix": {"S": "part#"},
            },
            "ConsistentRead": True,
        }
        while True:
            response = self._client.query(**query)
            checkpoints.extend(self._decode(run_id, item) for item in response.get("Items", []))
            last_key = response.get("LastEvaluatedKey")
            if not last_key:
                break
            query["ExclusiveStartKey"] = last_key
        checkpoints.sort(key=lambda checkpoint: part_order(checkpoint.part))
        return checkpoints

    def mark_done(self, run_id: str, part: str, summary: dict[str, Any], *, total_parts: int) -> bool:
        validate_run_part(run_id, part)
        validate_total_parts(run_id, total_parts)
        pk = self._partition_key(run_id)
        expires_at = self._expires_at()
        summary_json = to_json(summary, f"summary of run {run_id} part {part}")
        ensure_item_fits(
            {"summary": {"S": summary_json}}, self.table_name, f"summary of run {run_id} part {part}"
        )
        # The summary lands before the part is counted: whoever completes the run finds every
        # summary in place when it lists the parts.
        self._client.update_item(
            TableName=self.table_name,
            Key={"pk": {"S": pk}, "sk": {"S": self._sort_key(part)}},
            UpdateExpression="SET #done = :true, #summary = :summary, #part = :part, #exp = :exp",
            ExpressionAttributeNames={
                "#done": "done",
                "#summary": "summary",
                "#part": "part",
                "#exp": "expires_at",
            },
            ExpressionAttributeValues={
                ":true": {"BOOL": True},
                ":summary": {"S": summary_json},
                ":part": {"S": part},
                ":exp": {"N": expires_at},
            },
        )
        try:
            response = self._client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": pk}, "sk": {"S": "meta"}},
                UpdateExpression=(
                    "SET #order = list_append(if_not_exists(#order, :empty), :this), "
                    "#total = if_not_exists(#total, :total), #exp = :exp"
                ),
                ConditionExpression=(
                    "(attribute_not_exists(#total) OR #total = :total) AND "
                    "(attribute_not_exists(#order) OR "
                    "(NOT contains(#order, :part) AND size(#order) < :total))"
                ),
                ExpressionAttributeNames={
                    "#order": "done_order",
                    "#total": "total_parts",
                    "#exp": "expires_at",
                },
                ExpressionAttributeValues={
                    ":empty": {"L": []},
                    ":this": {"L": [{"S": part}]},
                    ":part": {"S": part},
                    ":total": {"N": str(total_parts)},
                    ":exp": {"N": expires_at},
                },
                ReturnValues="ALL_NEW",
            )
        except Exception as exc:
            if not is_conditional_check_failure(exc):
                raise
            return self._settle_repeated_mark(run_id, part, total_parts)
        done_order = response.get("Attributes", {}).get("done_order", {}).get("L", [])
        completed = len(done_order) == total_parts
        logger.debug(
            "run part done",
            extra={"run_id": run_id, "part": part, "parts_done": len(done_order), "total_parts": total_parts},
        )
        return completed

    def _settle_repeated_mark(self, run_id: str, part: str, total_parts: int) -> bool:
        """The counter refused this part: a repeat of a part already counted, or a mismatch."""
        response = self._client.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": self._partition_key(run_id)}, "sk": {"S": "meta"}},
            ConsistentRead=True,
        )
        meta = response.get("Item", {})
        stored_total = int(meta.get("total_parts", {}).get("N", "0"))
        done_order = [entry.get("S", "") for entry in meta.get("done_order", {}).get("L", [])]
        if stored_total != total_parts:
            raise RunPartsMismatchError(
                f"run {run_id}: part {part} says the run has {total_parts} parts, "
                f"earlier parts said {stored_total}"
            )
        if part in done_order:
            return len(done_order) == total_parts and done_order[-1] == part
        raise RunPartsMismatchError(
            f"run {run_id}: part {part} finished after all {total_parts} declared parts were done "
            f"({', '.join(done_order)})"
        )

    def close(self) -> None:
        return None

    def _decode(self, run_id: str, item: Item) -> Checkpoint:
        part = item.get("part", {}).get("S", "")
        where = f"DynamoDB table {self.table_name}: checkpoint of run {run_id} part {part}"
        return decode_checkpoint(
            run_id,
            part,
            body_json=item["body"]["S"] if "body" in item else None,
            done=bool(item.get("done", {}).get("BOOL", False)),
            summary_json=item["summary"]["S"] if "summary" in item else None,
            where=where,
        )
