"""Opening a location as seekable bytes: local path or s3://, then gzip or zip undone transparently."""

from __future__ import annotations

import gzip
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from cdpbridge.sources._io import ByteStream
from cdpbridge.sources.errors import SourceError
from cdpbridge.sources.s3 import S3RangeReader, parse_s3_location
from cdpbridge.sources.spec import Compression, SourceSpec, compression_from_name

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = Logger(child=True)

GZIP_MAGIC = b"\x1f\x8b"
# Local file header, empty archive, spanned archive.
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
# Finder metadata that macOS adds to archives; never data.
_ZIP_NOISE_PREFIX = "__MACOSX/"


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

    @property
    def splittable(self) -> bool:
        return self.compression is Compression.NONE

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
            member = SourceMember(None, location, lambda: gzip.GzipFile(fileobj=raw, mode="rb"))
            return OpenedSource(location, compression, [member], raw)
        if compression is Compression.ZIP:
            return _open_zip(location, raw)

        def rewound_raw() -> ByteStream:
            raw.seek(0)
            return raw

        member = SourceMember(None, location, rewound_raw, owns_stream=False)
        return OpenedSource(location, compression, [member], raw)
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


def _open_zip(location: str, raw: ByteStream) -> OpenedSource:
    try:
        archive = zipfile.ZipFile(raw)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise SourceError(location, f"not a readable zip archive: {exc}") from exc
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
    for info in infos:
        if info.flag_bits & 0x1:
            archive.close()
            raise SourceError(location, f"zip member {info.filename!r} is encrypted")
    several = len(infos) > 1

    def opener(info: zipfile.ZipInfo) -> Callable[[], ByteStream]:
        return lambda: archive.open(info)

    members = [
        SourceMember(info.filename, f"{location}!{info.filename}" if several else location, opener(info))
        for info in infos
    ]
    return OpenedSource(location, Compression.ZIP, members, raw, [archive.close])
