"""How checkpoints are stored as JSON; shared by the DynamoDB and SQLite stores."""

from __future__ import annotations

from typing import Any

import orjson

from cdpbridge.state.contracts import Checkpoint, StateStoreError


def to_json(value: Any, what: str) -> str:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError as exc:
        raise ValueError(f"{what} is not JSON-serialisable: {exc}") from None


def from_json(text: str, where: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise StateStoreError(f"{where}: stored JSON cannot be read: {exc}") from None
    if not isinstance(value, dict):
        raise StateStoreError(f"{where}: stored JSON is not an object")
    return value


def checkpoint_body(checkpoint: Checkpoint, what: str) -> str:
    """Everything of a checkpoint but its part, done flag and summary (stored beside it)."""
    return to_json(
        {
            "run_id": checkpoint.run_id,
            "scope": checkpoint.scope,
            "resume": checkpoint.resume,
            "counters": checkpoint.counters,
            "updated_at": checkpoint.updated_at,
            "parts": checkpoint.parts,
        },
        what,
    )


def decode_checkpoint(
    run_id: str, part: str, *, body_json: str | None, done: bool, summary_json: str | None, where: str
) -> Checkpoint:
    """A stored checkpoint; a part only ever marked done (never saved) has no body."""
    body = from_json(body_json, where) if body_json is not None else {}
    return Checkpoint(
        run_id=str(body.get("run_id", run_id)),
        scope=str(body.get("scope", "")),
        resume=dict(body.get("resume") or {}),
        counters=dict(body.get("counters") or {}),
        updated_at=float(body.get("updated_at", 0.0)),
        parts=dict(body.get("parts") or {}),
        part=part,
        done=done,
        summary=None if summary_json is None else from_json(summary_json, where),
    )
