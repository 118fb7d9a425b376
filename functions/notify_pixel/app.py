"""Notify tracking pixel: a Function URL answering a 1x1 GIF; a good token records an e-mail open."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from cdpbridge.integrations.notify.runtime import handle_pixel_request

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_pixel_request(event, metrics)
