"""The Currents function's record handler, light to import: the routing loads on the first message
that announces a file, so S3's test event and cold starts never pay for fastavro, boto3 or pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from aws_lambda_powertools import Logger

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from cdpbridge.currents.function import AwsClients
    from cdpbridge.currents.report import RouteReport
    from cdpbridge.currents.settings import CurrentsSettings

logger = Logger(child=True)


def handle_currents_message(
    body: str,
    *,
    lambda_context: LambdaContext | None = None,
    metrics: Metrics | None = None,
    settings: CurrentsSettings | None = None,
    clients: AwsClients | None = None,
) -> RouteReport | None:
    """The whole of the Currents function's record handler; None when the message announces no file."""
    loaded = orjson.loads(body)
    if not isinstance(loaded, dict) or loaded.get("Event") == "s3:TestEvent" or not loaded.get("Records"):
        logger.info("no S3 records in the message (an S3 test event?)")
        return None
    from cdpbridge.currents.function import route_message  # noqa: PLC0415 - see the module docstring

    return route_message(
        body, lambda_context=lambda_context, metrics=metrics, settings=settings, clients=clients
    )
