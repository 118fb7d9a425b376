"""A seekable, read-only file object over S3 GetObject Range requests: nothing is downloaded whole."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from cdpbridge.sources.errors import SourceError, SourceSpecError

if TYPE_CHECKING:
    from collections.abc import Buffer

    from mypy_boto3_s3 import S3Client

logger = Logger(child=True)

DEFAULT_RANGE_BYTES = 8 * 1024 * 1024


def parse_s3_location(location: str) -> tuple[str, str]:
    """Splits ``s3://bucket/key`` (key already URL-decoded by the caller) into bucket and key."""
    if not location.startswith("s3://"):
        raise SourceSpecError(f"not an s3:// location: {location!r}")
    bucket, _, key = location[len("s3://") :].partition("/")
    if not bucket or not key:
        raise SourceSpecError(f"an s3:// location needs a bucket and a key: {location!r}")
    return bucket, key


class S3RangeReader(io.RawIOBase):
    """Reads an S3 object through ranged GETs of ``range_bytes``, keeping one range in memory.

    Ranges are aligned on multiples of ``range_bytes`` so that the short backward seeks zip and Avro
    readers make are served from memory. Every GET carries ``If-Match`` with the ETag seen first:
    an object replaced while it is being read fails loudly instead of mixing two versions.
    """

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        key: str,
        *,
        range_bytes: int = DEFAULT_RANGE_BYTES,
        size: int | None = None,
        etag: str | None = None,
        read_attempts: int = 4,
    ) -> None:
        super().__init__()
        if range_bytes < 1:
            raise SourceSpecError(f"range_bytes must be positive, got {range_bytes}")
        self._client = client
        self.bucket = bucket
        self.key = key
        self.range_bytes = range_bytes
        self._size = size
        self._etag = etag
        self._read_attempts = max(1, read_attempts)
        self._position = 0
        self._chunk = b""
        self._chunk_start = 0
        # How many GetObject calls and bytes this reader made, for metrics and tests.
        self.get_requests = 0
        self.bytes_fetched = 0

    @classmethod
    def from_location(
        cls, client: S3Client, location: str, *, range_bytes: int = DEFAULT_RANGE_BYTES
    ) -> S3RangeReader:
        bucket, key = parse_s3_location(location)
        return cls(client, bucket, key, range_bytes=range_bytes)

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def size(self) -> int:
        if self._size is None:
            head = self._client.head_object(Bucket=self.bucket, Key=self.key)
            self._size = int(head["ContentLength"])
            self._etag = self._etag or head.get("ETag")
        return self._size

    @property
    def etag(self) -> str | None:
        _ = self.size
        return self._etag

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._checkClosed()
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._checkClosed()
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._position + offset
        elif whence == io.SEEK_END:
            target = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        self._position = target
        return target

    def read(self, size: int | None = -1) -> bytes:
        self._checkClosed()
        remaining = self.size - self._position
        wanted = remaining if size is None or size < 0 else min(size, remaining)
        if wanted <= 0:
            return b""
        index = self._position - self._chunk_start
        if index >= 0 and index + wanted <= len(self._chunk):
            # The common case, a read inside the cached range: one copy, no intermediate buffer.
            self._position += wanted
            return self._chunk[index : index + wanted]
        buffer = bytearray(wanted)
        filled = self.readinto(buffer)
        del buffer[filled:]
        return bytes(buffer)

    def readinto(self, buffer: Buffer) -> int:
        self._checkClosed()
        with memoryview(buffer) as raw_view, raw_view.cast("B") as view:
            wanted = len(view)
            filled = 0
            size = self.size
            while filled < wanted and self._position < size:
                index = self._position - self._chunk_start
                if not 0 <= index < len(self._chunk):
                    self._load(self._position - self._position % self.range_bytes)
                    index = self._position - self._chunk_start
                count = min(wanted - filled, len(self._chunk) - index)
                view[filled : filled + count] = self._chunk[index : index + count]
                filled += count
                self._position += count
            return filled

    def readall(self) -> bytes:
        return self.read(-1)

    def close(self) -> None:
        self._chunk = b""
        super().close()

    def _load(self, start: int) -> None:
        end = min(start + self.range_bytes, self.size) - 1
        expected = end - start + 1
        self._chunk = b""
        last_error: Exception | None = None
        for attempt in range(1, self._read_attempts + 1):
            body = self._get_range(start, end)
            try:
                data = body.read()
            except Exception as exc:  # a body cut mid-stream: botocore does not retry those for us
                last_error = exc
                logger.warning(
                    "S3 range read failed, retrying",
                    extra={
                        "bucket": self.bucket,
                        "range_start": start,
                        "attempt": attempt,
                        "error": type(exc).__name__,
                    },
                )
                continue
            finally:
                body.close()
            if len(data) == expected:
                self._chunk = data
                self._chunk_start = start
                self.bytes_fetched += len(data)
                return
            last_error = OSError(f"short range read: {len(data)} of {expected} bytes")
        raise SourceError(self.location, f"could not read bytes {start}-{end}: {last_error}", offset=start)

    def _get_range(self, start: int, end: int) -> Any:
        arguments: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key, "Range": f"bytes={start}-{end}"}
        if self._etag:
            arguments["IfMatch"] = self._etag
        self.get_requests += 1
        try:
            response = self._client.get_object(**arguments)
        except Exception as exc:
            code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
            if code in ("PreconditionFailed", "412"):
                raise SourceError(
                    self.location, "the object was replaced while it was being read", offset=start
                ) from exc
            raise
        return response["Body"]
