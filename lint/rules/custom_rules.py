"""The project's own cfn-lint rules for template.yaml (run with ``cfn-lint --append-rules lint/rules``).

cfn-lint hands the rules the template after its transforms: SAM Globals merged into every
AWS::Serverless::Function and Fn::ForEach (AWS::LanguageExtensions) expanded, so a rule sees one
resource per integration. Conditions stay in place: a value under Fn::If counts on either branch,
which is what a deployment with any combination of enabled integrations gets.

The rules cover plain CloudFormation resources as well as their SAM forms, so that a function moved
from one to the other keeps being checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from cfnlint.rules import CloudFormationLintRule, RuleMatch

# Values of a Ref that stand for no resource.
_PSEUDO_REF: Final = re.compile(r"^AWS::")

# Event source types of SAM functions, by how Lambda is invoked for them.
_SAM_QUEUE_EVENTS: Final = frozenset({"SQS"})
_SAM_ASYNC_EVENTS: Final = frozenset(
    {
        "Schedule",
        "ScheduleV2",
        "CloudWatchEvent",
        "EventBridgeRule",
        "S3",
        "SNS",
        "CloudWatchLogs",
        "IoTRule",
        "AlexaSkill",
        "Cognito",
    }
)
# Principals whose AWS::Lambda::Permission means an asynchronous invocation.
_ASYNC_PRINCIPALS: Final = frozenset(
    {
        "events.amazonaws.com",
        "scheduler.amazonaws.com",
        "s3.amazonaws.com",
        "sns.amazonaws.com",
        "logs.amazonaws.com",
        "iot.amazonaws.com",
        "ses.amazonaws.com",
    }
)

# Actions that IAM authorises only on Resource "*": a narrower Resource would make them fail.
_ACTIONS_WITHOUT_RESOURCE_SCOPE: Final = frozenset(
    {
        "cloudwatch:putmetricdata",
        "cloudwatch:getmetricdata",
        "cloudwatch:listmetrics",
        "ec2:createnetworkinterface",
        "ec2:describenetworkinterfaces",
        "ec2:deletenetworkinterface",
        "ec2:assignprivateipaddresses",
        "ec2:unassignprivateipaddresses",
        "xray:puttracesegments",
        "xray:puttelemetryrecords",
        "xray:getsamplingrules",
        "xray:getsamplingtargets",
        "xray:getsamplingstatisticsummaries",
        "s3:listallmybuckets",
        "sqs:listqueues",
        "secretsmanager:getrandompassword",
        "secretsmanager:listsecrets",
    }
)


# ---------------------------------------------------------------------------------- template walking
def _resources(cfn: Any) -> Mapping[str, Mapping[str, Any]]:
    resources = cfn.template.get("Resources", {})
    return resources if isinstance(resources, Mapping) else {}


def _of_type(cfn: Any, *types: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name, resource in _resources(cfn).items():
        if isinstance(resource, Mapping) and resource.get("Type") in types:
            yield name, resource


def _properties(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    properties = resource.get("Properties", {})
    return properties if isinstance(properties, Mapping) else {}


def referenced_resources(value: Any) -> set[str]:
    """Logical ids a value points at through Ref, Fn::GetAtt or Fn::Sub, on every Fn::If branch."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str) and not _PSEUDO_REF.match(inner):
                found.add(inner)
            elif key == "Fn::GetAtt":
                target = inner.split(".", 1)[0] if isinstance(inner, str) else None
                if isinstance(inner, list) and inner and isinstance(inner[0], str):
                    target = inner[0]
                if target:
                    found.add(target)
            elif key == "Fn::Sub":
                template = inner[0] if isinstance(inner, list) and inner else inner
                if isinstance(template, str):
                    found.update(
                        name.split(".", 1)[0]
                        for name in re.findall(r"\$\{([^}!]+)\}", template)
                        if not _PSEUDO_REF.match(name)
                    )
                if isinstance(inner, list) and len(inner) > 1:
                    found |= referenced_resources(inner[1])
            else:
                found |= referenced_resources(inner)
    elif isinstance(value, list):
        for item in value:
            found |= referenced_resources(item)
    return found


def _leaves(value: Any) -> Iterator[Any]:
    """The scalar alternatives of a value: a list's items and both branches of every Fn::If."""
    if isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, Mapping) and "Fn::If" in value and isinstance(value["Fn::If"], list):
        for branch in value["Fn::If"][1:]:
            yield from _leaves(branch)
    else:
        yield value


