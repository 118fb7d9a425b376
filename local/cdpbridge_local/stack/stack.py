"""The Docker-free local stack: the template's resources in moto, its functions in worker processes,
and Lambda's event delivery (S3 -> SQS -> batches, partial failures, redrive, schedules) in between."""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Final, Protocol
from urllib.parse import unquote_plus

import boto3
import requests
from botocore.config import Config

from cdpbridge_local.stack.events import (
    async_failure_record,
    schedule_event,
    sqs_batch_outcome,
    sqs_record,
)
from cdpbridge_local.stack.function_urls import FunctionUrlServer
from cdpbridge_local.stack.functions import (
    FunctionError,
    FunctionSpec,
    FunctionWorker,
    InvocationRecord,
    ScheduleTrigger,
    SqsTrigger,
    reply_to_record,
)
from cdpbridge_local.stack.intrinsics import TemplateResolutionError
from cdpbridge_local.stack.resources import AwsClients, LocalStackError, ProvisionedResource, StackResources
from cdpbridge_local.stack.schedules import ScheduleClock
from cdpbridge_local.stack.template import SamTemplate

logger = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"  # moto's default account
# moto accepts any credentials: placeholders, so that no real ones are ever picked up locally.
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # nosec B105
    "AWS_SESSION_TOKEN": "testing",
}
_IDLE_POLL_S = 0.05
_BACKGROUND_IDLE_S = 0.2


class Emulator(Protocol):
    """What the stack needs of the Braze emulator (cdpbridge_local.emulator.EmulatorServer)."""

    @property
    def url(self) -> str: ...

    def stop(self) -> None: ...


class DrainTimeoutError(TimeoutError):
    """Queues still held messages when the drain's time ran out; ``records`` has what did run."""

    def __init__(self, records: list[InvocationRecord], pending: Mapping[str, Mapping[str, int]]) -> None:
        summary = ", ".join(f"{queue}: {counts}" for queue, counts in pending.items())
        super().__init__(f"queues not empty when the drain timed out ({summary})")
        self.records = records
        self.pending = dict(pending)


@dataclass(slots=True)
class DuplicateDelivery:
    """At-least-once delivery, armed: each message received is, with ``probability`` (drawn from a
    random.Random seeded with ``seed``), sent to its queue again, so that the function gets it a
    second time, as when S3 sends a notification twice or SQS delivers a message twice."""

    probability: float
    seed: int
    delivered: Counter[str] = field(default_factory=Counter)  # by kind of message
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def draw(self) -> bool:
        return self._random.random() < self.probability


def _message_kind(body: str) -> str:
    """ "s3_notification" for a body carrying S3 event records, else "sqs_message"."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return "sqs_message"
    records = parsed.get("Records") if isinstance(parsed, dict) else None
    if isinstance(records, list) and any(
        isinstance(record, dict) and record.get("eventSource") == "aws:s3" for record in records
    ):
        return "s3_notification"
    return "sqs_message"


class UnroutableEventError(ValueError):
    """No trigger of the template would deliver this event to a function."""


@dataclass(frozen=True, slots=True)
class EventRoute:
    """Where an event goes: the function, and the queue it passes through (None: invoked directly)."""

    function_id: str
    queue_id: str | None
    body: str | None = None
    schedule: ScheduleTrigger | None = None


def _pseudo_parameters(stack_name: str, region: str) -> dict[str, Any]:
    # A stable stack id per name keeps generated names (e.g. the drop bucket's) stable between runs.
    stack_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"cdpbridge-local/{region}/{stack_name}")
    return {
        "AWS::Region": region,
        "AWS::AccountId": ACCOUNT_ID,
        "AWS::StackName": stack_name,
        "AWS::StackId": f"arn:aws:cloudformation:{region}:{ACCOUNT_ID}:stack/{stack_name}/{stack_uuid}",
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::NotificationARNs": [],
    }


# How a container started by `sam local` reaches its host (Docker Desktop; on Linux Docker Engine give
# `sam local invoke --add-host host.docker.internal:host-gateway`).
DOCKER_HOST_ALIAS: Final = "host.docker.internal"
_LOOPBACK_URL: Final = re.compile(r"(https?://)(?:127\.0\.0\.1|0\.0\.0\.0|localhost)(?=[:/]|$)")


def _via_host(value: str, host: str) -> str:
    """``value`` with the host of every loopback URL in it replaced by ``host``."""
    return _LOOPBACK_URL.sub(lambda match: match.group(1) + host, value)


def read_env_vars_file(path: Path) -> dict[str, dict[str, str]]:
    """Reads a `sam local invoke --env-vars` file: {"Parameters": {...}, "<FunctionId>": {...}}."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise LocalStackError(f"{path}: cannot read the environment file: {error}") from error
    if not isinstance(document, dict) or not all(isinstance(value, dict) for value in document.values()):
        raise LocalStackError(f'{path}: expected {{"Parameters": {{...}}, "<FunctionLogicalId>": {{...}}}}')
    return {
        key: {str(name): str(value) for name, value in values.items()} for key, values in document.items()
    }


