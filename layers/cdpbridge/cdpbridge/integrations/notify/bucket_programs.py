"""Notify's programs as the drop bucket holds them: YAML files under ``config/notify/``.

Shared by the planner and the dispatcher (each lists and reads them on every run); the pixel and
the opt-in ingestion read no program, so this module is theirs to leave unloaded.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Final

import yaml
from pydantic import ValidationError

from cdpbridge.integrations.notify.program import ProgramConfig

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PROGRAMS_PREFIX: Final = "config/notify/"


class ProgramLoadError(ValueError):
    """A program file in the bucket is not valid; the message names the key and each bad setting."""


def program_keys(s3: S3Client, bucket: str, prefix: str = PROGRAMS_PREFIX) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(
            item["Key"] for item in page.get("Contents", []) if item["Key"].endswith((".yaml", ".yml"))
        )
    return sorted(keys)


def load_bucket_program(s3: S3Client, bucket: str, key: str, send_date: date) -> ProgramConfig:
    """The program in ``key`` for ``send_date`` (whatever send_date the file may give)."""
    source = f"s3://{bucket}/{key}"
    try:
        document = yaml.safe_load(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except yaml.YAMLError as error:
        raise ProgramLoadError(f"{source}: {error}") from error
    if not isinstance(document, dict):
        raise ProgramLoadError(f"{source}: expected a mapping of program settings")
    try:
        return ProgramConfig.model_validate({**document, "send_date": send_date.isoformat()})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or '(top)'}: {problem['msg']}"
            for problem in error.errors(include_url=False)
        )
        raise ProgramLoadError(f"{source}: {problems}") from error


def event_time(event: Any) -> datetime:
    """The instant a schedule fired (its ``time``), else now."""
    if isinstance(event, dict) and isinstance(event.get("time"), str):
        try:
            return datetime.fromisoformat(event["time"]).astimezone(UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


__all__ = ["PROGRAMS_PREFIX", "ProgramLoadError", "event_time", "load_bucket_program", "program_keys"]
