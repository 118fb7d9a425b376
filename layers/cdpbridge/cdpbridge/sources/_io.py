"""The small file-object surface the readers rely on (plain files, S3 ranges, gzip and zip members)."""

from __future__ import annotations

from typing import Protocol


class ByteStream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def tell(self) -> int: ...

    def close(self) -> None: ...
