"""The Currents function's work for one queue message: route every Currents file it announces
(loaded by ``cdpbridge.currents.runtime`` on the first message that announces one).

Files that can never be routed (not in Braze's layout, not Avro, event type and schema disagree)
are reported and dropped; anything else that fails (S3, DynamoDB, Lytics) fails the message, and
its redelivery resumes the file where its committed progress stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from cdpbridge.currents.config import CurrentsConfig, parse_currents_config
from cdpbridge.currents.layout import CurrentsLayoutError, parse_currents_key
from cdpbridge.currents.lytics import LyticsClient, lytics_client
from cdpbridge.currents.notification import ObjectLocation, created_objects
from cdpbridge.currents.outputs import S3OutputStore
from cdpbridge.currents.reader import CurrentsFileError
from cdpbridge.currents.report import RouteReport
from cdpbridge.currents.router import CurrentsRouter, RouterServices
from cdpbridge.currents.settings import CurrentsSettings
from cdpbridge.currents.state import DynamoDbCurrentsState
from cdpbridge.engagement.store import DynamoDbEngagementStore
from cdpbridge.sources.s3 import S3RangeReader
from cdpbridge.state import default_client

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient

logger = Logger(child=True)


@dataclass(frozen=True, slots=True)
class AwsClients:
    s3: S3Client
    secrets: SecretsManagerClient
    dynamodb: DynamoDBClient | None = None


@lru_cache(maxsize=1)
def default_clients() -> AwsClients:
    """The function's clients, made once per container (a client costs tens of milliseconds)."""
    import boto3  # noqa: PLC0415 - only real messages need boto3; S3's test event never loads it

    return AwsClients(boto3.client("s3"), boto3.client("secretsmanager"), default_client())


