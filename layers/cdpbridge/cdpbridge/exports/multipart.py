"""A write-only stream into one S3 object, uploaded in parts as it fills (memory stays at one part)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# S3 multipart parts must be at least 5 MiB (all but the last).
MIN_PART_BYTES: Final = 5 * 1024 * 1024


class S3StreamingUpload(io.RawIOBase):
    """A write-only stream into one S3 object: parts of ``part_bytes`` go up as they fill.

    Small objects end as one PutObject; big ones as a multipart upload, so memory stays at one part
    whatever the size. ``complete()`` finishes the object, ``abort()`` drops what was uploaded.
    """

    def __init__(
        self, s3: S3Client, bucket: str, key: str, *, content_type: str, part_bytes: int = 8 * 1024 * 1024
    ) -> None:
        super().__init__()
        if part_bytes < MIN_PART_BYTES:
            raise ValueError(f"multipart parts must be at least {MIN_PART_BYTES} bytes")
        self.s3 = s3
        self.bucket = bucket
        self.key = key
        self.content_type = content_type
        self.part_bytes = part_bytes
        self.bytes_written = 0
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._finished = False
        self._aborted = False

    def writable(self) -> bool:
        return True

    @property
    def buffered_bytes(self) -> int:
        """What is held in memory, waiting to fill a part."""
        return len(self._buffer)

    def write(self, data: Any) -> int:
        if self._aborted:
            # What a writer still flushes after a failure has nowhere to go.
            return len(data)
        if self._finished:
            raise ValueError(f"s3://{self.bucket}/{self.key}: the upload is already finished")
        chunk = bytes(data)
        self._buffer += chunk
        self.bytes_written += len(chunk)
        while len(self._buffer) >= self.part_bytes:
            self._upload_part(bytes(self._buffer[: self.part_bytes]))
            del self._buffer[: self.part_bytes]
        return len(chunk)

    def _upload_part(self, body: bytes) -> None:
        if self._upload_id is None:
            created = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType=self.content_type, ServerSideEncryption="AES256"
            )
            self._upload_id = created["UploadId"]
        number = len(self._parts) + 1
        answer = self.s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        self._parts.append({"ETag": answer["ETag"], "PartNumber": number})

    def complete(self) -> str:
        """Finishes the object; returns its s3:// location."""
        if self._finished:
            raise ValueError(f"s3://{self.bucket}/{self.key}: the upload is already finished")
        if self._upload_id is None:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=bytes(self._buffer),
                ContentType=self.content_type,
                ServerSideEncryption="AES256",
            )
        else:
            if self._buffer:
                self._upload_part(bytes(self._buffer))
            self.s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},  # type: ignore[typeddict-item]
            )
        self._buffer.clear()
        self._finished = True
        return f"s3://{self.bucket}/{self.key}"

    def abort(self) -> None:
        if self._upload_id is not None and not self._finished:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)
        self._buffer.clear()
        self._finished = True
        self._aborted = True
