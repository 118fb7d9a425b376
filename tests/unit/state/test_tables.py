from __future__ import annotations

from cdpbridge.state.tables import (
    ALL_TABLES,
    FIELD_STATE_TABLE,
    IDEMPOTENCY_TABLE,
    RUN_STATE_TABLE,
    create_table,
)


def test_table_definitions_match_the_documented_schemas():
    # Given the three table definitions / Then their keys and TTL attributes are as documented
    assert FIELD_STATE_TABLE.key_schema() == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert RUN_STATE_TABLE.key_schema() == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert IDEMPOTENCY_TABLE.key_schema() == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert [t.ttl_attribute for t in ALL_TABLES] == ["expires_at", "expires_at", "expiration"]
    assert all(d["AttributeType"] == "S" for t in ALL_TABLES for d in t.attribute_definitions())


def test_create_table_is_idempotent_and_enables_ttl(dynamodb_client):
    # Given a table created twice (a local stack started twice)
    create_table(dynamodb_client, RUN_STATE_TABLE, "run-state-twice")
    create_table(dynamodb_client, RUN_STATE_TABLE, "run-state-twice")
    # Then it exists on demand with its TTL enabled
    table = dynamodb_client.describe_table(TableName="run-state-twice")["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = dynamodb_client.describe_time_to_live(TableName="run-state-twice")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
