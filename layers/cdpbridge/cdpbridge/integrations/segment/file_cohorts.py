"""Cohorts from Segment's S3 files: after a file's users.track run, its audience calls as cohort changes.

The import engine sends users.track only; when ``options.cohorts.enabled`` the Segment import
function reads the file once more, keeping only audience membership calls (a few bytes each), and
sends the changes through the Cohort Import API. It runs after the file's own run so the users it
names exist in Braze (cohort import adds only existing users).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from pydantic import Field

from cdpbridge.braze import BrazeClient
from cdpbridge.environment import EnvironmentSettings, read_function_environment
from cdpbridge.integrations.segment.cohorts import (
    CohortSyncResult,
    collect,
    read_cohort_credentials,
    sync_cohorts,
)
from cdpbridge.integrations.segment.options import segment_options
from cdpbridge.mapping import MappingConfig, load_mapping
from cdpbridge.records import SourceRow
from cdpbridge.sources import open_rows

if TYPE_CHECKING:
    from cdpbridge.sync.messages import S3Notification

logger = Logger(child=True)
INBOUND_PREFIX = "inbound/segment/"


class FileCohortSettings(EnvironmentSettings):
    """What the Segment import function needs for cohorts, besides the import settings."""

    drop_bucket: str = Field(min_length=3, alias="DROP_BUCKET")
    mapping_prefix: str = Field(default="config/", alias="MAPPING_PREFIX")
    # The template names the integration's own secrets <stack>-segment-*; the cohort credentials
    # are <prefix>cohorts unless SEGMENT_COHORT_SECRET names another secret.
    secrets_prefix: str | None = Field(default=None, alias="INTEGRATION_SECRETS_PREFIX")
    explicit_cohort_secret: str | None = Field(default=None, alias="SEGMENT_COHORT_SECRET")

    @property
    def cohort_secret(self) -> str | None:
        if self.explicit_cohort_secret:
            return self.explicit_cohort_secret
        return f"{self.secrets_prefix}cohorts" if self.secrets_prefix else None


@dataclass(slots=True)
class FileCohortRuntime:
    settings: FileCohortSettings
    client: BrazeClient
    s3: Any


@cache
def file_cohort_runtime() -> FileCohortRuntime:
    environment = read_function_environment(FileCohortSettings)
    return FileCohortRuntime(environment.function, environment.braze_client(), boto3.client("s3"))


def mapping_candidates(key: str, mapping_prefix: str) -> list[str]:
    """config/segment/<feed>.yaml for files under a feed folder, then config/segment.yaml (as the import)."""
    relative = key.removeprefix(INBOUND_PREFIX)
    names = [f"segment/{relative.split('/', 1)[0]}"] if "/" in relative else []
    names.append("segment")
    return [f"{mapping_prefix}{name}.{ext}" for name in names for ext in ("yaml", "yml", "json")]


def _mapping(runtime: FileCohortRuntime, bucket: str, key: str) -> MappingConfig | None:
    for candidate in mapping_candidates(key, runtime.settings.mapping_prefix):
        try:
            body = runtime.s3.get_object(Bucket=bucket, Key=candidate)["Body"].read()
        except runtime.s3.exceptions.NoSuchKey:
            continue
        return load_mapping(body.decode("utf-8"))
    return None  # the import run reported the missing config


def sync_file_cohorts(bucket: str, key: str) -> CohortSyncResult | None:
    """The cohort changes of one file, sent; None when cohorts are off for it."""
    runtime = file_cohort_runtime()
    config = _mapping(runtime, bucket, key)
    if config is None:
        return None
    options = segment_options(config)
    if not options.cohorts.enabled:
        return None
    if not runtime.settings.cohort_secret:
        raise ValueError("SEGMENT_COHORT_SECRET: required when options.cohorts.enabled is true")
    with open_rows(f"s3://{bucket}/{key}", config.source.reader_spec(), s3_client=runtime.s3) as rows:
        changes = collect((row.values for row in rows if isinstance(row, SourceRow)), options)
    credentials = read_cohort_credentials(runtime.settings.cohort_secret, boto3.client("secretsmanager"))
    result = sync_cohorts(changes, runtime.client, credentials, options)
    logger.info("cohorts synced", extra={"key": key, "cohorts": result.cohorts, "ids": result.ids_sent})
    return result


def sync_notified_cohorts(notification: S3Notification) -> None:
    for record in notification.records:
        if record.is_object_created:
            sync_file_cohorts(record.s3.bucket.name, record.s3.object.key)


__all__ = ["FileCohortSettings", "mapping_candidates", "sync_file_cohorts", "sync_notified_cohorts"]
