"""The DynamoDB tables of the state stores, as data.

template.yaml must declare the same key schemas and TTL attributes; tests and the local stack
create tables from these definitions, so a drift shows up as a failing test.

FieldState   HASH pk (S) = "<workspace>#<user_key>"; attributes h (M: attribute -> 8-byte B),
             t (N, epoch seconds of the last write); TTL expires_at (only set when the store is
             given a retention, otherwise the attribute is absent and nothing expires).
RunState     HASH pk (S), RANGE sk (S); TTL expires_at. Holds checkpoints
             (pk "run#<run_id>", sk "part#<part>" and "meta") and the send ledger
             (pk "sent#<scope>", sk "blk#<block>" or "id#<id>").
Idempotency  HASH id (S); TTL expiration. The Powertools idempotency record layout.

All three are on-demand (PAY_PER_REQUEST): the load follows file arrivals, not a steady rate.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeDefinitionTypeDef,
        GlobalSecondaryIndexTypeDef,
        KeySchemaElementTypeDef,
    )

KeyType = Literal["S", "N", "B"]


@dataclass(frozen=True, slots=True)
class KeyAttribute:
    name: str
    type: KeyType = "S"


def _key_schema(hash_key: KeyAttribute, range_key: KeyAttribute | None) -> list[KeySchemaElementTypeDef]:
    schema: list[KeySchemaElementTypeDef] = [{"AttributeName": hash_key.name, "KeyType": "HASH"}]
    if range_key is not None:
        schema.append({"AttributeName": range_key.name, "KeyType": "RANGE"})
    return schema


@dataclass(frozen=True, slots=True)
class GlobalIndex:
    """A global secondary index: its keys and the non-key attributes copied into it (none: KEYS_ONLY).

    An item lacking either key attribute is not in the index (a sparse index)."""

    name: str
    hash_key: KeyAttribute
    range_key: KeyAttribute | None
    projected: tuple[str, ...] = ()

    def definition(self) -> GlobalSecondaryIndexTypeDef:
        projection: Any = (
            {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(self.projected)}
            if self.projected
            else {"ProjectionType": "KEYS_ONLY"}
        )
        return {
            "IndexName": self.name,
            "KeySchema": _key_schema(self.hash_key, self.range_key),
            "Projection": projection,
        }


@dataclass(frozen=True, slots=True)
class TableSpec:
    """Key schema, TTL attribute and global indexes of one table; the physical name comes from
    configuration."""

    logical_name: str
    hash_key: KeyAttribute
    range_key: KeyAttribute | None
    ttl_attribute: str | None
    global_indexes: tuple[GlobalIndex, ...] = ()

    def key_schema(self) -> list[KeySchemaElementTypeDef]:
        return _key_schema(self.hash_key, self.range_key)

    def attribute_definitions(self) -> list[AttributeDefinitionTypeDef]:
        keys = [self.hash_key] if self.range_key is None else [self.hash_key, self.range_key]
        for index in self.global_indexes:
            keys += [index.hash_key] if index.range_key is None else [index.hash_key, index.range_key]
        unique = {key.name: key for key in keys}
        return [{"AttributeName": key.name, "AttributeType": key.type} for key in unique.values()]

    def create_table_arguments(self, table_name: str) -> dict[str, Any]:
        """Arguments for DynamoDB CreateTable (the TTL is a separate UpdateTimeToLive call)."""
        arguments: dict[str, Any] = {
            "TableName": table_name,
            "KeySchema": self.key_schema(),
            "AttributeDefinitions": self.attribute_definitions(),
            "BillingMode": "PAY_PER_REQUEST",
        }
        if self.global_indexes:
            arguments["GlobalSecondaryIndexes"] = [index.definition() for index in self.global_indexes]
        return arguments


FIELD_STATE_TABLE: Final = TableSpec(
    logical_name="FieldStateTable",
    hash_key=KeyAttribute("pk"),
    range_key=None,
    ttl_attribute="expires_at",
)
RUN_STATE_TABLE: Final = TableSpec(
    logical_name="RunStateTable",
    hash_key=KeyAttribute("pk"),
    range_key=KeyAttribute("sk"),
    ttl_attribute="expires_at",
)
IDEMPOTENCY_TABLE: Final = TableSpec(
    logical_name="IdempotencyTable",
    hash_key=KeyAttribute("id"),
    range_key=None,
    ttl_attribute="expiration",
)
ALL_TABLES: Final = (FIELD_STATE_TABLE, RUN_STATE_TABLE, IDEMPOTENCY_TABLE)


def create_table(client: DynamoDBClient, spec: TableSpec, table_name: str) -> None:
    """Creates the table (if missing), waits until it is active and enables its TTL."""
    # Already there is fine: creating is idempotent so a local stack can be started twice.
    with contextlib.suppress(client.exceptions.ResourceInUseException):
        client.create_table(**spec.create_table_arguments(table_name))
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    if spec.ttl_attribute is not None:
        status = client.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
        if status.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            client.update_time_to_live(
                TableName=table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
            )
