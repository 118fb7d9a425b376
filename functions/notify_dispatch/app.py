"""Notify dispatcher: every 5 minutes, each program's due slots through /campaigns/trigger/send."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from cdpbridge.integrations.notify.dispatch_runtime import dispatch_programs

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dispatch_programs(event, metrics)
