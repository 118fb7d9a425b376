"""The S3 notifications the Currents queue carries, parsed into (bucket, key) locations.

Keys arrive URL-encoded (spaces as "+"): they are decoded here, once, and carried decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote_plus

import orjson
from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class S3Bucket(_Open):
    name: str = Field(min_length=1)


class S3Object(_Open):
    key: str = Field(min_length=1)
    size: int | None = None
    etag: str | None = Field(default=None, alias="eTag")


class S3Entity(_Open):
    bucket: S3Bucket
    object: S3Object


class S3NotificationRecord(_Open):
    event_source: str = Field(alias="eventSource")
    event_name: str = Field(alias="eventName")
    s3: S3Entity


class S3Notification(_Open):
    records: list[S3NotificationRecord] = Field(default_factory=list, alias="Records")


@dataclass(frozen=True, slots=True)
class ObjectLocation:
    bucket: str
    key: str
    etag: str | None = None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def created_objects(body: str | bytes) -> list[ObjectLocation]:
    """The objects an SQS body announces as created; S3's test event and other events announce none."""
    loaded = orjson.loads(body)
    if not isinstance(loaded, dict) or loaded.get("Event") == "s3:TestEvent":
        return []
    notification = S3Notification.model_validate(loaded)
    return [
        ObjectLocation(record.s3.bucket.name, unquote_plus(record.s3.object.key), record.s3.object.etag)
        for record in notification.records
        if record.event_source == "aws:s3" and record.event_name.startswith("ObjectCreated:")
    ]
