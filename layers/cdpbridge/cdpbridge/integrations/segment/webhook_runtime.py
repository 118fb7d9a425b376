"""What the webhook function builds on its first event: settings, the cached secret, the queue.

Kept apart from the relay's runtime so the webhook's cold start loads no engine, state store or
Braze client: it verifies, queues and answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit

from cdpbridge.braze.keys import SecretsManagerKeyProvider
from cdpbridge.environment import read_environment
from cdpbridge.integrations.segment.webhook import (
    MAX_LISTED_REJECTIONS,
    SqsCallSink,
    WebhookReply,
    WebhookSettings,
    handle_request,
)

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics

logger = Logger(child=True)


@dataclass(slots=True)
class WebhookRuntime:
    settings: WebhookSettings
    secret: SecretsManagerKeyProvider
    sink: SqsCallSink


@cache
def webhook_runtime() -> WebhookRuntime:
    settings = read_environment(WebhookSettings)
    return WebhookRuntime(
        settings,
        SecretsManagerKeyProvider(settings.secret_id, ttl_s=settings.secret_ttl_s),
        SqsCallSink(settings.queue_url, boto3.client("sqs")),
    )


def handle_webhook_event(event: dict[str, Any], metrics: Metrics | None = None) -> dict[str, Any]:
    """The whole of the webhook function: a Function URL event in, its response out."""
    runtime = webhook_runtime()
    try:
        reply = handle_request(
            event,
            secret=runtime.secret.current().encode(),
            max_body_bytes=runtime.settings.max_body_bytes,
            sink=runtime.sink,
        )
    except Exception:
        # Segment retries a 5xx: nothing was queued, or all of it will be queued again (the relay
        # applies a call once whatever the number of deliveries).
        logger.exception("could not queue the calls")
        reply = WebhookReply(503, "could not queue the calls; retry")
    # Reasons and places only: a refused body or call is never logged, it may hold personal data.
    logger.info(
        "webhook request",
        extra={
            "status": reply.status,
            "reason": reply.message if reply.status != HTTPStatus.OK else None,
            "detail": reply.detail,
            "calls": reply.calls,
            "rejected_calls": len(reply.rejected),
            "rejections": [str(item) for item in reply.rejected[:MAX_LISTED_REJECTIONS]],
        },
    )
    if metrics is not None:
        metrics.add_metric(name="WebhookCallsQueued", unit=MetricUnit.Count, value=reply.calls)
        if reply.rejected:
            metrics.add_metric(name="WebhookCallsRejected", unit=MetricUnit.Count, value=len(reply.rejected))
        if reply.status == HTTPStatus.UNAUTHORIZED:
            metrics.add_metric(name="WebhookSignatureRefused", unit=MetricUnit.Count, value=1)
    return reply.function_url_response()


__all__ = ["WebhookRuntime", "handle_webhook_event", "webhook_runtime"]
