"""Segment webhook: the Webhooks destination POSTs signed calls to this function's URL."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from cdpbridge.integrations.segment.webhook_runtime import handle_webhook_event

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The signature is checked before anything of the body is read (cdpbridge...segment.webhook).
    return handle_webhook_event(event, metrics)
