"""DynamoDB plumbing shared by the state stores: batched reads and writes with bounded retries,
key shaping and item-size accounting. Uses the low-level client: the resource layer's type
(de)serialisers cost more CPU than the rest of a state read."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools import Logger

from cdpbridge.state.contracts import StateItemTooLargeError, StateStoreUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        KeysAndAttributesTypeDef,
        WriteRequestTypeDef,
    )

    Item = dict[str, AttributeValueTypeDef]
else:
    Item = dict

logger = Logger(child=True)

MAX_ITEM_BYTES: Final = 400 * 1024
BATCH_GET_KEYS: Final = 100
BATCH_WRITE_ITEMS: Final = 25
# DynamoDB's limits are 2048 bytes for a partition key and 1024 for a sort key; longer texts are
# replaced by a digest, well under both limits.
MAX_PARTITION_KEY_BYTES: Final = 1536
MAX_SORT_KEY_BYTES: Final = 768


def default_client() -> DynamoDBClient:
    import boto3  # noqa: PLC0415 - only the DynamoDB stores need boto3; SQLite runs never import it
    from botocore.config import Config  # noqa: PLC0415

    # Client-side parameter validation costs about a fifth of the CPU of a 25-item BatchWriteItem
    # (measured); requests here are built by typed code and DynamoDB validates them anyway.
    client: DynamoDBClient = boto3.client(
        "dynamodb",
        config=Config(
            retries={"mode": "standard", "max_attempts": 5},
            max_pool_connections=32,
            parameter_validation=False,
        ),
    )
    return client


@dataclass(frozen=True, slots=True)
class Backoff:
    """Full-jitter exponential backoff for unprocessed batch items; bounded so a run cannot hang."""

    base_s: float = 0.05
    cap_s: float = 2.0
    max_attempts: int = 10
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def pause(self, attempt: int) -> None:
        self.sleep(random.uniform(0.0, min(self.cap_s, self.base_s * (2**attempt))))


def bounded_key_text(text: str, max_bytes: int) -> str:
    """``text`` itself when short enough, else "~" and a 256-bit digest of it.

    Texts that start with "~" are digested too, so a digest never equals a real text.
    """
    if text.startswith("~") or (len(text) * 4 > max_bytes and len(text.encode()) > max_bytes):
        return "~" + hashlib.blake2b(text.encode(), digest_size=32).hexdigest()
    return text


def batch_get(
    client: DynamoDBClient,
    table_name: str,
    keys: Sequence[Item],
    *,
    projection: str,
    names: Mapping[str, str],
    consistent: bool,
    backoff: Backoff,
) -> Iterator[Item]:
    """Every item found for ``keys`` (absent keys yield nothing), 100 keys a request."""
    for start in range(0, len(keys), BATCH_GET_KEYS):
        pending: KeysAndAttributesTypeDef = {
            "Keys": list(keys[start : start + BATCH_GET_KEYS]),
            "ConsistentRead": consistent,
            "ProjectionExpression": projection,
            "ExpressionAttributeNames": dict(names),
        }
        attempt = 0
        while True:
            response = client.batch_get_item(RequestItems={table_name: pending})
            yield from response.get("Responses", {}).get(table_name, [])
            unprocessed = response.get("UnprocessedKeys", {}).get(table_name)
            if not unprocessed or not unprocessed.get("Keys"):
                break
            if attempt + 1 >= backoff.max_attempts:
                raise StateStoreUnavailableError(
                    f"DynamoDB table {table_name}: {len(unprocessed['Keys'])} keys still unprocessed "
                    f"after {backoff.max_attempts} BatchGetItem attempts"
                )
            logger.debug(
                "retrying unprocessed keys",
                extra={"table": table_name, "keys": len(unprocessed["Keys"]), "attempt": attempt + 1},
            )
            backoff.pause(attempt)
            attempt += 1
            pending = {**pending, "Keys": unprocessed["Keys"]}


def batch_write(
    client: DynamoDBClient,
    table_name: str,
    requests: Sequence[WriteRequestTypeDef],
    *,
    backoff: Backoff,
) -> int:
    """Puts/deletes 25 items a request, retrying unprocessed items; returns the requests made."""
    calls = 0
    for start in range(0, len(requests), BATCH_WRITE_ITEMS):
        pending: Sequence[Any] = requests[start : start + BATCH_WRITE_ITEMS]
        attempt = 0
        while True:
            response = client.batch_write_item(RequestItems={table_name: pending})
            calls += 1
            unprocessed = response.get("UnprocessedItems", {}).get(table_name)
            if not unprocessed:
                break
            if attempt + 1 >= backoff.max_attempts:
                raise StateStoreUnavailableError(
                    f"DynamoDB table {table_name}: {len(unprocessed)} writes still unprocessed "
                    f"after {backoff.max_attempts} BatchWriteItem attempts"
                )
            logger.debug(
                "retrying unprocessed writes",
                extra={"table": table_name, "items": len(unprocessed), "attempt": attempt + 1},
            )
            backoff.pause(attempt)
            attempt += 1
            pending = unprocessed
    return calls


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").strip("0") or "0"
    return 1 + (len(digits) + 1) // 2


def attribute_value_size(value: Mapping[str, Any]) -> int:
    """Bytes DynamoDB counts for one attribute value (without its name), per the documented rules."""
    if "S" in value:
        return len(value["S"].encode())
    if "B" in value:
        return len(value["B"])
    if "N" in value:
        return _number_size(value["N"])
    if "BOOL" in value or "NULL" in value:
        return 1
    if "M" in value:
        return 3 + sum(
            len(name.encode()) + attribute_value_size(item) + 1 for name, item in value["M"].items()
        )
    if "L" in value:
        return 3 + sum(attribute_value_size(item) + 1 for item in value["L"])
    if "SS" in value:
        return sum(len(member.encode()) for member in value["SS"])
    if "NS" in value:
        return sum(_number_size(member) for member in value["NS"])
    if "BS" in value:
        return sum(len(member) for member in value["BS"])
    raise ValueError(f"unknown DynamoDB attribute value type: {sorted(value)}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    return sum(len(name.encode()) + attribute_value_size(value) for name, value in item.items())


def ensure_item_fits(item: Mapping[str, Mapping[str, Any]], table_name: str, what: str) -> int:
    """Raises StateItemTooLargeError, naming the table and the record, when over 400 KB."""
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        raise StateItemTooLargeError(
            f"DynamoDB table {table_name}: {what} needs {size} bytes, "
            f"over the {MAX_ITEM_BYTES}-byte item limit"
        )
    return size


def is_conditional_check_failure(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    return bool(response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")
