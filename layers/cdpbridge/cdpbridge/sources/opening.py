"""Opening a location as seekable bytes: local path or s3://, then gzip or zip undone transparently."""

from __future__ import annotations

import gzip
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from cdpbridge.sources._io import ByteStream
from cdpbridge.sources._text import HEAD_BYTES, read_head, sniff_layout
from cdpbridge.sources.errors import SourceError
from cdpbridge.sources.s3 import S3RangeReader, parse_s3_location
from cdpbridge.sources.spec import Compression, SourceFormat, SourceSpec, compression_from_name

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = Logger(child=True)

GZIP_MAGIC = b"\x1f\x8b"
# Local file header, empty archive, spanned archive.
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
# Finder metadata that macOS adds to archives; never data.
_ZIP_NOISE_PREFIX = "__MACOSX/"
# The compression ratio is judged once this much was decompressed: the first reads of a small,
# very repetitive file may run far above any sane ratio without being a bomb.
RATIO_CHECKED_FROM_BYTES = 16 * 1024 * 1024
# Larger reads from a decompressed gzip stream are made, and checked, in pieces of this size.
_GZIP_READ_PIECE_BYTES = 4 * 1024 * 1024
# zipfile reads ahead as many compressed bytes as the decompressed bytes asked for: reads from a
# zip member are made in small pieces, so that the compressed bytes read stay close to those used.
_ZIP_READ_PIECE_BYTES = 64 * 1024
# Reads of a zip member's compressed data, once the archive's directory is read (zipfile takes
# short reads there; a member header's variable fields are at most 65,535 bytes each).
_ZIP_MEMBER_READ_BYTES = 64 * 1024


class _CountedReads:
    """The compressed file with a count of the bytes read from it (seeks are not reads).

    ``max_read`` caps each read once set: zipfile reads a member's compressed data in reads as
    large as the decompressed size asked for, which would count a bomb's whole compressed data as
    read before its first megabyte is decompressed.
    """

    __slots__ = ("_raw", "bytes_read", "max_read")

    def __init__(self, raw: ByteStream) -> None:
        self._raw = raw
        self.bytes_read = 0
        self.max_read: int | None = None

    def read(self, size: int = -1, /) -> bytes:
        if self.max_read is not None and (size < 0 or size > self.max_read):
            size = self.max_read
        data = self._raw.read(size)
        self.bytes_read += len(data)
        return data

    def seek(self, offset: int, whence: int = 0, /) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def seekable(self) -> bool:  # zipfile asks
        return True

    def close(self) -> None:
        self._raw.close()


