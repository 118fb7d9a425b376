"""Currents Avro files, streamed block by block through fastavro with the writer schema from the file.

Nothing about a Currents schema is assumed beyond it being a record: event types and fields this
version has never seen decode and pass through unchanged. The event type the key names must agree
with the schema's full name (``dataexport.S3.inner.<event_type>``), so a file landed under the
wrong folder is refused instead of routed as something it is not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import IO, Any, Protocol, cast

import fastavro

Record = dict[str, Any]

# What fastavro raises on bytes that are not valid Avro (a bad header, a sync marker out of place, a
# truncated block, an unknown codec). Anything else, an S3 read that failed above all, is not the
# file's fault: it propagates, and the file is read again rather than reported unreadable.
CORRUPT_DATA: tuple[type[Exception], ...] = (
    ValueError,
    EOFError,
    KeyError,
    IndexError,
    TypeError,
    OverflowError,
)


class ByteStream(Protocol):
    """What the reader needs of a file object: local files and S3 range readers both qualify."""

    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def tell(self) -> int: ...


class CurrentsFileError(ValueError):
    """A file that cannot be read at all (not Avro, not a record schema, wrong event type)."""


@dataclass(frozen=True, slots=True)
class UnreadableRecord:
    """A record that could not be decoded or routed: its index in the file and why."""

    index: int
    reason: str


@dataclass(slots=True)
class Chunk:
    """Consecutive records of a file: ``records`` start at ``first_index``; ``end_index`` is past the
    last record in the chunk, unreadable ones included."""

    first_index: int
    end_index: int
    records: list[Record] = field(default_factory=list)
    unreadable: list[UnreadableRecord] = field(default_factory=list)


def schema_full_name(schema: Any) -> str:
    if not isinstance(schema, dict) or schema.get("type") != "record":
        kind = schema.get("type") if isinstance(schema, dict) else type(schema).__name__
        raise CurrentsFileError(f"the writer schema is a {kind}, not a record")
    name = str(schema.get("name", ""))
    namespace = schema.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


def event_type_matches(full_name: str, event_type: str) -> bool:
    return full_name == event_type or full_name.endswith("." + event_type)


class CurrentsFile:
    """One Currents file open for reading; ``source`` names it in every error."""

    def __init__(self, stream: ByteStream, source: str, event_type: str) -> None:
        self.source = source
        self.event_type = event_type
        self._stream = stream
        stream.seek(0)
        try:
            self._blocks = fastavro.block_reader(cast("IO[bytes]", stream))
        except CORRUPT_DATA as exc:
            raise CurrentsFileError(f"{source}: not a readable Avro file: {exc}") from exc
        schema: Any = self._blocks.writer_schema
        self.schema: dict[str, Any] = schema if isinstance(schema, dict) else {"type": schema}
        try:
            self.schema_name = schema_full_name(self.schema)
        except CurrentsFileError as exc:
            raise CurrentsFileError(f"{source}: {exc}") from exc
        if not event_type_matches(self.schema_name, event_type):
            raise CurrentsFileError(
                f"{source}: the key says event_type={event_type} but the file's schema is {self.schema_name}"
            )

    def chunks(self, start_index: int = 0, size: int = 2_000) -> Iterator[Chunk]:
        """The records from ``start_index`` on, at most ``size`` a chunk, each chunk's records
        consecutive (undecodable records end a chunk, as its ``unreadable`` tail).

        Blocks wholly before ``start_index`` are skipped without decoding their records.
        """
        index = 0
        pending: list[Record] = []
        pending_first = start_index
        blocks = iter(self._blocks)
        while True:
            try:
                block = next(blocks)
            except StopIteration:
                break
            except CORRUPT_DATA as exc:
                # Past a damaged block nothing can be located; what was read before it still counts.
                at = max(index, start_index)
                yield Chunk(
                    pending_first, at + 1, pending, [UnreadableRecord(at, f"corrupt Avro block: {exc}")]
                )
                return
            count: int = block.num_records
            if index + count <= start_index:
                index += count
                continue
            unreadable = self._decode_block(block, max(0, start_index - index), index, pending)
            index += count
            while len(pending) >= size:
                yield Chunk(pending_first, pending_first + size, pending[:size])
                del pending[:size]
                pending_first += size
            if unreadable:
                yield Chunk(pending_first, index, pending, unreadable)
                pending = []
                pending_first = index
        if pending:
            yield Chunk(pending_first, pending_first + len(pending), pending)

    def _decode_block(
        self, block: Any, skip: int, first_index: int, into: list[Record]
    ) -> list[UnreadableRecord]:
        before = len(into)
        try:
            # list.extend keeps what an iterator produced before it raised: the decodable prefix.
            into.extend(islice(iter(block), skip, None))
            return []
        except Exception as exc:  # a record fastavro cannot decode (e.g. a string that is not UTF-8)
            error = exc
        # Records have no markers inside a block: the rest of it cannot be located.
        failed_at = skip + len(into) - before
        count: int = block.num_records
        return [
            UnreadableRecord(
                first_index + position,
                f"undecodable Avro record: {type(error).__name__}: {error}"[:300]
                if position == failed_at
                else "follows an undecodable record in its Avro block",
            )
            for position in range(failed_at, count)
        ]
