"""The import functions' record handler, light to import: the engine loads on the first real message.

Keeping the handler module's import small keeps cold starts short; S3's test event and every
other message that needs no run never pay for the engine, boto3 or the Braze client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from cdpbridge.sync.messages import ImportMessage, ImportQueueRecord, S3TestEvent

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(child=True)


def handle_import_message(
    message: ImportMessage,
    *,
    integration: str,
    lambda_context: LambdaContext | None = None,
    metrics: Metrics | None = None,
) -> None:
    """The whole of an import function's record handler, given the record's parsed body."""
    if isinstance(message, S3TestEvent):
        logger.info("ignored the S3 test event")
        return
    from cdpbridge.sync.import_runtime import handle_message  # noqa: PLC0415 - see the module docstring

    handle_message(message, integration=integration, lambda_context=lambda_context, metrics=metrics)


__all__ = ["ImportQueueRecord", "handle_import_message"]
