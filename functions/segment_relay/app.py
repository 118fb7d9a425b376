"""Segment relay: the calls the webhook queued, sent to Braze a batch of queue messages at a time."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from cdpbridge.integrations.segment.relay import QueuedMessage
from cdpbridge.integrations.segment.runtime import handle_relay_batch

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # The whole batch goes through one engine run (full users.track requests across messages), so
    # the batch is handled at once rather than record by record; failures are reported per message.
    records = [QueuedMessage(record.message_id, record.body) for record in SQSEvent(event).records]
    outcome = handle_relay_batch(records, batch_id=context.aws_request_id, metrics=metrics)
    return {
        "batchItemFailures": [{"itemIdentifier": message_id} for message_id in outcome.failed_message_ids]
    }
