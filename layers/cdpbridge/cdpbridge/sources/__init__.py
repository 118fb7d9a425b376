"""Streaming readers: CSV/TSV/PSV, JSON lines, JSON arrays and Avro; gzip and zip; S3 ranged reads.

Every reader keeps memory flat whatever the file size, numbers data rows from 1, records the byte
offset where each row starts, turns bad rows into RejectedRow, and can resume or read one byte
range of a file with exactly the positions a sequential read gives.
"""

from cdpbridge.sources.cursor import ByteRange, ResumePoint
from cdpbridge.sources.errors import SourceError, SourceSpecError
from cdpbridge.sources.planning import plan_byte_ranges
from cdpbridge.sources.s3 import S3RangeReader, parse_s3_location
from cdpbridge.sources.spec import Compression, SourceFormat, SourceSpec, infer_format
from cdpbridge.sources.stream import RowStream, open_rows

__all__ = [
    "ByteRange",
    "Compression",
    "ResumePoint",
    "RowStream",
    "S3RangeReader",
    "SourceError",
    "SourceFormat",
    "SourceSpec",
    "SourceSpecError",
    "infer_format",
    "open_rows",
    "parse_s3_location",
    "plan_byte_ranges",
]
