"""The messages on an import function's queue, as typed models parsed once per SQS record.

Three kinds arrive (besides S3's test event when a notification is configured):
- an S3 ObjectCreated notification for inbound/<integration>/… (idempotent on bucket, key and etag);
- ``{"type": "cdpbridge.part", …}``: one byte range of a file too big for one invocation;
- ``{"type": "cdpbridge.continue", …}``: a run that stopped at a checkpoint near the deadline.

The handler's BatchProcessor validates each record into ``ImportQueueRecord`` (Powertools' parser
style: the body is ``Json[ImportMessage]``), so the runtime receives a parsed message and never
reads the body text again. The module imports pydantic and Powertools' SQS record model, not the
source readers (their formats and fastavro would load on every cold start): a part's byte range
is declared here, and the runtime builds the readers' ByteRange from it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Json,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    field_validator,
    model_serializer,
)

PART_MESSAGE: Literal["cdpbridge.part"] = "cdpbridge.part"
CONTINUE_MESSAGE: Literal["cdpbridge.continue"] = "cdpbridge.continue"


class S3Location(BaseModel):
    """Where an object is: kept as bucket and key from the notification to the report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bucket: str = Field(min_length=1)
    key: str = Field(min_length=1)

    @property
    def uri(self) -> str:
        """s3://bucket/key, for the readers (which also open local paths) and for reports."""
        return f"s3://{self.bucket}/{self.key}"

    def __str__(self) -> str:
        return self.uri


# -- S3 notifications: only the fields a run needs; S3 sends more, and test tools send fewer.


class _Lenient(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class S3NotificationBucket(_Lenient):
    name: str = Field(min_length=1)


class S3NotificationObject(_Lenient):
    key: str = Field(min_length=1)
    size: int = 0
    e_tag: str | None = Field(default=None, alias="eTag")
    sequencer: str | None = None

    @field_validator("key")
    @classmethod
    def _decoded(cls, value: str) -> str:
        # S3 URL-encodes keys in notifications (a space arrives as '+').
        return unquote_plus(value)

    @property
    def version(self) -> str:
        """What identifies the object's content: its etag (the sequencer when S3 gives none)."""
        return self.e_tag or self.sequencer or ""


class S3NotificationEntity(_Lenient):
    bucket: S3NotificationBucket
    object: S3NotificationObject


class S3NotificationRecord(_Lenient):
    event_name: str = Field(alias="eventName")
    s3: S3NotificationEntity

    @property
    def is_object_created(self) -> bool:
        return self.event_name.startswith("ObjectCreated")

    @property
    def location(self) -> S3Location:
        return S3Location(bucket=self.s3.bucket.name, key=self.s3.object.key)


class S3Notification(_Lenient):
    records: list[S3NotificationRecord] = Field(alias="Records")


class S3TestEvent(_Lenient):
    """What S3 sends once when a notification configuration is saved; it starts nothing."""

    event: Literal["s3:TestEvent"] = Field(alias="Event")


# -- the function's own messages


class PartRange(BaseModel):
    """A part's byte range (``cdpbridge.sources.ByteRange``, which the runtime builds from it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: int = Field(ge=0)
    end: int | None = Field(default=None, ge=0)
    first_row: int = Field(default=1, ge=1)


class ObjectVersion(BaseModel):
    """A notified object version, as the idempotent start takes it: its idempotency key is bucket,
    key and etag (cdpbridge.state.idempotency), so they are top-level fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bucket: str = Field(min_length=1)
    key: str = Field(min_length=1)
    etag: str = Field(min_length=1)
    size: int = 0

    @field_validator("etag")
    @classmethod
    def _unquoted(cls, value: str) -> str:
        # S3 quotes the ETag in HeadObject/GetObject but not in notifications: one version, one key.
        return value.strip('"')

    @classmethod
    def of(cls, record: S3NotificationRecord) -> ObjectVersion:
        return cls(
            bucket=record.s3.bucket.name,
            key=record.s3.object.key,
            etag=record.s3.object.version,
            size=record.s3.object.size,
        )

    @property
    def location(self) -> S3Location:
        return S3Location(bucket=self.bucket, key=self.key)


class PartMessage(BaseModel):
    """One part of a run: the whole file, or one byte range of a file fanned out over invocations."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["cdpbridge.part"] = PART_MESSAGE
    integration: str
    location: S3Location
    version: str
    run_id: str
    started_at: datetime
    mapping_key: str
    part_id: str = "0"
    parts: int = Field(default=1, ge=1)
    byte_range: PartRange | None = None
    # A part started after part 0's replay: the retry files that replay wrote, whose users are held
    # in this part too (see RunPart); None for a part that waited for no replay.
    held_from: tuple[str, ...] | None = None
    # Parts that wait for this one's replay of retry files before they start (part 0 only).
    then_parts: tuple[PartMessage, ...] = ()

    @model_serializer(mode="wrap")
    def _without_empty_lists(self, serialize: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Most messages were not held and wait for nothing: they leave those keys out.
        data: dict[str, Any] = serialize(self)
        if data.get("held_from") is None:
            data.pop("held_from", None)
        if not data.get("then_parts"):
            data.pop("then_parts", None)
        return data


class ContinueMessage(PartMessage):
    """A part that stopped at a checkpoint near the deadline; it resumes there."""

    # A narrower tag than the base's: the discriminated union tells the two kinds apart by it.
    type: Literal["cdpbridge.continue"] = CONTINUE_MESSAGE  # type: ignore[assignment]


RunMessage = Annotated[PartMessage | ContinueMessage, Field(discriminator="type")]
ImportMessage = S3TestEvent | S3Notification | RunMessage

IMPORT_MESSAGE: TypeAdapter[ImportMessage] = TypeAdapter(ImportMessage)


class ImportQueueRecord(SqsRecordModel):
    """An SQS record of an import function's queue, its body parsed into the message it carries."""

    body: Json[ImportMessage]
