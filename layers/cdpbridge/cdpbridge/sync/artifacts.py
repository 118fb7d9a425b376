"""Where reports, rejects and retry files go: the drop bucket in Lambda, a folder on a laptop."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cdpbridge.mapping.pii import scrub_personal_data
from cdpbridge.records import RowIssue

if TYPE_CHECKING:
    from _csv import Writer

    from mypy_boto3_s3 import S3Client


class ArtifactStore(Protocol):
    """A flat key space of small files (reports, rejects segments, retry files)."""

    def put(self, key: str, data: bytes, content_type: str) -> str:
        """Stores ``data`` under ``key``; returns a location a person can find it at."""
        ...

    def get(self, key: str) -> bytes | None: ...

    def list(self, prefix: str) -> list[str]: ...

    def delete(self, key: str) -> None: ...


class LocalArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"artifact key escapes the report directory: {key!r}")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return str(path)

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.exists() else None

    def list(self, prefix: str) -> list[str]:
        base = self.root
        if not base.exists():
            return []
        keys = (p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())
        return sorted(k for k in keys if k.startswith(prefix) and not k.endswith(".tmp"))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3ArtifactStore:
    def __init__(self, bucket: str, client: S3Client) -> None:
        self.bucket = bucket
        self.client = client

    def put(self, key: str, data: bytes, content_type: str) -> str:
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, ServerSideEncryption="AES256"
        )
        return f"s3://{self.bucket}/{key}"

    def get(self, key: str) -> bytes | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except self.client.exceptions.NoSuchKey:
            return None
        body: bytes = response["Body"].read()
        return body

    def list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(keys)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)


REJECTS_HEADER = ("source", "row", "byte_offset", "column", "reason", "detail")
# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets, which a
# rejects file is opened in; file names, column names and details come from the customer's file
# (a header cell "=cmd|' /C calc'!A0" is data). Such a cell is written with a leading apostrophe,
# which spreadsheets read as "text" and do not show (OWASP's advice on CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """``cell`` as a spreadsheet will show it, never run it."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


class RejectsWriter:
    """Collects rejects as CSV in memory-bounded segments; each segment is stored when flushed."""

    def __init__(
        self, store: ArtifactStore, key_prefix: str, max_buffer_bytes: int = 4 * 1024 * 1024
    ) -> None:
        self.store = store
        self.key_prefix = key_prefix
        self.max_buffer_bytes = max_buffer_bytes
        self.segment_keys: list[str] = []
        self.count = 0
        self._buffer = io.StringIO()
        self._writer = _rejects_writer(self._buffer)

    def add(self, issue: RowIssue) -> None:
        position = issue.position
        # Reasons and details are PII-safe where the mapper wrote them, but readers and Braze quote
        # input in their messages: every free-text field is scrubbed once more on the way out.
        self._writer.writerow(
            (
                spreadsheet_safe(position.source),
                position.row,
                "" if position.offset is None else position.offset,
                spreadsheet_safe(issue.column or ""),
                spreadsheet_safe(scrub_personal_data(issue.reason)),
                spreadsheet_safe(scrub_personal_data(issue.detail)),
            )
        )
        self.count += 1
        if self._buffer.tell() >= self.max_buffer_bytes:
            self.flush()

    def flush(self) -> None:
        data = self._buffer.getvalue()
        if not data:
            return
        key = f"{self.key_prefix}.rejects.{len(self.segment_keys):05d}.csv.part"
        self.store.put(key, data.encode("utf-8"), "text/csv")
        self.segment_keys.append(key)
        self._buffer = io.StringIO()
        self._writer = _rejects_writer(self._buffer)


def _rejects_writer(buffer: io.StringIO) -> Writer:
    # CRLF line ends, as RFC 4180 and spreadsheets have them: csv quotes a cell holding a character
    # of its line terminator, so a CR in a cell (a file name, a detail) is quoted too; with LF line
    # ends it was written bare, and every reader took it for a line end.
    return csv.writer(buffer, lineterminator="\r\n")


def merge_rejects(store: ArtifactStore, segment_keys: list[str], final_key: str) -> str | None:
    """Joins the segments of a run (all invocations, all parts) into one rejects CSV."""
    if not segment_keys:
        return None
    segments = [store.get(key) for key in segment_keys]
    if any(segment is None for segment in segments):
        merged = store.get(final_key)
        if merged is not None:
            # Segments go only after the merged file is stored: this run was merged before (its
            # completion is being repeated), and merging what is left would lose rejects.
            return store.put(final_key, merged, "text/csv")
    header = io.StringIO()
    _rejects_writer(header).writerow(REJECTS_HEADER)
    chunks = [header.getvalue().encode("utf-8")]
    chunks.extend(segment or b"" for segment in segments)
    location = store.put(final_key, b"".join(chunks), "text/csv")
    for key in segment_keys:
        store.delete(key)
    return location


def iter_rejects(data: bytes) -> Iterator[dict[str, Any]]:
    """Reads a merged rejects CSV back (used by the CLI summary and tests)."""
    # The field size limit is process-wide and a source reader may have left a small one: no field
    # of this file is longer than the file.
    csv.field_size_limit(max(csv.field_size_limit(), len(data)))
    # newline="": a CR inside a quoted cell (a file name or detail holding one) is data, not a line end.
    yield from csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