def _is_ref_to_no_value(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("Ref") == "AWS::NoValue"


def _statements(document: Any) -> Iterator[tuple[int, Mapping[str, Any]]]:
    if not isinstance(document, Mapping):
        return
    statements = document.get("Statement", [])
    if isinstance(statements, Mapping):
        statements = [statements]
    if isinstance(statements, list):
        for index, statement in enumerate(statements):
            if isinstance(statement, Mapping):
                yield index, statement


def _is_tls_only_statement(statement: Mapping[str, Any]) -> bool:
    """A Deny for everyone of every request made without TLS."""
    if statement.get("Effect") != "Deny" or statement.get("Principal") not in ("*", {"AWS": "*"}):
        return False
    condition = statement.get("Condition", {})
    if not isinstance(condition, Mapping):
        return False
    secure = condition.get("Bool", {})
    return isinstance(secure, Mapping) and str(secure.get("aws:SecureTransport", "")).lower() == "false"


def _tls_only_targets(cfn: Any, policy_type: str, targets_property: str) -> set[str]:
    """Logical ids of buckets or queues that a resource policy with a TLS-only Deny applies to."""
    covered: set[str] = set()
    for _, policy in _of_type(cfn, policy_type):
        properties = _properties(policy)
        if any(_is_tls_only_statement(s) for _, s in _statements(properties.get("PolicyDocument"))):
            covered |= referenced_resources(properties.get(targets_property))
    return covered


# ---------------------------------------------------------------------------------- rules
class FunctionLogGroup(CloudFormationLintRule):  # type: ignore[misc]
    """Without a log group in the template, Lambda creates one on first write, kept forever and
    outside the stack (its retention cannot be set, and deleting the stack leaves it behind)."""

    id = "E9101"
    shortdesc = "Every function has a log group in the template"
    description = (
        "Each Lambda function names a log group of the template in LoggingConfig.LogGroup (or the "
        "template has /aws/lambda/<function> as a log group), and that log group sets RetentionInDays."
    )
    source_url = "https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-advanced.html"
    tags = ["lambda", "logs", "project"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches: list[RuleMatch] = []
        log_groups = dict(_of_type(cfn, "AWS::Logs::LogGroup"))
        named_after: dict[str, str] = {}
        for group_id, group in log_groups.items():
            for target in referenced_resources(_properties(group).get("LogGroupName")):
                named_after[target] = group_id
        for name, function in _of_type(cfn, "AWS::Serverless::Function", "AWS::Lambda::Function"):
            logging_config = _properties(function).get("LoggingConfig", {})
            chosen = referenced_resources(
                logging_config.get("LogGroup") if isinstance(logging_config, Mapping) else None
            )
            group_ids = {group for group in chosen if group in log_groups}
            if not group_ids and name in named_after:
                group_ids = {named_after[name]}
            if not group_ids:
                matches.append(
                    RuleMatch(
                        ["Resources", name, "Properties"],
                        f"Function {name} has no log group in the template: add an AWS::Logs::LogGroup "
                        "and name it in LoggingConfig.LogGroup",
                    )
                )
                continue
            for group_id in sorted(group_ids):
                if "RetentionInDays" not in _properties(log_groups[group_id]):
                    matches.append(
                        RuleMatch(
                            ["Resources", group_id, "Properties"],
                            f"Log group {group_id} of function {name} keeps logs forever: "
                            "set RetentionInDays",
                        )
                    )
        return matches


class AsyncFailureDestination(CloudFormationLintRule):  # type: ignore[misc]
    """A failed asynchronous invocation or queue message that has nowhere to go is lost silently."""

    id = "E9102"
    shortdesc = (
        "Every asynchronous path of a function ends in a dead-letter queue or an OnFailure destination"
    )
    description = (
        "A queue that triggers a function has a RedrivePolicy with a dead-letter queue; a function "
        "invoked asynchronously (schedules, EventBridge, S3, SNS) has an OnFailure destination "
        "(EventInvokeConfig) or a dead-letter queue (DeadLetterQueue / DeadLetterConfig)."
    )
    source_url = "https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html"
    tags = ["lambda", "sqs", "project"]

    # One pass over the async paths of every kind (queue triggers, schedules, events, S3, SNS): each
    # branch is one kind of path, read side by side against the rule's description.
    def match(self, cfn: Any) -> list[RuleMatch]:  # noqa: PLR0912
        matches: list[RuleMatch] = []
        queues = dict(_of_type(cfn, "AWS::SQS::Queue"))
        functions = dict(_of_type(cfn, "AWS::Serverless::Function", "AWS::Lambda::Function"))

        # Queue triggers: (function, the trigger's path, queue ids it reads).
        queue_triggers: list[tuple[str, list[str | int], set[str]]] = []
        async_sources: dict[str, list[list[str | int]]] = {}
        for name, function in functions.items():
            events = _properties(function).get("Events", {})
            if not isinstance(events, Mapping):
                continue
            for event_name, event in events.items():
                if not isinstance(event, Mapping):
                    continue
                path: list[str | int] = ["Resources", name, "Properties", "Events", event_name]
                event_properties = event.get("Properties", {})
                if event.get("Type") in _SAM_QUEUE_EVENTS and isinstance(event_properties, Mapping):
                    queue_triggers.append((name, path, referenced_resources(event_properties.get("Queue"))))
                elif event.get("Type") in _SAM_ASYNC_EVENTS:
                    async_sources.setdefault(name, []).append(path)
        for mapping_id, mapping in _of_type(cfn, "AWS::Lambda::EventSourceMapping"):
            properties = _properties(mapping)
            for function_id in referenced_resources(properties.get("FunctionName")) & functions.keys():
                sources = referenced_resources(properties.get("EventSourceArn")) & queues.keys()
                if sources:
                    queue_triggers.append((function_id, ["Resources", mapping_id], sources))
        for permission_id, permission in _of_type(cfn, "AWS::Lambda::Permission"):
            properties = _properties(permission)
            if str(properties.get("Principal", "")) in _ASYNC_PRINCIPALS:
                for function_id in referenced_resources(properties.get("FunctionName")) & functions.keys():
                    async_sources.setdefault(function_id, []).append(["Resources", permission_id])
        for rule_id, rule in _of_type(cfn, "AWS::Events::Rule", "AWS::Scheduler::Schedule"):
            targets = _properties(rule).get("Targets", _properties(rule).get("Target"))
            for function_id in referenced_resources(targets) & functions.keys():
                async_sources.setdefault(function_id, []).append(["Resources", rule_id])

        for function_id, path, queue_ids in queue_triggers:
            for queue_id in sorted(queue_ids & queues.keys()):
                redrive = _properties(queues[queue_id]).get("RedrivePolicy")
                if not (isinstance(redrive, Mapping) and redrive.get("deadLetterTargetArn")):
                    matches.append(
                        RuleMatch(
                            path,
                            f"Queue {queue_id} triggers {function_id} but has no RedrivePolicy with a "
                            "deadLetterTargetArn: a message that keeps failing is retried until it expires",
                        )
                    )

        invoke_configs = {
            function_id
            for _, config in _of_type(cfn, "AWS::Lambda::EventInvokeConfig")
            if _has_on_failure(_properties(config))
            for function_id in referenced_resources(_properties(config).get("FunctionName"))
        }
        for function_id, paths in sorted(async_sources.items()):
            properties = _properties(functions[function_id])
            if (
                function_id in invoke_configs
                or _has_on_failure(properties.get("EventInvokeConfig"))
                or _has_dead_letter_target(properties.get("DeadLetterQueue"), "TargetArn")
                or _has_dead_letter_target(properties.get("DeadLetterConfig"), "TargetArn")
            ):
                continue
            matches.append(
                RuleMatch(
                    paths[0],
                    f"Function {function_id} is invoked asynchronously but has neither an OnFailure "
                    "destination (EventInvokeConfig) nor a dead-letter queue: a failed event is dropped",
                )
            )
        return matches


def _has_on_failure(config: Any) -> bool:
    if not isinstance(config, Mapping):
        return False
    destination_config = config.get("DestinationConfig", {})
    if not isinstance(destination_config, Mapping):
        return False
    on_failure = destination_config.get("OnFailure", {})
    return isinstance(on_failure, Mapping) and bool(on_failure.get("Destination"))


def _has_dead_letter_target(config: Any, key: str) -> bool:
    return isinstance(config, Mapping) and bool(config.get(key)) and not _is_ref_to_no_value(config.get(key))


class NoWildcardResource(CloudFormationLintRule):  # type: ignore[misc]
    """Resource "*" grants the action on every resource of the account, including other stacks'."""

    id = "E9103"
    shortdesc = 'IAM statements name their resources instead of "*"'
    description = (
        'An Allow statement of a role or function policy has no "*" resource (alone or as "arn:...:*" '
        "with nothing named), unless each of its actions is one IAM authorises only on every resource "
        "(e.g. xray:PutTraceSegments, cloudwatch:PutMetricData)."
    )
    source_url = "https://docs.aws.amazon.com/IAM/latest/UserGuide/best-practices.html#grant-least-privilege"
    tags = ["iam", "project"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches: list[RuleMatch] = []
        for path, statement in self._identity_statements(cfn):
            if statement.get("Effect") != "Allow":
                continue
            wildcard = [
                resource
                for resource in map(_resource_text, _leaves(statement.get("Resource")))
                if _is_any(resource)
            ]
            if not wildcard:
                continue
            actions = [str(action).lower() for action in _leaves(statement.get("Action")) if action]
            if actions and all(action in _ACTIONS_WITHOUT_RESOURCE_SCOPE for action in actions):
                continue
            label = statement.get("Sid") or "statement"
            matches.append(
                RuleMatch(
                    [*path, "Resource"],
                    f"{label} allows {', '.join(actions) or 'its actions'} on {wildcard[0]!r}: name the "
                    "resources (the template knows them: Ref, Fn::GetAtt or Fn::Sub of their names)",
                )
            )
        return matches

    @staticmethod
    def _identity_statements(cfn: Any) -> Iterator[tuple[list[str | int], Mapping[str, Any]]]:
        for name, resource in _of_type(cfn, "AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
            policies = _properties(resource).get("Policies", [])
            for index, policy in enumerate(policies if isinstance(policies, list) else []):
                if isinstance(policy, Mapping):
                    for at, statement in _statements(policy.get("PolicyDocument")):
                        yield (
                            [
                                "Resources",
                                name,
                                "Properties",
                                "Policies",
                                index,
                                "PolicyDocument",
                                "Statement",
                                at,
                            ],
                            statement,
                        )
        for name, resource in _of_type(cfn, "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for at, statement in _statements(_properties(resource).get("PolicyDocument")):
                yield ["Resources", name, "Properties", "PolicyDocument", "Statement", at], statement
        for name, resource in _of_type(cfn, "AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            policies = _properties(resource).get("Policies", [])
            if isinstance(policies, Mapping):
                policies = [policies]
            for index, policy in enumerate(policies if isinstance(policies, list) else []):
                # Inline documents only: SAM policy templates take resource names as parameters, and
                # a managed policy's ARN is a string.
                if isinstance(policy, Mapping) and "Statement" in policy:
                    for at, statement in _statements(policy):
                        yield ["Resources", name, "Properties", "Policies", index, "Statement", at], statement


def _resource_text(leaf: Any) -> str:
    """A resource as text, Fn::Sub placeholders standing for a name ("${DropBucket}" reads "name")."""
    if isinstance(leaf, Mapping) and "Fn::Sub" in leaf:
        template = leaf["Fn::Sub"][0] if isinstance(leaf["Fn::Sub"], list) else leaf["Fn::Sub"]
        return re.sub(r"\$\{[^}]*\}", "name", template) if isinstance(template, str) else ""
    return leaf if isinstance(leaf, str) else ""


def _is_any(resource: str) -> bool:
    """ "*", "arn:aws:s3:::*" or "arn:aws:sqs:*:*:*": nothing named."""
    if resource == "*":
        return True
    if not resource.startswith("arn:"):
        return False
    name = resource.split(":", 5)[5] if resource.count(":") >= 5 else ""
    return name in {"*", ""} or name.rstrip("/*") == ""


class EncryptedTlsOnlyStorage(CloudFormationLintRule):  # type: ignore[misc]
    """Data at rest is encrypted, and no request reaches it over plain HTTP."""

    id = "E9104"
    shortdesc = "Every bucket and queue is encrypted and refuses requests without TLS"
    description = (
        "Each S3 bucket sets BucketEncryption and each SQS queue SqsManagedSseEnabled or KmsMasterKeyId; "
        "each has a bucket or queue policy with a Deny of aws:SecureTransport false for every principal."
    )
    source_url = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/security-best-practices.html"
    tags = ["s3", "sqs", "encryption", "project"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches: list[RuleMatch] = []
        tls_buckets = _tls_only_targets(cfn, "AWS::S3::BucketPolicy", "Bucket")
        for name, bucket in _of_type(cfn, "AWS::S3::Bucket"):
            encryption = _properties(bucket).get("BucketEncryption", {})
            rules = (
                encryption.get("ServerSideEncryptionConfiguration")
                if isinstance(encryption, Mapping)
                else None
            )
            if not rules:
                matches.append(
                    RuleMatch(
                        ["Resources", name, "Properties"],
                        f"Bucket {name} sets no BucketEncryption.ServerSideEncryptionConfiguration",
                    )
                )
            if name not in tls_buckets:
                matches.append(
                    RuleMatch(
                        ["Resources", name],
                        f"Bucket {name} has no bucket policy denying requests without TLS "
                        "(Deny, Principal *, Condition Bool aws:SecureTransport false)",
                    )
                )
        tls_queues = _tls_only_targets(cfn, "AWS::SQS::QueuePolicy", "Queues")
        for name, queue in _of_type(cfn, "AWS::SQS::Queue"):
            properties = _properties(queue)
            managed = str(properties.get("SqsManagedSseEnabled", "")).lower() == "true"
            if not managed and not properties.get("KmsMasterKeyId"):
                matches.append(
                    RuleMatch(
                        ["Resources", name, "Properties"],
                        f"Queue {name} is not encrypted: set SqsManagedSseEnabled: true or KmsMasterKeyId",
                    )
                )
            if name not in tls_queues:
                matches.append(
                    RuleMatch(
                        ["Resources", name],
                        f"Queue {name} has no queue policy denying requests without TLS "
                        "(Deny, Principal *, Condition Bool aws:SecureTransport false)",
                    )
                )
        return matches