def load_config(s3: S3Client, settings: CurrentsSettings) -> CurrentsConfig:
    """config/currents.yaml from the drop bucket; the defaults when there is none."""
    try:
        body = s3.get_object(Bucket=settings.drop_bucket, Key=settings.config_key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        logger.info(
            "no Currents config in the bucket: using the defaults", extra={"key": settings.config_key}
        )
        return CurrentsConfig()
    return parse_currents_config(body, f"s3://{settings.drop_bucket}/{settings.config_key}")


def build_services(
    settings: CurrentsSettings, clients: AwsClients, lambda_context: LambdaContext | None
) -> RouterServices:
    config = load_config(clients.s3, settings)
    lytics: LyticsClient | None = None
    if config.routes.lytics.enabled:
        if not settings.lytics_token_secret:
            raise ValueError("the lytics route is on but LYTICS_TOKEN_SECRET names no secret")
        token = clients.secrets.get_secret_value(SecretId=settings.lytics_token_secret)["SecretString"]
        lytics = lytics_client(token.strip(), settings.lytics_url, config.routes.lytics)
    ttl_seconds = config.dedupe.ttl_days * 86_400
    return RouterServices(
        config=config,
        state=DynamoDbCurrentsState(settings.state_table, client=clients.dynamodb, ttl_seconds=ttl_seconds),
        outputs=S3OutputStore(clients.s3, settings.drop_bucket, settings.outbound_prefix),
        lytics=lytics,
        engagement=DynamoDbEngagementStore(
            settings.engagement_table,
            client=clients.dynamodb,
            max_observations=config.routes.engagement.max_observations,
        ),
        time_left_s=(lambda: lambda_context.get_remaining_time_in_millis() / 1000)
        if lambda_context
        else None,
        deadline_margin_s=settings.deadline_margin_ms / 1000,
    )


def route_object(router: CurrentsRouter, s3: S3Client, location: ObjectLocation) -> None:
    try:
        source = parse_currents_key(location.key)
        reader = S3RangeReader(s3, location.bucket, location.key)
        with reader:
            version = reader.etag or location.etag or str(reader.size)
            router.route(reader, source, location=location.url, version=version.strip('"'))
    except (CurrentsLayoutError, CurrentsFileError) as exc:
        router.refuse(location.url, str(exc))


def _once_per_version(
    router: CurrentsRouter,
    settings: CurrentsSettings,
    clients: AwsClients,
    lambda_context: LambdaContext | None,
) -> Callable[[ObjectLocation], None]:
    """Routes a location, guarded by Powertools idempotency when a table is configured.

    The routed-event state makes repeats route nothing new, but two deliveries of one notification
    handled at the same moment would both read "not yet routed"; the idempotency record's
    in-progress state turns the second into a retry that finds the file routed.
    """
    if not settings.idempotency_table:
        return lambda location: route_object(router, clients.s3, location)
    from cdpbridge.state.idempotency import s3_object, s3_object_idempotency  # noqa: PLC0415 - heavy

    guard = s3_object_idempotency(settings.idempotency_table, boto3_client=clients.dynamodb)
    if lambda_context is not None:
        guard.config.register_lambda_context(lambda_context)
    pending: dict[tuple[str, str], ObjectLocation] = {}

    def route_version(*, s3_object: dict[str, str]) -> bool:
        route_object(router, clients.s3, pending[(s3_object["bucket"], s3_object["key"])])
        return True

    guarded = guard.decorate(route_version)

    def route(location: ObjectLocation) -> None:
        pending[(location.bucket, location.key)] = location
        etag = location.etag or clients.s3.head_object(Bucket=location.bucket, Key=location.key)["ETag"]
        guarded(s3_object=s3_object(location.bucket, location.key, etag))

    return route


def route_message(
    body: str,
    *,
    lambda_context: LambdaContext | None = None,
    metrics: Metrics | None = None,
    settings: CurrentsSettings | None = None,
    clients: AwsClients | None = None,
) -> RouteReport | None:
    """Routes the Currents files one SQS body announces; None when it announces none."""
    locations = created_objects(body)
    if not locations:
        logger.info("no created objects in the message (an S3 test event?)")
        return None
    settings = settings or CurrentsSettings.from_env()
    clients = clients or default_clients()
    ours = [location for location in locations if location.key.startswith(settings.currents_prefix)]
    for other in set(locations) - set(ours):
        logger.warning("object outside the Currents prefix ignored", extra={"key": other.key})
    if not ours:
        return None
    services = build_services(settings, clients, lambda_context)
    router = CurrentsRouter(services)
    route = _once_per_version(router, settings, clients, lambda_context)
    try:
        for location in ours:
            route(location)
    finally:
        services.state.close()
        if services.engagement is not None:
            services.engagement.close()
        report = router.report.to_dict()
        logger.info("Currents routed", extra={"report": _loggable(report)})
        if metrics is not None:
            _add_metrics(metrics, router.report)
        if services.lytics is not None:
            services.lytics.close()
    return router.report


def _loggable(report: dict[str, Any]) -> dict[str, Any]:
    # Per-event-type counts and output keys make a large log line; the totals say what happened.
    return {key: value for key, value in report.items() if key not in ("event_types", "outputs")}


def _add_metrics(metrics: Metrics, report: RouteReport) -> None:
    from aws_lambda_powertools.metrics import MetricUnit  # noqa: PLC0415 - with the metrics, not before

    metrics.add_metric(name="CurrentsRecordsRead", unit=MetricUnit.Count, value=report.records_read)
    metrics.add_metric(
        name="CurrentsDuplicatesSkipped", unit=MetricUnit.Count, value=report.duplicates_skipped
    )
    metrics.add_metric(
        name="CurrentsUnreadableRecords", unit=MetricUnit.Count, value=report.unreadable_records
    )
    for route in ("files", "lytics", "engagement"):
        metrics.add_metric(
            name=f"CurrentsRouted{route.capitalize()}",
            unit=MetricUnit.Count,
            value=report.routed.get(route, 0),
        )
