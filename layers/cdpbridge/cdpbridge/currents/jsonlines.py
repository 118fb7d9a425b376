"""The files route's output: one JSON object per event, every Avro field plus ``event_type``, gzip.

Per record the only Python work is one ``orjson.dumps`` and a byte splice that adds the event
type; compression runs once per chunk. zlib level 1 by default (see FilesRoute.gzip_level).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import orjson

from cdpbridge.currents.layout import CurrentsKey


def output_key(destination: str, source: CurrentsKey, first_index: int) -> str:
    """``<destination>/currents/<event_type>/<YYYY-MM-DD>/<file>.jsonl.gz`` under ``outbound/``.

    ``<file>`` is the source file's name without ``.avro``; a file routed in several segments (it
    resumed after a failure, or is larger than one segment) adds ``.<first record index>`` to each
    later segment's name. Names depend only on where a segment starts, so a segment routed again
    after a crash replaces its own earlier output instead of adding a copy.
    """
    name = source.stem if first_index == 0 else f"{source.stem}.{first_index}"
    return f"{destination}/currents/{source.event_type}/{source.day}/{name}.jsonl.gz"


class JsonLinesGzip:
    """Gzip-compressed JSON lines built in memory, chunk by chunk."""

    def __init__(self, event_type: str, level: int, *, field_names: Sequence[str] = ()) -> None:
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: a gzip member
        self._parts: list[bytes] = []
        self._event_type = event_type
        # A schema with its own "event_type" field keeps its value (never a duplicate key); the
        # file's event type is still in the path.
        self._splice = bool(field_names) and "event_type" not in field_names
        self._suffix = b',"event_type":' + orjson.dumps(event_type) + b"}\n"
        self.records = 0

    def add(self, records: Sequence[dict[str, Any]]) -> None:
        if not records:
            return
        dumps = orjson.dumps
        if self._splice:
            suffix = self._suffix
            # Every Currents record has fields (at least ``id``), so each dump ends "...}" after one.
            body = b"".join([dumps(record)[:-1] + suffix for record in records])
        else:
            event_type = self._event_type
            body = b"".join(
                [
                    dumps({"event_type": event_type, **record}, option=orjson.OPT_APPEND_NEWLINE)
                    for record in records
                ]
            )
        self._parts.append(self._compressor.compress(body))
        self.records += len(records)

    def finish(self) -> bytes:
        self._parts.append(self._compressor.flush())
        data = b"".join(self._parts)
        self._parts = []
        return data
