"""Where the files route writes: the bucket's ``outbound/`` prefix, or a local folder standing for it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class OutputStore(Protocol):
    def put(self, key: str, data: bytes) -> str:
        """Writes ``data`` under ``key`` (relative to ``outbound/``), replacing any object there;
        returns where it went."""
        ...


class LocalOutputStore:
    """A folder standing for ``outbound/``; files appear whole (written aside, then renamed)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def put(self, key: str, data: bytes) -> str:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return str(target)


class S3OutputStore:
    """``s3://<bucket>/<prefix><key>``; prefix defaults to ``outbound/``."""

    def __init__(self, client: S3Client, bucket: str, prefix: str = "outbound/") -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix

    def put(self, key: str, data: bytes) -> str:
        full_key = self.prefix + key
        self._client.put_object(
            Bucket=self.bucket,
            Key=full_key,
            Body=data,
            ContentType="application/x-ndjson",
            ContentEncoding="gzip",
        )
        return f"s3://{self.bucket}/{full_key}"