class _DecompressionLimit:
    """A decompressed stream that stops with a SourceError naming the file once it has given more
    than ``max_decompressed_bytes``, or more than ``max_compression_ratio`` times the compressed
    bytes read for it. It is checked on every read, so a bomb costs the limit, not its size."""

    __slots__ = (
        "_compressed",
        "_compressed_before",
        "_inner",
        "_max_bytes",
        "_max_ratio",
        "_piece_bytes",
        "_position",
        "_source",
    )

    def __init__(
        self, inner: ByteStream, source: str, compressed: _CountedReads, spec: SourceSpec, *, piece_bytes: int
    ) -> None:
        self._inner = inner
        self._piece_bytes = piece_bytes
        self._source = source
        self._compressed = compressed
        # The archive's directory and earlier members were read before this member.
        self._compressed_before = compressed.bytes_read
        self._max_bytes = spec.max_decompressed_bytes
        self._max_ratio = spec.max_compression_ratio
        self._position = 0

    def read(self, size: int = -1, /) -> bytes:
        piece_bytes = self._piece_bytes
        if 0 <= size <= piece_bytes:
            data = self._inner.read(size)
            self._advance(len(data))
            return data
        # Never one unbounded read: it would decompress all of a bomb before any check (and a
        # buffered stream allocates the size asked for up front).
        pieces: list[bytes] = []
        wanted = size
        while wanted != 0:
            piece = self._inner.read(piece_bytes if wanted < 0 else min(wanted, piece_bytes))
            if not piece:
                break
            self._advance(len(piece))
            pieces.append(piece)
            if wanted > 0:
                wanted -= len(piece)
        return b"".join(pieces)

    def seek(self, offset: int, whence: int = 0, /) -> int:
        target = offset + (self._position if whence == 1 else 0)
        if whence == 2 or target < self._position:
            # A seek back starts decompressing again from the start: the compressed bytes count
            # from there, or the ratio of a file read twice would be judged on half its bytes.
            self._compressed_before = self._compressed.bytes_read
        # A forward seek decompresses up to there inside the stream; it is checked once done.
        self._position = self._inner.seek(offset, whence)
        self._advance(0)
        return self._position

    def tell(self) -> int:
        return self._inner.tell()

    def close(self) -> None:
        self._inner.close()

    def _advance(self, count: int) -> None:
        self._position += count
        decompressed = self._position
        if decompressed > self._max_bytes:
            reason = (
                f"decompresses to more than {self._max_bytes} bytes, the limit max_decompressed_bytes "
                "sets (a decompression bomb, or a file to split or to read with a higher limit)"
            )
            raise SourceError(self._source, reason, offset=self._max_bytes)
        if decompressed <= RATIO_CHECKED_FROM_BYTES:
            return
        compressed = max(1, self._compressed.bytes_read - self._compressed_before)
        if decompressed > self._max_ratio * compressed:
            reason = (
                f"{compressed} compressed bytes decompress to more than {decompressed} "
                f"({decompressed // compressed} times as many), above the max_compression_ratio of "
                f"{self._max_ratio:g}: a decompression bomb, or a file to read with a higher limit"
            )
            raise SourceError(self._source, reason, offset=decompressed)


def decompresses_as_read(stream: object) -> bool:
    """Whether ``stream`` is a gzip or zip member decompressed as it is read (under its limits): such
    a stream cannot seek from its end, which a reader of footers (Parquet) needs."""
    return isinstance(stream, _DecompressionLimit | gzip.GzipFile | zipfile.ZipExtFile)


def open_raw(location: str, *, s3_client: S3Client | None = None, range_bytes: int) -> ByteStream:
    """The undecoded bytes of ``location`` as a seekable binary file object."""
    if location.startswith("s3://"):
        bucket, key = parse_s3_location(location)
        if s3_client is None:
            import boto3  # noqa: PLC0415  (only S3 locations pay for importing boto3)

            s3_client = boto3.client("s3")
        reader = S3RangeReader(s3_client, bucket, key, range_bytes=range_bytes)
        try:
            _ = reader.size
        except Exception as exc:
            code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                raise SourceError(location, "no such object") from exc
            raise
        return reader
    path = location.removeprefix("file://")
    try:
        return open(path, "rb")
    except FileNotFoundError as exc:
        raise SourceError(location, "no such file") from exc
    except IsADirectoryError as exc:
        raise SourceError(location, "is a directory, not a file") from exc


def sniff_compression(raw: ByteStream) -> Compression:
    """What the magic bytes at the start of ``raw`` say; leaves ``raw`` at offset 0."""
    raw.seek(0)
    head = raw.read(4)
    raw.seek(0)
    if head[:2] == GZIP_MAGIC:
        return Compression.GZIP
    if head in ZIP_MAGICS:
        return Compression.ZIP
    return Compression.NONE


@dataclass(frozen=True, slots=True)
class SourceMember:
    """One stream of rows inside a location: the file itself, or one member of a zip archive."""

    # The zip member name, None when the location is not a zip.
    name: str | None
    # What RowPosition.source says for rows of this member.
    source: str
    open: Callable[[], ByteStream]
    # False when ``open`` hands out the shared raw file, which the OpenedSource closes.
    owns_stream: bool = True


@dataclass(slots=True)
class OpenedSource:
    """A location opened for reading; owns the raw file and any archive around it."""

    location: str
    compression: Compression
    members: list[SourceMember]
    raw: ByteStream
    _closers: list[Callable[[], None]] = field(default_factory=list)
    # The readers see other bytes than the file's (UTF-16 re-encoded, CR line ends read as LF):
    # byte ranges of the file would not be ranges of what they read.
    rewritten_text: bool = False

    @property
    def splittable(self) -> bool:
        return self.compression is Compression.NONE and not self.rewritten_text

    def close(self) -> None:
        for closer in reversed(self._closers):
            closer()
        self._closers.clear()
        self.raw.close()


