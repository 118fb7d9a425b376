"""Amperity import: query results and audience files landing in inbound/amperity/, through SQS."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from cdpbridge.sync.runtime import ImportQueueRecord, handle_import_message

logger = Logger()
metrics = Metrics()
# Each record's body is parsed once, into the message it carries (cdpbridge.sync.messages).
processor = BatchProcessor(event_type=EventType.SQS, model=ImportQueueRecord)


def record_handler(record: ImportQueueRecord, lambda_context: LambdaContext) -> None:
    handle_import_message(record.body, integration="amperity", lambda_context=lambda_context, metrics=metrics)


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
