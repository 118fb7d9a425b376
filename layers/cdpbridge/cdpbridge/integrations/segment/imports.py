"""The Segment import function's record handler: the shared import, then the file's cohorts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdpbridge.sync.messages import ImportMessage, S3Notification
from cdpbridge.sync.runtime import handle_import_message

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.utilities.typing import LambdaContext


def handle_segment_import_message(
    message: ImportMessage, *, lambda_context: LambdaContext | None = None, metrics: Metrics | None = None
) -> None:
    handle_import_message(message, integration="segment", lambda_context=lambda_context, metrics=metrics)
    if isinstance(message, S3Notification):
        # Loaded on the first file: cohorts need boto3 and the Braze client, the S3 test event does not.
        from cdpbridge.integrations.segment.file_cohorts import sync_notified_cohorts  # noqa: PLC0415

        sync_notified_cohorts(message)
