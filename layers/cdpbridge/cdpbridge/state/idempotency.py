"""Idempotency for S3 object notifications: one processing per (bucket, key, etag).

S3 delivers notifications at least once, and SQS redelivers on timeouts; the etag (not the event)
identifies what was written, so a redelivery of the same object version is skipped while a new
version under the same key is processed. Records live in the idempotency table
(``tables.IDEMPOTENCY_TABLE``: HASH ``id``, TTL ``expiration``) in the Powertools layout.

In a Lambda handler call ``config.register_lambda_context(context)`` so that an invocation that
times out mid-way releases its in-progress record when the function would have been stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# S3 can redeliver an event hours later; a day covers redeliveries and SQS retries with margin.
DEFAULT_EXPIRY_SECONDS: Final = 24 * 3600
# The payload is {"bucket", "key", "etag"}; anything else in it (size, sequencer) is not identity.
EVENT_KEY_JMESPATH: Final = "[bucket, key, etag]"
DATA_KEYWORD_ARGUMENT: Final = "s3_object"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class S3ObjectIdempotency:
    """A configured persistence layer and config; ``decorate`` applies them to a function."""

    persistence_layer: DynamoDBPersistenceLayer
    config: IdempotencyConfig
    data_keyword_argument: str = DATA_KEYWORD_ARGUMENT

    def decorate(self, function: F) -> F:
        """Makes ``function`` run once per (bucket, key, etag) passed as its ``s3_object`` keyword.

        Its return value must be JSON-serialisable: repeats return the stored result. If it raises,
        the record is removed and a redelivery runs it again.
        """
        wrapped: F = idempotent_function(
            function,
            data_keyword_argument=self.data_keyword_argument,
            persistence_store=self.persistence_layer,
            config=self.config,
        )
        return wrapped


def s3_object(bucket: str, key: str, etag: str) -> dict[str, str]:
    """The idempotency payload of one object version.

    The key must already be decoded (notifications carry it URL-encoded; handlers unquote_plus it).
    S3 quotes the ETag in HeadObject/GetObject but not in notifications: quotes are dropped so
    both spellings of one version give one key.
    """
    if not bucket or not key or not etag:
        raise ValueError("bucket, key and etag are all required to identify an S3 object version")
    return {"bucket": bucket, "key": key, "etag": etag.strip('"')}


def s3_object_idempotency(
    table_name: str,
    *,
    expires_after_seconds: int = DEFAULT_EXPIRY_SECONDS,
    boto3_client: DynamoDBClient | None = None,
) -> S3ObjectIdempotency:
    """Idempotency keyed on bucket/key/etag, stored in ``table_name`` (key ``id``, TTL ``expiration``)."""
    if not table_name:
        raise ValueError("an idempotency table name is required")
    persistence_layer = DynamoDBPersistenceLayer(
        table_name=table_name,
        key_attr="id",
        expiry_attr="expiration",
        boto3_client=boto3_client,
    )
    config = IdempotencyConfig(
        event_key_jmespath=EVENT_KEY_JMESPATH,
        raise_on_no_idempotency_key=True,
        expires_after_seconds=expires_after_seconds,
        hash_function="sha256",
    )
    return S3ObjectIdempotency(persistence_layer, config)


def idempotency_setup(
    table_name: str,
    *,
    expires_after_seconds: int = DEFAULT_EXPIRY_SECONDS,
    boto3_client: DynamoDBClient | None = None,
) -> tuple[DynamoDBPersistenceLayer, IdempotencyConfig]:
    """The persistence layer and config of ``s3_object_idempotency``, for ``@idempotent_function``.

    Whatever the keyword the payload is passed under, the key is its bucket, key and etag.
    """
    setup = s3_object_idempotency(
        table_name, expires_after_seconds=expires_after_seconds, boto3_client=boto3_client
    )
    return setup.persistence_layer, setup.config
