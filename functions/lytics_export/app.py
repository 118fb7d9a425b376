"""Lytics export: a Braze segment exported into outbound/lytics/ as a Lytics "Import CSV" file.

Triggered by its EventBridge schedule (Input: the export config or its S3 key, and the segment) and
by the continuation messages it puts on its own queue while Braze is still writing the export.
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from cdpbridge.exports.handlers import continue_export, is_sqs_event, start_export

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    continue_export(record.body, "lytics", lambda_context=lambda_context, metrics=metrics)


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(
    event: dict[str, Any], context: LambdaContext
) -> PartialItemFailureResponse | dict[str, Any]:
    if is_sqs_event(event):
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    return start_export(event, "lytics", lambda_context=context, metrics=metrics)
