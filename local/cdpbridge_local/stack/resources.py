"""Creates a template's resources in moto, in dependency order, and answers Ref and Fn::GetAtt for them."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdpbridge_local.stack.events import is_s3_test_event
from cdpbridge_local.stack.function_urls import FunctionUrlSpec
from cdpbridge_local.stack.functions import FunctionSpec, ScheduleTrigger, SqsTrigger
from cdpbridge_local.stack.intrinsics import (
    IntrinsicResolver,
    ResolutionScope,
    TemplateResolutionError,
    as_cfn_string,
)
from cdpbridge_local.stack.template import SERVERLESS_FUNCTION, SamTemplate

logger = logging.getLogger(__name__)

# The value of a secret the template creates (the emulator accepts it as a REST API key).
LOCAL_API_KEY = "local-dev-key"

_BUCKET = "AWS::S3::Bucket"
_QUEUE = "AWS::SQS::Queue"
_TABLE = "AWS::DynamoDB::Table"
_SECRET = "AWS::SecretsManager::Secret"  # nosec B105 # noqa: S105 - a resource type
_LAYERS = ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion")
# Resources without a local counterpart: they get a physical name (from their naming property if
# set) so that Ref and Fn::GetAtt work, and nothing else.
_NAMING_PROPERTY = {
    "AWS::SNS::Topic": "TopicName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Events::Rule": "Name",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::Serverless::LayerVersion": "LayerName",
    "AWS::Lambda::LayerVersion": "LayerName",
    SERVERLESS_FUNCTION: "FunctionName",
}
# Queue properties that are queue attributes under the same name.
_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
)


class LocalStackError(RuntimeError):
    """The template asks for something the local stack cannot provide; the message says what."""


@dataclass(slots=True)
class ProvisionedResource:
    """A resource as created: its Ref value and the attributes Fn::GetAtt can ask for."""

    logical_id: str
    type: str
    physical_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    # False for resource types that exist only as names locally (alarms, roles, ...).
    created: bool = False


@dataclass(frozen=True, slots=True)
class BucketNotification:
    bucket: str
    queue_arn: str
    events: tuple[str, ...]
    prefix: str = ""
    suffix: str = ""

    def matches(self, event_name: str, key: str) -> bool:
        if not key.startswith(self.prefix) or not key.endswith(self.suffix):
            return False
        return any(_event_matches(pattern, event_name) for pattern in self.events)


def _event_matches(pattern: str, event_name: str) -> bool:
    pattern = pattern.removeprefix("s3:")
    event_name = event_name.removeprefix("s3:")
    if pattern.endswith(":*"):
        return event_name.startswith(pattern[:-1])
    return pattern == event_name


@dataclass(slots=True)
class AwsClients:
    s3: Any
    sqs: Any
    dynamodb: Any
    secretsmanager: Any


class StackResources:
    """Everything the template creates, keyed by logical id."""

    def __init__(
        self,
        template: SamTemplate,
        parameters: Mapping[str, Any],
        pseudo_parameters: Mapping[str, Any],
        clients: AwsClients,
        *,
        keep_s3_test_events: bool = False,
        secret_values: Mapping[str, str] | None = None,
    ) -> None:
        self.template = template
        self.stack_name = str(pseudo_parameters["AWS::StackName"])
        self.region = str(pseudo_parameters["AWS::Region"])
        self.account_id = str(pseudo_parameters["AWS::AccountId"])
        self.clients = clients
        self.keep_s3_test_events = keep_s3_test_events
        self.secret_values = dict(secret_values or {})
        self.provisioned: dict[str, ProvisionedResource] = {}
        self.notifications: list[BucketNotification] = []
        self._in_progress: list[str] = []
        self.resolver = IntrinsicResolver(
            ResolutionScope(
                parameters=parameters,
                pseudo_parameters=pseudo_parameters,
                mappings=template.mappings,
                conditions=template.conditions,
                ref=self.ref,
                get_att=self.get_att,
                azs=[f"{self.region}{zone}" for zone in "abc"],
            )
        )

    # ------------------------------------------------------------------ lookups
    def is_active(self, logical_id: str) -> bool:
        condition = self.template.resources[logical_id].get("Condition")
        return condition is None or self.resolver.condition(as_cfn_string(condition))

    def active_ids(self) -> list[str]:
        return [logical_id for logical_id in self.template.resources if self.is_active(logical_id)]

    def ref(self, logical_id: str) -> Any:
        return self.ensure(logical_id).physical_id

    def get_att(self, logical_id: str, attribute: str) -> Any:
        resource = self.ensure(logical_id)
        if attribute not in resource.attributes:
            known = ", ".join(sorted(resource.attributes)) or "none"
            raise TemplateResolutionError(
                f"Fn::GetAtt {logical_id}.{attribute}: the local stack knows these attributes of "
                f"{resource.type}: {known}"
            )
        return resource.attributes[attribute]

    def resolve(self, value: Any, where: str) -> Any:
        return self.resolver.resolve(value, where)

    def properties(self, logical_id: str) -> dict[str, Any]:
        properties: dict[str, Any] = self.template.resources[logical_id].get("Properties") or {}
        return properties

    def resolved_property(self, logical_id: str, name: str, default: Any = None) -> Any:
        raw = self.properties(logical_id).get(name)
        if raw is None:
            return default
        return self.resolve(raw, f"Resources.{logical_id}.Properties.{name}")

    def by_type(self, *types: str) -> list[ProvisionedResource]:
        return [resource for resource in self.provisioned.values() if resource.type in types]

    def queue_by_arn(self, arn: str) -> ProvisionedResource | None:
        for resource in self.by_type(_QUEUE):
            if resource.attributes["Arn"] == arn:
                return resource
        return None

    # ------------------------------------------------------------------ provisioning
    def provision_all(self) -> None:
        for logical_id in self.active_ids():
            self.ensure(logical_id)

    def ensure(self, logical_id: str) -> ProvisionedResource:
        if logical_id in self.provisioned:
            return self.provisioned[logical_id]
        if logical_id not in self.template.resources:
            raise TemplateResolutionError(
                f"{logical_id!r} is neither a parameter nor a resource of the template"
            )
        if not self.is_active(logical_id):
            condition = self.template.resources[logical_id].get("Condition")
            raise TemplateResolutionError(
                f"{logical_id} is referred to but not created: its condition {condition} is false"
            )
        if logical_id in self._in_progress:
            cycle = " -> ".join([*self._in_progress, logical_id])
            raise TemplateResolutionError(f"resources depend on each other in a cycle: {cycle}")
        self._in_progress.append(logical_id)
        try:
            body = self.template.resources[logical_id]
            depends_on = body.get("DependsOn") or []
            for dependency in [depends_on] if isinstance(depends_on, str) else depends_on:
                self.ensure(dependency)
            resource = self._provision(logical_id, str(body.get("Type")))
        finally:
            self._in_progress.pop()
        self.provisioned[logical_id] = resource
        if resource.type == _BUCKET:
            # Configured once the bucket can be referred to: the queue policy may name it.
            self._configure_notifications(resource)
        return resource

    def _default_name(self, logical_id: str, max_length: int = 80) -> str:
        return f"{self.stack_name}-{logical_id}"[:max_length]

    def _provision(self, logical_id: str, resource_type: str) -> ProvisionedResource:
        if resource_type == _BUCKET:
            return self._create_bucket(logical_id)
        if resource_type == _QUEUE:
            return self._create_queue(logical_id)
        if resource_type == _TABLE:
            return self._create_table(logical_id)
        if resource_type == _SECRET:
            return self._create_secret(logical_id)
        return self._declare(logical_id, resource_type)

    def _create_bucket(self, logical_id: str) -> ProvisionedResource:
        name = self.resolved_property(logical_id, "BucketName")
        if name is None:
            name = re.sub(r"[^a-z0-9-]", "-", self._default_name(logical_id, 63).lower())
        name = as_cfn_string(name)
        if self.region == "us-east-1":
            self.clients.s3.create_bucket(Bucket=name)
        else:
            self.clients.s3.create_bucket(
                Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.region}
            )
        return ProvisionedResource(
            logical_id,
            _BUCKET,
            name,
            {
                "Arn": f"arn:aws:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{self.region}.amazonaws.com",
                "DualStackDomainName": f"{name}.s3.dualstack.{self.region}.amazonaws.com",
                "WebsiteURL": f"http://{name}.s3-website-{self.region}.amazonaws.com",
            },
            created=True,
        )

    def _configure_notifications(self, bucket: ProvisionedResource) -> None:
        configuration = self.resolved_property(bucket.logical_id, "NotificationConfiguration") or {}
        where = f"Resources.{bucket.logical_id}.Properties.NotificationConfiguration"
        for unsupported in ("LambdaConfigurations", "TopicConfigurations", "EventBridgeConfiguration"):
            if configuration.get(unsupported):
                raise LocalStackError(f"{where}.{unsupported} is not supported by the local stack")
        queue_configurations: list[dict[str, Any]] = []
        for index, entry in enumerate(configuration.get("QueueConfigurations") or []):
            rules = ((entry.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []
            filters = {str(rule["Name"]).lower(): str(rule["Value"]) for rule in rules}
            queue_arn = str(entry["Queue"])
            if self.queue_by_arn(queue_arn) is None:
                raise LocalStackError(
                    f"{where}.QueueConfigurations[{index}]: {queue_arn} is not a queue of the stack"
                )
            notification = BucketNotification(
                bucket=bucket.physical_id,
                queue_arn=queue_arn,
                events=(str(entry["Event"]),),
                prefix=filters.get("prefix", ""),
                suffix=filters.get("suffix", ""),
            )
            self.notifications.append(notification)
            api_entry: dict[str, Any] = {"QueueArn": queue_arn, "Events": [str(entry["Event"])]}
            if rules:
                api_entry["Filter"] = {
                    "Key": {
                        "FilterRules": [{"Name": name, "Value": value} for name, value in filters.items()]
                    }
                }
            queue_configurations.append(api_entry)
        if not queue_configurations:
            return
        # moto delivers matching ObjectCreated events to the queues itself, URL-encoding the key.
        self.clients.s3.put_bucket_notification_configuration(
            Bucket=bucket.physical_id,
            NotificationConfiguration={"QueueConfigurations": queue_configurations},
        )
        if not self.keep_s3_test_events:
            for queue_arn in {entry["QueueArn"] for entry in queue_configurations}:
                queue = self.queue_by_arn(queue_arn)
                assert queue is not None
                self._delete_s3_test_events(queue.physical_id)

    def _delete_s3_test_events(self, queue_url: str) -> None:
        """S3 sends a test event when notifications are configured; a deployed stack sees it once at
        creation, long before any file lands, so the local stack drops it to keep runs deterministic."""
        while True:
            messages = self.clients.sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0
            ).get("Messages", [])
            test_events = [message for message in messages if is_s3_test_event(message["Body"])]
            for message in test_events:
                self.clients.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            if not test_events:
                return

    def _create_queue(self, logical_id: str) -> ProvisionedResource:
        properties = self.resolve(self.properties(logical_id), f"Resources.{logical_id}.Properties")
        fifo = as_cfn_string(properties.get("FifoQueue", "false")) == "true"
        name = properties.get("QueueName")
        if name is None:
            name = self._default_name(logical_id, 75) + (".fifo" if fifo else "")
        attributes = {key: as_cfn_string(properties[key]) for key in _QUEUE_ATTRIBUTES if key in properties}
        for policy_key in ("RedrivePolicy", "RedriveAllowPolicy"):
            if policy_key in properties:
                policy = properties[policy_key]
                attributes[policy_key] = policy if isinstance(policy, str) else json.dumps(policy)
        url = self.clients.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = self.clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        return ProvisionedResource(
            logical_id, _QUEUE, url, {"Arn": arn, "QueueName": name, "QueueUrl": url}, created=True
        )

    def _create_table(self, logical_id: str) -> ProvisionedResource:
        properties = self.resolve(self.properties(logical_id), f"Resources.{logical_id}.Properties")
        name = as_cfn_string(properties.get("TableName") or self._default_name(logical_id, 255))
        request: dict[str, Any] = {
            "TableName": name,
            "KeySchema": properties["KeySchema"],
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "BillingMode": properties.get("BillingMode", "PROVISIONED"),
        }
        if request["BillingMode"] == "PROVISIONED":
            request["ProvisionedThroughput"] = properties.get(
                "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
            )
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if key in properties:
                request[key] = properties[key]
        stream = properties.get("StreamSpecification")
        if stream:
            request["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": stream["StreamViewType"],
            }
        description = self.clients.dynamodb.create_table(**request)["TableDescription"]
        ttl = properties.get("TimeToLiveSpecification")
        if ttl and as_cfn_string(ttl.get("Enabled", "false")) == "true":
            self.clients.dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        recovery = properties.get("PointInTimeRecoverySpecification") or {}
        if as_cfn_string(recovery.get("PointInTimeRecoveryEnabled", "false")) == "true":
            self.clients.dynamodb.update_continuous_backups(
                TableName=name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
        attributes = {"Arn": description["TableArn"]}
        if "LatestStreamArn" in description:
            attributes["StreamArn"] = description["LatestStreamArn"]
        return ProvisionedResource(logical_id, _TABLE, name, attributes, created=True)

    def _create_secret(self, logical_id: str) -> ProvisionedResource:
        properties = self.resolve(self.properties(logical_id), f"Resources.{logical_id}.Properties")
        name = as_cfn_string(properties.get("Name") or self._default_name(logical_id, 256))
        value = self.secret_values.get(logical_id)
        if value is None:
            value = (
                as_cfn_string(properties["SecretString"]) if "SecretString" in properties else LOCAL_API_KEY
            )
        arn = self.clients.secretsmanager.create_secret(Name=name, SecretString=value)["ARN"]
        return ProvisionedResource(logical_id, _SECRET, arn, {"Id": arn}, created=True)

    def _declare(self, logical_id: str, resource_type: str) -> ProvisionedResource:
        naming_property = _NAMING_PROPERTY.get(resource_type)
        name = self.resolved_property(logical_id, naming_property) if naming_property else None
        name = as_cfn_string(name) if name is not None else self._default_name(logical_id, 64)
        arn_prefix = f"arn:aws:{{service}}:{self.region}:{self.account_id}"
        attributes: dict[str, Any] = {}
        physical_id = name
        if resource_type == SERVERLESS_FUNCTION:
            attributes["Arn"] = f"{arn_prefix.format(service='lambda')}:function:{name}"
        elif resource_type in _LAYERS:
            physical_id = f"{arn_prefix.format(service='lambda')}:layer:{name}:1"
        elif resource_type == "AWS::SNS::Topic":
            physical_id = f"{arn_prefix.format(service='sns')}:{name}"
            attributes = {"TopicArn": physical_id, "TopicName": name}
        elif resource_type == "AWS::Logs::LogGroup":
            attributes["Arn"] = f"{arn_prefix.format(service='logs')}:log-group:{name}:*"
        elif resource_type == "AWS::CloudWatch::Alarm":
            attributes["Arn"] = f"{arn_prefix.format(service='cloudwatch')}:alarm:{name}"
        elif resource_type == "AWS::IAM::Role":
            attributes = {"Arn": f"arn:aws:iam::{self.account_id}:role/{name}", "RoleId": name}
        elif resource_type == "AWS::Events::Rule":
            attributes["Arn"] = f"{arn_prefix.format(service='events')}:rule/{name}"
        elif resource_type == "AWS::Scheduler::Schedule":
            attributes["Arn"] = f"{arn_prefix.format(service='scheduler')}:schedule/default/{name}"
        return ProvisionedResource(logical_id, resource_type, physical_id, attributes)

    # ------------------------------------------------------------------ functions
    def function_specs(self) -> dict[str, FunctionSpec]:
        return {
            logical_id: self._function_spec(logical_id)
            for logical_id in self.active_ids()
            if self.template.resources[logical_id].get("Type") == SERVERLESS_FUNCTION
        }

    def _layer_dir(self, layer_arn: str) -> Path | None:
        for resource in self.by_type(*_LAYERS):
            if resource.physical_id != layer_arn:
                continue
            body = self.template.resources[resource.logical_id]
            properties = body.get("Properties") or {}
            content = properties.get("ContentUri") or properties.get("Content")
            if not isinstance(content, str):
                raise LocalStackError(
                    f"layer {resource.logical_id}: the local stack needs ContentUri as a path"
                )
            directory = (self.template.base_dir / content).resolve()
            build_method = str((body.get("Metadata") or {}).get("BuildMethod", ""))
            # A built python layer lands in /opt/python; an unbuilt one must already hold python/.
            if not build_method.startswith("python") and (directory / "python").is_dir():
                return directory / "python"
            return directory
        return None

    def _function_spec(self, logical_id: str) -> FunctionSpec:
        raw = self.template.function_properties(logical_id)
        where = f"Resources.{logical_id}.Properties"

        def resolved(name: str, default: Any = None) -> Any:
            return self.resolve(raw[name], f"{where}.{name}") if name in raw else default

        code_uri = resolved("CodeUri")
        if not isinstance(code_uri, str):
            raise LocalStackError(
                f"{where}.CodeUri: the local stack needs a local directory, got {code_uri!r}"
            )
        code_dir = (self.template.base_dir / code_uri).resolve()
        if not code_dir.is_dir():
            raise LocalStackError(f"{where}.CodeUri: {code_dir} is not a directory")
        handler = resolved("Handler")
        if not isinstance(handler, str) or "." not in handler:
            raise LocalStackError(f"{where}.Handler must be module.function, got {handler!r}")
        runtime = as_cfn_string(resolved("Runtime", ""))
        if runtime and not runtime.startswith("python"):
            raise LocalStackError(f"{where}.Runtime {runtime}: the local stack runs Python functions only")
        resource = self.ensure(logical_id)
        name = resource.physical_id

        layer_dirs: list[Path] = []
        for layer in resolved("Layers", []) or []:
            layer_dir = self._layer_dir(as_cfn_string(layer))
            if layer_dir is None:
                logger.warning(
                    "%s: layer %s is not part of the template; not loaded locally", logical_id, layer
                )
            else:
                layer_dirs.append(layer_dir)

        variables = (resolved("Environment", {}) or {}).get("Variables") or {}
        environment = {str(key): as_cfn_string(value) for key, value in variables.items()}
        logging_config = resolved("LoggingConfig", {}) or {}
        log_group = as_cfn_string(logging_config.get("LogGroup") or f"/aws/lambda/{name}")

        sqs_triggers: list[SqsTrigger] = []
        schedule_triggers: list[ScheduleTrigger] = []
        unsupported: list[str] = []
        for event_name, event in (raw.get("Events") or {}).items():
            event_type = str(event.get("Type"))
            event_where = f"{where}.Events.{event_name}"
            properties = self.resolve(event.get("Properties") or {}, f"{event_where}.Properties")
            if event_type == "SQS":
                sqs_triggers.append(self._sqs_trigger(logical_id, event_name, properties, event_where))
            elif event_type in ("Schedule", "ScheduleV2"):
                schedule_triggers.append(
                    self._schedule_trigger(logical_id, event_name, event_type, properties)
                )
            else:
                unsupported.append(f"{event_name} ({event_type})")

        invoke_config = resolved("EventInvokeConfig", {}) or {}
        on_failure = ((invoke_config.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
            "Destination"
        )
        if on_failure is not None and self.queue_by_arn(as_cfn_string(on_failure)) is None:
            logger.warning("%s: the OnFailure destination is not a queue of the stack", logical_id)
            on_failure = None
        url_config = resolved("FunctionUrlConfig")
        function_url = (
            None
            if not isinstance(url_config, dict)
            else FunctionUrlSpec(
                auth_type=as_cfn_string(url_config.get("AuthType", "NONE")),
                invoke_mode=as_cfn_string(url_config.get("InvokeMode", "BUFFERED")),
            )
        )
        return FunctionSpec(
            logical_id=logical_id,
            name=name,
            arn=resource.attributes["Arn"],
            code_dir=code_dir,
            handler=handler,
            runtime=runtime or "python3.12",
            timeout_s=int(as_cfn_string(resolved("Timeout", 3))),
            memory_mb=int(as_cfn_string(resolved("MemorySize", 128))),
            layer_dirs=tuple(layer_dirs),
            environment=environment,
            log_group=log_group,
            sqs_triggers=tuple(sqs_triggers),
            schedule_triggers=tuple(schedule_triggers),
            on_failure_destination=None if on_failure is None else as_cfn_string(on_failure),
            maximum_retry_attempts=int(as_cfn_string(invoke_config.get("MaximumRetryAttempts", 2))),
            unsupported_events=tuple(unsupported),
            function_url=function_url,
        )

    def _sqs_trigger(
        self, function_id: str, event_name: str, properties: dict[str, Any], where: str
    ) -> SqsTrigger:
        queue_arn = as_cfn_string(properties.get("Queue", ""))
        queue = self.queue_by_arn(queue_arn)
        if queue is None:
            raise LocalStackError(
                f"{where}.Properties.Queue: {queue_arn!r} is not a queue the template creates"
            )
        scaling = properties.get("ScalingConfig") or {}
        maximum = scaling.get("MaximumConcurrency")
        return SqsTrigger(
            function_id=function_id,
            event_name=event_name,
            queue_id=queue.logical_id,
            queue_arn=queue_arn,
            queue_url=queue.physical_id,
            batch_size=int(as_cfn_string(properties.get("BatchSize", 10))),
            report_batch_item_failures="ReportBatchItemFailures"
            in (properties.get("FunctionResponseTypes") or []),
            enabled=as_cfn_string(properties.get("Enabled", "true")) == "true",
            maximum_concurrency=None if maximum is None else int(as_cfn_string(maximum)),
        )

    def _schedule_trigger(
        self, function_id: str, event_name: str, event_type: str, properties: dict[str, Any]
    ) -> ScheduleTrigger:
        name = as_cfn_string(properties.get("Name") or f"{self.stack_name}-{function_id}{event_name}")[:64]
        if event_type == "ScheduleV2":
            expression = as_cfn_string(properties.get("ScheduleExpression", ""))
            arn = f"arn:aws:scheduler:{self.region}:{self.account_id}:schedule/default/{name}"
            enabled = as_cfn_string(properties.get("State", "ENABLED")) == "ENABLED"
            timezone = as_cfn_string(properties.get("ScheduleExpressionTimezone", "UTC"))
        else:
            expression = as_cfn_string(properties.get("Schedule", ""))
            arn = f"arn:aws:events:{self.region}:{self.account_id}:rule/{name}"
            state = properties.get("State")
            enabled = (
                as_cfn_string(state) == "ENABLED"
                if state is not None
                else as_cfn_string(properties.get("Enabled", "true")) == "true"
            )
            timezone = "UTC"
        event_input = properties.get("Input")
        return ScheduleTrigger(
            function_id=function_id,
            event_name=event_name,
            kind=event_type,
            expression=expression,
            name=name,
            arn=arn,
            input=None if event_input is None else as_cfn_string(event_input),
            enabled=enabled,
            timezone=timezone,
        )
