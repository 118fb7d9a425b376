"""The engine's handle on one users.track object: where it came from and what to commit on ack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdpbridge.records import RowPosition

Kind = str  # "attributes" | "events" | "purchases"


@dataclass(slots=True)
class ObjectRef:
    """Ties one object of a request back to its source row and to what to commit on ack."""

    position: RowPosition
    user_key: str
    kind: Kind
    body: dict[str, Any]
    digests: dict[str, bytes | None] | None = None
    ledger_id: str | None = None
    data_points: int = 0
    # Attributes an attributes object writes (its digests may hold more entries: record, elements).
    attribute_count: int = 0