def open_source(location: str, spec: SourceSpec, *, s3_client: S3Client | None = None) -> OpenedSource:
    raw = open_raw(location, s3_client=s3_client, range_bytes=spec.s3_range_bytes)
    try:
        compression = _decide_compression(location, spec, raw)
        if compression is Compression.GZIP:
            counted = _CountedReads(raw)

            def open_gzip() -> ByteStream:
                unpacked = gzip.GzipFile(fileobj=counted, mode="rb")
                return _DecompressionLimit(
                    unpacked, location, counted, spec, piece_bytes=_GZIP_READ_PIECE_BYTES
                )

            return OpenedSource(location, compression, [SourceMember(None, location, open_gzip)], raw)
        if compression is Compression.ZIP:
            return _open_zip(location, raw, spec)

        def rewound_raw() -> ByteStream:
            raw.seek(0)
            return raw

        member = SourceMember(None, location, rewound_raw, owns_stream=False)
        rewritten = False
        if spec.format.is_delimited or spec.format is SourceFormat.JSONL:
            head = read_head(raw, HEAD_BYTES, spec.read_chunk_bytes)
            rewritten = sniff_layout(head, whole_file=len(head) < HEAD_BYTES).rewritten
        return OpenedSource(location, compression, [member], raw, rewritten_text=rewritten)
    except BaseException:
        raw.close()
        raise


def _decide_compression(location: str, spec: SourceSpec, raw: ByteStream) -> Compression:
    sniffed = sniff_compression(raw)
    if spec.compression is Compression.AUTO:
        named = compression_from_name(location)
        if named is not Compression.NONE and named is not sniffed:
            # The content wins: CDPs do name plain files .gz now and then.
            logger.warning(
                "file name and content disagree on compression; reading by content",
                extra={"named": str(named), "content": str(sniffed)},
            )
        return sniffed
    if spec.compression is not Compression.NONE and spec.compression is not sniffed:
        raise SourceError(
            location, f"the source spec says {spec.compression} but the file content is {sniffed}", offset=0
        )
    return spec.compression


def _open_zip(location: str, raw: ByteStream, spec: SourceSpec) -> OpenedSource:
    counted = _CountedReads(raw)
    try:
        archive = zipfile.ZipFile(counted)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise SourceError(location, f"not a readable zip archive: {exc}") from exc
    counted.max_read = _ZIP_MEMBER_READ_BYTES
    infos = sorted(
        (
            info
            for info in archive.infolist()
            if not info.is_dir() and not info.filename.startswith(_ZIP_NOISE_PREFIX)
        ),
        key=lambda info: info.filename,
    )
    if not infos:
        archive.close()
        raise SourceError(location, "the zip archive holds no files")
    archive_size = raw.seek(0, 2)
    for info in infos:
        if info.flag_bits & 0x1:
            archive.close()
            raise SourceError(location, f"zip member {info.filename!r} is encrypted")
        if info.header_offset + info.compress_size > archive_size:
            # A corrupt directory: zipfile would read on past the member's data, and fail or not
            # depending on how the reads fall, so that a resumed read could fail where a whole one
            # did not.
            archive.close()
            reason = (
                f"zip member {info.filename!r} claims {info.compress_size} compressed bytes, "
                f"more than the archive's {archive_size} (a corrupt archive)"
            )
            raise SourceError(location, reason)
    several = len(infos) > 1

    def opener(info: zipfile.ZipInfo, source: str) -> Callable[[], ByteStream]:
        return lambda: _DecompressionLimit(
            archive.open(info), source, counted, spec, piece_bytes=_ZIP_READ_PIECE_BYTES
        )

    sources = [f"{location}!{info.filename}" if several else location for info in infos]
    members = [
        SourceMember(info.filename, source, opener(info, source))
        for info, source in zip(infos, sources, strict=True)
    ]
    return OpenedSource(location, Compression.ZIP, members, raw, [archive.close])