class LocalStack:
    """A running local copy of the stack. Use :meth:`start` (a context manager)."""

    _running: ClassVar[LocalStack | None] = None
    _running_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        template: SamTemplate,
        resources: StackResources,
        moto_server: Any,
        moto_url: str,
        emulator: Emulator | None,
        *,
        env_vars: Mapping[str, Mapping[str, str]],
        failed_message_visibility_s: int | None,
        on_invocation: Callable[[InvocationRecord], None] | None,
        function_timeout_s: int | None = None,
        function_timeouts: Mapping[str, int] | None = None,
    ) -> None:
        self.template = template
        self.resources = resources
        self.moto_url = moto_url
        self.emulator = emulator
        self.region = resources.region
        self.account_id = resources.account_id
        self.stack_name = resources.stack_name
        self.failed_message_visibility_s = failed_message_visibility_s
        self.on_invocation = on_invocation
        self.invocations: list[InvocationRecord] = []
        self._moto_server = moto_server
        self._env_vars = env_vars
        self._history_lock = threading.Lock()
        self._stop_background = threading.Event()
        self._background: list[threading.Thread] = []
        self.duplicate_delivery: DuplicateDelivery | None = None
        timeouts = dict(function_timeouts or {})
        self.functions: dict[str, FunctionSpec] = {}
        for logical_id, spec in resources.function_specs().items():
            timeout_s = timeouts.get(logical_id, function_timeout_s)
            self.functions[logical_id] = spec if timeout_s is None else replace(spec, timeout_s=timeout_s)
        self._workers = {
            logical_id: FunctionWorker(spec, self.function_environment(spec))
            for logical_id, spec in self.functions.items()
        }
        self._url_servers: dict[str, FunctionUrlServer] = {}

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def start(
        cls,
        template: Path = Path("template.yaml"),
        parameters: Mapping[str, Any] | None = None,
        *,
        stack_name: str = "cdpbridge-local",
        region: str = "us-east-1",
        host: str = "127.0.0.1",
        with_emulator: bool = True,
        env_vars: Mapping[str, Mapping[str, str]] | None = None,
        failed_message_visibility_s: int | None = None,
        keep_s3_test_events: bool = False,
        secret_values: Mapping[str, str] | None = None,
        on_invocation: Callable[[InvocationRecord], None] | None = None,
        function_timeout_s: int | None = None,
        function_timeouts: Mapping[str, int] | None = None,
    ) -> LocalStack:
        """Starts moto and the emulator, creates the template's resources, prepares its functions.

        ``parameters`` are the template's parameter overrides; ``env_vars`` follows the
        ``sam local invoke --env-vars`` layout. ``failed_message_visibility_s`` shortens the wait
        before a failed SQS message is delivered again (None: the queue's VisibilityTimeout).
        ``secret_values`` sets the value of secrets the template creates, by logical id.
        ``function_timeout_s`` replaces every function's Timeout (e.g. to keep a test's shortened
        visibility timeout above it, as the template keeps the queues' above the functions');
        ``function_timeouts`` replaces it for the functions it names (logical id -> seconds).
        """
        sam_template = SamTemplate.load(template)
        parameter_values = sam_template.parameter_values(parameters or {})
        pseudo_parameters = _pseudo_parameters(stack_name, region)
        # CloudFormation refuses a stack whose Rules fail before it creates anything.
        sam_template.check_rules(sam_template.parameters_resolver(parameter_values, pseudo_parameters))
        _quiet_moto_access_log()
        with cls._running_lock:
            if cls._running is not None:
                raise LocalStackError(
                    "a LocalStack is already running in this process; moto's state is process-wide"
                )
            cls._running = _STARTING
        moto_server: Any = None
        emulator: Emulator | None = None
        try:
            # moto is imported only when a stack starts: it is heavy and the CLI must stay quick.
            from moto.server import ThreadedMotoServer  # noqa: PLC0415

            moto_server = ThreadedMotoServer(ip_address=host, port=0, verbose=False)
            moto_server.start()
            moto_host, moto_port = moto_server.get_host_and_port()
            moto_url = f"http://{moto_host}:{moto_port}"
            if with_emulator:
                from cdpbridge_local.emulator import EmulatorServer  # noqa: PLC0415 - optional part

                server = EmulatorServer(host, port=0)
                server.start()
                emulator = server
            clients = _clients(moto_url, region)
            resources = StackResources(
                sam_template,
                parameter_values,
                pseudo_parameters,
                clients,
                keep_s3_test_events=keep_s3_test_events,
                secret_values=secret_values,
            )
            resources.provision_all()
            stack = cls(
                sam_template,
                resources,
                moto_server,
                moto_url,
                emulator,
                env_vars=env_vars or {},
                failed_message_visibility_s=failed_message_visibility_s,
                on_invocation=on_invocation,
                function_timeout_s=function_timeout_s,
                function_timeouts=function_timeouts,
            )
        except BaseException:
            if emulator is not None:
                emulator.stop()
            if moto_server is not None:
                _reset_moto(moto_server)
                moto_server.stop()
            with cls._running_lock:
                cls._running = None
            raise
        with cls._running_lock:
            cls._running = stack
        try:
            stack._serve_function_urls(host)
        except BaseException:
            stack.stop()
            raise
        return stack

    def stop(self) -> None:
        for server in self._url_servers.values():
            server.stop()
        self._url_servers.clear()
        self.stop_background()
        for worker in self._workers.values():
            worker.stop()
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None
        if self._moto_server is not None:
            _reset_moto(self._moto_server)
            self._moto_server.stop()
            self._moto_server = None
        with self._running_lock:
            if LocalStack._running is self:
                LocalStack._running = None

    # ------------------------------------------------------------------ function URLs
    def _serve_function_urls(self, host: str) -> None:
        """A listener per function with a FunctionUrlConfig; its URL answers Fn::GetAtt
        <Function>Url.FunctionUrl as the resource SAM generates would."""
        for logical_id, spec in self.functions.items():
            if spec.function_url is None:
                continue

            def invoke(event: dict[str, Any], spec: FunctionSpec = spec) -> tuple[Any, dict[str, Any] | None]:
                record = self._invoke(spec, event, trigger="function_url")
                return record.response, record.error

            server = FunctionUrlServer(logical_id, spec.function_url, invoke, host=host, region=self.region)
            server.start()
            self._url_servers[logical_id] = server
            url_id = f"{logical_id}Url"
            self.resources.provisioned[url_id] = ProvisionedResource(
                url_id,
                "AWS::Lambda::Url",
                spec.arn,
                {"FunctionUrl": server.url, "FunctionArn": spec.arn},
                created=True,
            )

    @property
    def function_urls(self) -> dict[str, str]:
        """Function logical id -> the loopback URL serving it (functions with a FunctionUrlConfig)."""
        return {logical_id: server.url for logical_id, server in self._url_servers.items()}

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ clients and names
    def client(self, service: str) -> Any:
        """A boto3 client of ``service`` bound to the local moto server."""
        return _session(self.region).client(service, endpoint_url=self.moto_url)

    @property
    def s3_client(self) -> Any:
        return self.resources.clients.s3

    @property
    def sqs_client(self) -> Any:
        return self.resources.clients.sqs

    @property
    def dynamodb_client(self) -> Any:
        return self.resources.clients.dynamodb

    @property
    def secrets_client(self) -> Any:
        return self.resources.clients.secretsmanager

    def resource(self, logical_id: str) -> ProvisionedResource:
        if logical_id not in self.resources.provisioned:
            raise KeyError(f"{logical_id} is not a resource of the running stack")
        return self.resources.provisioned[logical_id]

    def physical_id(self, logical_id: str) -> str:
        return self.resource(logical_id).physical_id

    @property
    def drop_bucket(self) -> str:
        """The bucket files land in: DropBucket, or the template's only bucket."""
        if "DropBucket" in self.resources.provisioned:
            return self.physical_id("DropBucket")
        buckets = self.resources.by_type("AWS::S3::Bucket")
        if len(buckets) != 1:
            raise LocalStackError("the template has no DropBucket and not exactly one bucket")
        return buckets[0].physical_id

    def outputs(self) -> dict[str, Any]:
        """The template's Outputs whose condition holds, resolved."""
        outputs: dict[str, Any] = {}
        for name, body in (self.template.document.get("Outputs") or {}).items():
            condition = body.get("Condition")
            if condition is not None and not self.resources.resolver.condition(str(condition)):
                continue
            try:
                outputs[name] = self.resources.resolve(body["Value"], f"Outputs.{name}.Value")
            except TemplateResolutionError as error:
                outputs[name] = f"<not available locally: {error}>"
        return outputs

    def function_environment(self, spec: FunctionSpec) -> dict[str, str]:
        """What a function's process sees: the template's variables, this stack's endpoints, then
        --env-vars (which wins, as with `sam local invoke`), then the variables Lambda reserves."""
        environment = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            **spec.environment,
            **self._local_endpoints(self.moto_url, self.emulator.url if self.emulator else None),
            **self._env_vars.get("Parameters", {}),
            **self._env_vars.get(spec.logical_id, {}),
            # Reserved by Lambda: a template cannot set these.
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "_HANDLER": spec.handler,
            **DUMMY_CREDENTIALS,
            # Never a real account or profile: credentials are moto's, the SDK's files are empty.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            # No X-Ray daemon runs locally (sam local disables tracing the same way).
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        return environment

    @staticmethod
    def _local_endpoints(moto_url: str, emulator_url: str | None) -> dict[str, str]:
        """Every AWS SDK call to moto; Braze calls to the emulator, in place of the instance's host
        (the settings accept only one of them; an empty value counts as unset)."""
        endpoints = {"AWS_ENDPOINT_URL": moto_url}
        if emulator_url is not None:
            endpoints |= {"BRAZE_INSTANCE": "", "BRAZE_REST_ENDPOINT": emulator_url}
        return endpoints

    def sam_env_vars(self, host: str = DOCKER_HOST_ALIAS) -> dict[str, dict[str, str]]:
        """The `sam local invoke --env-vars` document that points functions SAM CLI runs at this stack.

        "Parameters" (applied to every function) holds the endpoints, each function's entry the
        template's variables as this stack resolved them (bucket, tables, queue URLs, the secret).
        ``host`` is how a function's container reaches this machine; every loopback URL is rewritten
        to it. SAM CLI passes a function only the variables its template declares.
        """
        emulator_url = self.emulator.url if self.emulator is not None else None
        document: dict[str, dict[str, str]] = {
            "Parameters": {
                name: _via_host(value, host)
                for name, value in self._local_endpoints(self.moto_url, emulator_url).items()
            }
        }
        for logical_id, spec in self.functions.items():
            document[logical_id] = {
                name: _via_host(value, host)
                for name, value in spec.environment.items()
                if name not in document["Parameters"]
            }
        return document

    # ------------------------------------------------------------------ landing files
    def put_object(
        self, key: str, body: bytes | str, *, bucket: str | None = None, content_type: str | None = None
    ) -> str:
        """Lands a file (default: in the drop bucket); returns its ETag. Notifications follow."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        extra = {"ContentType": content_type} if content_type else {}
        response = self.s3_client.put_object(Bucket=bucket or self.drop_bucket, Key=key, Body=data, **extra)
        etag: str = response["ETag"]
        return etag

    # ------------------------------------------------------------------ chaos (tests only)
    def arm_duplicate_deliveries(self, probability: float, seed: int) -> DuplicateDelivery:
        """From now on, messages are delivered twice with ``probability``; returns the counts."""
        self.duplicate_delivery = DuplicateDelivery(probability, seed)
        return self.duplicate_delivery

    def kill_busy_worker(self) -> str | None:
        """SIGKILLs the worker process running an invocation (the logical id of its function), as
        when a Lambda execution environment dies; None when no invocation runs. The invocation
        fails, and its SQS messages come back after their visibility timeout."""
        for logical_id, worker in self._workers.items():
            if worker.kill_if_busy():
                return logical_id
        return None

    def _deliver_again(self, trigger: SqsTrigger, messages: list[dict[str, Any]]) -> None:
        duplicates = self.duplicate_delivery
        if duplicates is None:
            return
        for message in messages:
            if duplicates.draw():
                self.sqs_client.send_message(QueueUrl=trigger.queue_url, MessageBody=message["Body"])
                duplicates.delivered[_message_kind(message["Body"])] += 1

    # ------------------------------------------------------------------ invoking
    def invoke_record(self, function_id: str, event: Any) -> InvocationRecord:
        """Invokes a function synchronously (RequestResponse) and returns the whole record."""
        return self._invoke(self._spec(function_id), event, trigger="direct")

    def invoke(self, function_id: str, event: Any) -> Any:
        """Invokes a function synchronously; returns its response or raises :class:`FunctionError`."""
        record = self.invoke_record(function_id, event)
        if record.error is not None:
            raise FunctionError(record)
        return record.response

    def _spec(self, function_id: str) -> FunctionSpec:
        if function_id not in self.functions:
            known = ", ".join(sorted(self.functions)) or "none"
            raise LocalStackError(f"no function {function_id!r} in the stack (functions: {known})")
        return self.functions[function_id]

    def _invoke(
        self, spec: FunctionSpec, event: Any, *, trigger: str, source: str | None = None
    ) -> InvocationRecord:
        request_id, reply = self._workers[spec.logical_id].invoke(event)
        record = reply_to_record(spec, request_id, reply, trigger=trigger, event=event, source=source)
        self._remember(record)
        return record

    def _remember(self, record: InvocationRecord) -> None:
        with self._history_lock:
            self.invocations.append(record)
        if self.on_invocation is not None:
            self.on_invocation(record)

    # ------------------------------------------------------------------ SQS delivery
    @property
    def sqs_triggers(self) -> list[SqsTrigger]:
        return [
            trigger for spec in self.functions.values() for trigger in spec.sqs_triggers if trigger.enabled
        ]

    def poll_trigger(self, trigger: SqsTrigger) -> InvocationRecord | None:
        """One poll of an event source mapping: receive up to BatchSize messages, invoke, settle them."""
        sqs = self.sqs_client
        messages: list[dict[str, Any]] = []
        while len(messages) < trigger.batch_size:
            received = sqs.receive_message(
                QueueUrl=trigger.queue_url,
                MaxNumberOfMessages=min(10, trigger.batch_size - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not received:
                break
            messages.extend(received)
        if not messages:
            return None
        self._deliver_again(trigger, messages)
        spec = self.functions[trigger.function_id]
        event = {"Records": [sqs_record(message, trigger.queue_arn, self.region) for message in messages]}
        request_id, reply = self._workers[spec.logical_id].invoke(event)
        record = reply_to_record(
            spec, request_id, reply, trigger="sqs", event=event, source=trigger.queue_arn
        )
        message_ids = [message["MessageId"] for message in messages]
        outcome = sqs_batch_outcome(
            message_ids, record.response, record.error is not None, trigger.report_batch_item_failures
        )
        handles = {message["MessageId"]: message["ReceiptHandle"] for message in messages}
        succeeded = [handles[message_id] for message_id in outcome.succeeded]
        for start in range(0, len(succeeded), 10):
            chunk = succeeded[start : start + 10]
            sqs.delete_message_batch(
                QueueUrl=trigger.queue_url,
                Entries=[{"Id": str(index), "ReceiptHandle": handle} for index, handle in enumerate(chunk)],
            )
        if self.failed_message_visibility_s is not None:
            for message_id in outcome.failed:
                sqs.change_message_visibility(
                    QueueUrl=trigger.queue_url,
                    ReceiptHandle=handles[message_id],
                    VisibilityTimeout=self.failed_message_visibility_s,
                )
        record.message_ids = tuple(message_ids)
        record.failed_message_ids = outcome.failed
        if outcome.reason:
            record.logs += f"[local stack] {outcome.reason}\n"
        self._remember(record)
        return record

    def poll_round(self) -> list[InvocationRecord]:
        """Polls every enabled SQS trigger once."""
        records: list[InvocationRecord] = []
        for trigger in self.sqs_triggers:
            record = self.poll_trigger(trigger)
            if record is not None:
                records.append(record)
        return records

    def pending_messages(self) -> dict[str, dict[str, int]]:
        """Messages still in the triggers' queues (visible, in flight or delayed), by queue name."""
        pending: dict[str, dict[str, int]] = {}
        names = {
            "ApproximateNumberOfMessages": "visible",
            "ApproximateNumberOfMessagesNotVisible": "in_flight",
            "ApproximateNumberOfMessagesDelayed": "delayed",
        }
        for queue_url in sorted({trigger.queue_url for trigger in self.sqs_triggers}):
            attributes = self.sqs_client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=list(names))[
                "Attributes"
            ]
            counts = {label: int(attributes.get(name, 0)) for name, label in names.items()}
            if any(counts.values()):
                pending[queue_url.rsplit("/", 1)[-1]] = counts
        return pending

    def drain(self, timeout_s: float = 60.0) -> list[InvocationRecord]:
        """Delivers queued messages until every trigger's queue is empty (failed messages included:
        they are retried after their visibility timeout until they succeed or move to the DLQ).

        Returns this drain's invocation records; raises :class:`DrainTimeoutError` after ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        records: list[InvocationRecord] = []
        while True:
            round_records = self.poll_round()
            records.extend(round_records)
            pending: dict[str, dict[str, int]] = {}
            if not round_records:
                pending = self.pending_messages()
                if not pending:
                    # The counts are read one after another, so a message turning visible between
                    # two reads is in none of them; it is visible by now, and one more poll takes it.
                    round_records = self.poll_round()
                    if not round_records:
                        return records
                    records.extend(round_records)
            if time.monotonic() >= deadline:
                raise DrainTimeoutError(records, pending or self.pending_messages())
            if not round_records:
                time.sleep(_IDLE_POLL_S)

    def peek_messages(self, logical_id: str) -> list[dict[str, Any]]:
        """The visible messages of a queue (e.g. a DLQ), left in place."""
        url = self.physical_id(logical_id)
        messages: dict[str, dict[str, Any]] = {}
        while True:
            received = self.sqs_client.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30, AttributeNames=["All"]
            ).get("Messages", [])
            if not received:
                break
            messages.update({message["MessageId"]: message for message in received})
        for message in messages.values():
            self.sqs_client.change_message_visibility(
                QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        return list(messages.values())

    def take_messages(self, logical_id: str, wait_s: float = 0.0) -> list[dict[str, Any]]:
        """Receives and deletes a queue's messages; with ``wait_s``, also those still in flight
        (invisible after a failed delivery) once they become visible within that time."""
        url = self.physical_id(logical_id)
        deadline = time.monotonic() + wait_s
        taken: list[dict[str, Any]] = []
        while True:
            received = self._take_visible(url)
            taken.extend(received)
            if received:
                continue
            if time.monotonic() >= deadline:
                return taken
            attributes = self.sqs_client.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            if int(attributes["ApproximateNumberOfMessages"]) + int(
                attributes["ApproximateNumberOfMessagesNotVisible"]
            ):
                time.sleep(_IDLE_POLL_S)
                continue
            # The counts are read one after another, so a message turning visible between the two
            # is in neither; it is visible by now, and one more receive takes it.
            received = self._take_visible(url)
            if not received:
                return taken
            taken.extend(received)

    def _take_visible(self, url: str) -> list[dict[str, Any]]:
        received: list[dict[str, Any]] = self.sqs_client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", [])
        for message in received:
            self.sqs_client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return received

    # ------------------------------------------------------------------ schedules
    def schedule_triggers(self, function_id: str | None = None) -> list[ScheduleTrigger]:
        specs = [self._spec(function_id)] if function_id else list(self.functions.values())
        return [trigger for spec in specs for trigger in spec.schedule_triggers]

    def fire_schedule(self, function_id: str, event_name: str | None = None) -> list[InvocationRecord]:
        """Fires a function's schedule now (its only one, or ``event_name``), as EventBridge would:
        an asynchronous invocation, retried MaximumRetryAttempts times, then sent to OnFailure."""
        triggers = self.schedule_triggers(function_id)
        if event_name is not None:
            triggers = [trigger for trigger in triggers if trigger.event_name == event_name]
        if len(triggers) != 1:
            names = ", ".join(trigger.event_name for trigger in self.schedule_triggers(function_id)) or "none"
            raise LocalStackError(f"{function_id}: name one schedule event to fire (schedules: {names})")
        trigger = triggers[0]
        event = schedule_event(trigger, self.account_id, self.region, datetime.now(UTC))
        return self._invoke_async(self.functions[function_id], event, trigger="schedule", source=trigger.arn)

    def _invoke_async(
        self, spec: FunctionSpec, event: Any, *, trigger: str, source: str
    ) -> list[InvocationRecord]:
        records: list[InvocationRecord] = []
        for _ in range(1 + spec.maximum_retry_attempts):
            record = self._invoke(spec, event, trigger=trigger, source=source)
            records.append(record)
            if record.error is None:
                return records
        if spec.on_failure_destination is not None:
            queue = self.resources.queue_by_arn(spec.on_failure_destination)
            assert queue is not None
            failure = async_failure_record(
                function_arn=spec.arn,
                request_id=records[-1].request_id,
                request_payload=event,
                error=records[-1].error,
                attempts=len(records),
            )
            self.sqs_client.send_message(QueueUrl=queue.physical_id, MessageBody=json.dumps(failure))
        return records

    # ------------------------------------------------------------------ sample events
    def route_event(self, event: Any) -> list[EventRoute]:
        """Which function (through which queue) a deployed stack would hand this event to.

        Understands SQS events (bodies that are S3 notifications are routed by the bucket's
        notification prefixes, others by the record's queue name), S3 events and scheduled events.
        """
        if isinstance(event, dict) and isinstance(event.get("Records"), list) and event["Records"]:
            return [route for record in event["Records"] for route in self._route_record(record)]
        if isinstance(event, dict) and event.get("detail-type") == "Scheduled Event":
            return [self._route_schedule(event)]
        raise UnroutableEventError("not an SQS, S3 or scheduled event: no trigger of the stack matches it")

    def _route_record(self, record: dict[str, Any]) -> list[EventRoute]:
        source = record.get("eventSource")
        if source == "aws:s3":
            return [self._route_s3_record(record)]
        if source != "aws:sqs":
            raise UnroutableEventError(f"records from {source!r} are not delivered by the local stack")
        body = record.get("body", "")
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("Records"), list):
            s3_records = [item for item in parsed["Records"] if item.get("eventSource") == "aws:s3"]
            if s3_records:
                routes = {self._route_s3_record(item) for item in s3_records}
                if len({(route.function_id, route.queue_id) for route in routes}) != 1:
                    raise UnroutableEventError(
                        "one SQS record's S3 notifications would go to different queues"
                    )
                route = next(iter(routes))
                return [EventRoute(route.function_id, route.queue_id, body)]
        queue_name = str(record.get("eventSourceARN", "")).rsplit(":", 1)[-1]
        for trigger in self.sqs_triggers:
            queue = self.resource(trigger.queue_id)
            # CloudFormation names a queue <stack>-<logical id>-<suffix>: a record taken from any
            # deployment of the template (an events/ sample) names the same logical id.
            deployed_name = f"-{trigger.queue_id}-" in queue_name
            if deployed_name or queue_name in (queue.attributes["QueueName"], trigger.queue_id):
                return [EventRoute(trigger.function_id, trigger.queue_id, body)]
        raise UnroutableEventError(f"no function of the stack reads a queue named {queue_name!r}")

    def _route_s3_record(self, record: dict[str, Any]) -> EventRoute:
        key = unquote_plus(str(record["s3"]["object"]["key"]))
        event_name = str(record.get("eventName", ""))
        for notification in self.resources.notifications:
            if not notification.matches(event_name, key):
                continue
            for trigger in self.sqs_triggers:
                if trigger.queue_arn == notification.queue_arn:
                    return EventRoute(
                        trigger.function_id, trigger.queue_id, json.dumps({"Records": [record]})
                    )
            raise UnroutableEventError(
                f"{key}: its queue {notification.queue_arn} has no function reading it"
            )
        raise UnroutableEventError(f"{event_name} {key}: no bucket notification of the stack matches it")

    def _route_schedule(self, event: dict[str, Any]) -> EventRoute:
        resources = [str(arn) for arn in event.get("resources") or []]
        names = {arn.rsplit("/", 1)[-1] for arn in resources}
        matches = [
            trigger
            for trigger in self.schedule_triggers()
            if trigger.arn in resources or trigger.name in names or trigger.function_id in names
        ]
        if len(matches) != 1:
            raise UnroutableEventError(
                f"scheduled event for {resources}: {len(matches)} schedules of the stack match it (need one)"
            )
        return EventRoute(matches[0].function_id, None, schedule=matches[0])

    def deliver_event(self, event: Any, timeout_s: float = 60.0) -> list[InvocationRecord]:
        """Routes an event (e.g. an events/ sample) the way the deployed stack would, delivers it
        (through the queue when there is one) and drains; returns the invocations that followed."""
        routes = self.route_event(event)
        records: list[InvocationRecord] = []
        for route in routes:
            if route.queue_id is not None:
                self.sqs_client.send_message(
                    QueueUrl=self.physical_id(route.queue_id), MessageBody=route.body
                )
            else:
                assert route.schedule is not None
                spec = self.functions[route.function_id]
                records += self._invoke_async(spec, event, trigger="schedule", source=route.schedule.arn)
        if any(route.queue_id is not None for route in routes):
            records += self.drain(timeout_s=timeout_s)
        return records

    # ------------------------------------------------------------------ running in the background
    def start_background(self, *, dispatch: bool = True, clock: bool = True) -> None:
        """Delivers queued messages continuously and/or fires schedules on their clock (``local up``)."""
        self._stop_background.clear()
        if dispatch:
            self._spawn("sqs-dispatch", self._dispatch_loop)
        if clock:
            self._spawn("schedule-clock", self._clock_loop)

    def stop_background(self) -> None:
        self._stop_background.set()
        for thread in self._background:
            thread.join(timeout=30)
        self._background.clear()

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=f"{self.stack_name}-{name}", daemon=True)
        thread.start()
        self._background.append(thread)

    def _dispatch_loop(self) -> None:
        while not self._stop_background.is_set():
            try:
                delivered = self.poll_round()
            except Exception:
                logger.exception("delivering SQS messages failed; retrying")
                delivered = []
            if not delivered:
                self._stop_background.wait(_BACKGROUND_IDLE_S)

    def _clock_loop(self) -> None:
        def fire(trigger: ScheduleTrigger, fired_at: datetime) -> None:
            event = schedule_event(trigger, self.account_id, self.region, fired_at)
            spec = self.functions[trigger.function_id]
            self._invoke_async(spec, event, trigger="schedule", source=trigger.arn)

        ScheduleClock(self.schedule_triggers(), fire, self._stop_background.wait).run()


class _StartingMarker:
    """Holds LocalStack._running while a stack starts, so that a second start fails fast."""


_STARTING: Any = _StartingMarker()


def _session(region: str) -> Any:
    # Typed as Any: the stubs' client() overloads need a literal service name.
    return boto3.session.Session(
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
        region_name=region,
    )


def _clients(moto_url: str, region: str) -> AwsClients:
    session = _session(region)
    config = Config(retries={"max_attempts": 2, "mode": "standard"})
    return AwsClients(
        s3=session.client("s3", endpoint_url=moto_url, config=config),
        sqs=session.client("sqs", endpoint_url=moto_url, config=config),
        dynamodb=session.client("dynamodb", endpoint_url=moto_url, config=config),
        secretsmanager=session.client("secretsmanager", endpoint_url=moto_url, config=config),
    )


def _quiet_moto_access_log() -> None:
    """moto's server logs every request through werkzeug; handler logs are what matter locally."""
    werkzeug_logger = logging.getLogger("werkzeug")
    if werkzeug_logger.level == logging.NOTSET:
        werkzeug_logger.setLevel(logging.WARNING)


def _reset_moto(moto_server: Any) -> None:
    """Forgets every resource, so the next stack in this process starts from nothing."""
    try:
        host, port = moto_server.get_host_and_port()
        requests.post(f"http://{host}:{port}/moto-api/reset", timeout=10)
    except (AssertionError, requests.RequestException):  # never started, or already gone
        logger.warning("could not reset moto's state")
