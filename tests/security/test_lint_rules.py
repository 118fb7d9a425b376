"""The project's cfn-lint rules (lint/rules), each on a small template that keeps it and one that
breaks it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "lint" / "rules"

HEADER = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: [AWS::LanguageExtensions, AWS::Serverless-2016-10-31]
Resources:
"""

# Pieces every template below needs to be clean under the rules it is not about.
TLS_BUCKET = """
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketEncryption:
        ServerSideEncryptionConfiguration:
          - ServerSideEncryptionByDefault: {SSEAlgorithm: AES256}
  BucketPolicy:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref Bucket
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Deny
            Principal: "*"
            Action: s3:*
            Resource: [!GetAtt Bucket.Arn, !Sub "${Bucket.Arn}/*"]
            Condition: {Bool: {aws:SecureTransport: "false"}}
"""


def queue_policy(*queues: str) -> str:
    listed = ", ".join(f"!Ref {queue}" for queue in queues)
    arns = ", ".join(f"!GetAtt {queue}.Arn" for queue in queues)
    return f"""
  QueuesPolicy:
    Type: AWS::SQS::QueuePolicy
    Properties:
      Queues: [{listed}]
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Deny
            Principal: "*"
            Action: sqs:*
            Resource: [{arns}]
            Condition: {{Bool: {{aws:SecureTransport: "false"}}}}
"""


def queue(name: str, *, dead_letter: str | None = None, encrypted: bool = True) -> str:
    lines = [f"  {name}:", "    Type: AWS::SQS::Queue", "    Properties:"]
    lines.append(f"      SqsManagedSseEnabled: {'true' if encrypted else 'false'}")
    if dead_letter:
        lines += [
            "      RedrivePolicy:",
            f"        deadLetterTargetArn: !GetAtt {dead_letter}.Arn",
            "        maxReceiveCount: 5",
        ]
    return "\n" + "\n".join(lines) + "\n"


def log_group(name: str, retention: bool = True) -> str:
    text = f"""
  {name}:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: /aws/lambda/{name}
"""
    return text + ("      RetentionInDays: 30\n" if retention else "")


def function(name: str, *, body: str = "", log: str | None = None) -> str:
    text = f"""
  {name}:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.lambda_handler
      CodeUri: src/
"""
    if log:
        text += f"      LoggingConfig:\n        LogGroup: !Ref {log}\n"
    return text + textwrap.indent(textwrap.dedent(body), "      ")


def findings(template: str, rule_id: str) -> list[str]:
    matches = lint(template, config=ManualArgs(append_rules=[str(RULES)], regions=["us-east-1"]))
    return [match.message for match in matches if match.rule.id == rule_id]


# ------------------------------------------------------------------------------ E9101 log groups
def test_a_function_with_its_own_log_group_passes() -> None:
    template = HEADER + log_group("Logs") + function("Fn", log="Logs")
    assert findings(template, "E9101") == []


def test_a_log_group_named_after_the_function_counts() -> None:
    template = (
        HEADER
        + function("Fn")
        + """
  FnLogs:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: !Sub /aws/lambda/${Fn}
      RetentionInDays: 7
"""
    )
    assert findings(template, "E9101") == []


def test_a_function_without_a_log_group_is_reported() -> None:
    assert findings(HEADER + function("Fn"), "E9101") == [
        "Function Fn has no log group in the template: add an AWS::Logs::LogGroup and name it in "
        "LoggingConfig.LogGroup"
    ]


def test_a_log_group_without_retention_is_reported() -> None:
    template = HEADER + log_group("Logs", retention=False) + function("Fn", log="Logs")
    assert findings(template, "E9101") == [
        "Log group Logs of function Fn keeps logs forever: set RetentionInDays"
    ]


def test_functions_made_by_for_each_are_checked_one_by_one() -> None:
    template = (
        HEADER
        + log_group("GenericLogs")
        + """
  Fn::ForEach::Integrations:
    - Name
    - [Generic, Other]
    - ${Name}Function:
        Type: AWS::Serverless::Function
        Properties:
          Runtime: python3.12
          Handler: app.lambda_handler
          CodeUri: src/
          LoggingConfig:
            LogGroup: !Ref GenericLogs
"""
    )
    assert findings(template, "E9101") == []
    broken = template.replace("LogGroup: !Ref GenericLogs", "LogFormat: JSON")
    assert sorted(findings(broken, "E9101")) == [
        "Function GenericFunction has no log group in the template: add an AWS::Logs::LogGroup and name "
        "it in LoggingConfig.LogGroup",
        "Function OtherFunction has no log group in the template: add an AWS::Logs::LogGroup and name "
        "it in LoggingConfig.LogGroup",
    ]


# ------------------------------------------------------------------------------ E9102 async failures
SQS_EVENT = """
Events:
  Inbound:
    Type: SQS
    Properties:
      Queue: !GetAtt Inbound.Arn
"""
SCHEDULE_EVENT = """
Events:
  Nightly:
    Type: Schedule
    Properties:
      Schedule: rate(1 day)
"""
ON_FAILURE = """
EventInvokeConfig:
  MaximumRetryAttempts: 2
  DestinationConfig:
    OnFailure:
      Type: SQS
      Destination: !GetAtt Failures.Arn
"""


def test_a_queue_trigger_with_a_dead_letter_queue_passes() -> None:
    template = HEADER + queue("Dlq") + queue("Inbound", dead_letter="Dlq") + function("Fn", body=SQS_EVENT)
    assert findings(template, "E9102") == []


def test_a_queue_trigger_without_a_dead_letter_queue_is_reported() -> None:
    template = HEADER + queue("Inbound") + function("Fn", body=SQS_EVENT)
    (message,) = findings(template, "E9102")
    assert message.startswith("Queue Inbound triggers Fn but has no RedrivePolicy")


def test_a_plain_event_source_mapping_is_checked_too() -> None:
    template = (
        HEADER
        + queue("Inbound")
        + """
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: app.lambda_handler
      Role: arn:aws:iam::123456789012:role/fn
      Code: {ZipFile: "def lambda_handler(event, context): pass"}
  Trigger:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: !Ref Fn
      EventSourceArn: !GetAtt Inbound.Arn
"""
    )
    (message,) = findings(template, "E9102")
    assert message.startswith("Queue Inbound triggers Fn")


def test_a_scheduled_function_with_an_on_failure_destination_passes() -> None:
    template = HEADER + queue("Failures") + function("Fn", body=SCHEDULE_EVENT + ON_FAILURE)
    assert findings(template, "E9102") == []


def test_a_scheduled_function_with_a_dead_letter_queue_passes() -> None:
    body = SCHEDULE_EVENT + "DeadLetterQueue:\n  Type: SQS\n  TargetArn: !GetAtt Failures.Arn\n"
    template = HEADER + queue("Failures") + function("Fn", body=body)
    assert findings(template, "E9102") == []


def test_a_scheduled_function_without_a_failure_path_is_reported() -> None:
    (message,) = findings(HEADER + function("Fn", body=SCHEDULE_EVENT), "E9102")
    assert message.startswith("Function Fn is invoked asynchronously but has neither an OnFailure")


def test_a_function_invoked_by_an_eventbridge_rule_needs_a_failure_path() -> None:
    template = (
        HEADER
        + function("Fn")
        + """
  Nightly:
    Type: AWS::Events::Rule
    Properties:
      ScheduleExpression: rate(1 day)
      Targets:
        - Id: fn
          Arn: !GetAtt Fn.Arn
"""
    )
    (message,) = findings(template, "E9102")
    assert "Function Fn is invoked asynchronously" in message
    fixed = (
        template
        + """
  FnInvokeConfig:
    Type: AWS::Lambda::EventInvokeConfig
    Properties:
      FunctionName: !Ref Fn
      Qualifier: $LATEST
      DestinationConfig:
        OnFailure:
          Destination: !GetAtt Failures.Arn
"""
        + queue("Failures")
    )
    assert findings(fixed, "E9102") == []


# ------------------------------------------------------------------------------ E9103 wildcard resources
def policy(resource: str, actions: str = "[sqs:SendMessage]") -> str:
    return f"""
Policies:
  - Statement:
      - Sid: Send
        Effect: Allow
        Action: {actions}
        Resource: {resource}
"""


@pytest.mark.parametrize(
    "resource",
    [
        "!GetAtt Q.Arn",
        "!Sub arn:${AWS::Partition}:s3:::${Bucket}/inbound/*",
        "!If [Cond, !GetAtt Q.Arn, !Ref AWS::NoValue]",
    ],
)
def test_a_statement_naming_its_resources_passes(resource: str) -> None:
    template = HEADER + queue("Q") + function("Fn", body=policy(resource))
    template = template.replace("Resources:", "Conditions:\n  Cond: !Equals [a, a]\nResources:", 1)
    assert findings(template, "E9103") == []


@pytest.mark.parametrize(
    "resource",
    [
        '"*"',
        '["*"]',
        "arn:aws:sqs:*:*:*",
        "!Sub arn:${AWS::Partition}:s3:::*",
        '!If [Cond, "*", !GetAtt Q.Arn]',
    ],
)
def test_a_wildcard_resource_is_reported(resource: str) -> None:
    template = HEADER + queue("Q") + function("Fn", body=policy(resource))
    template = template.replace("Resources:", "Conditions:\n  Cond: !Equals [a, a]\nResources:", 1)
    (message,) = findings(template, "E9103")
    assert message.startswith("Send allows sqs:sendmessage on")


def test_actions_that_only_take_a_wildcard_are_allowed_it() -> None:
    body = policy('"*"', actions="[xray:PutTraceSegments, cloudwatch:PutMetricData]")
    assert findings(HEADER + function("Fn", body=body), "E9103") == []
    mixed = policy('"*"', actions="[xray:PutTraceSegments, s3:GetObject]")
    assert len(findings(HEADER + function("Fn", body=mixed), "E9103")) == 1


def test_role_policies_and_deny_statements() -> None:
    template = (
        HEADER
        + """
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {Service: lambda.amazonaws.com}
            Action: sts:AssumeRole
      Policies:
        - PolicyName: inline
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - Effect: Deny
                Action: s3:DeleteBucket
                Resource: "*"
              - Effect: Allow
                Action: dynamodb:GetItem
                Resource: "*"
"""
    )
    (message,) = findings(template, "E9103")
    assert message.startswith("statement allows dynamodb:getitem on '*'")


# ------------------------------------------------------------------------------ E9104 encryption and TLS
def test_an_encrypted_tls_only_bucket_and_queue_pass() -> None:
    template = HEADER + TLS_BUCKET + queue("Q") + queue_policy("Q")
    assert findings(template, "E9104") == []


def test_a_queue_listed_under_a_condition_counts_as_covered() -> None:
    template = (
        HEADER
        + queue("Q")
        + queue_policy("Q").replace("Queues: [!Ref Q]", "Queues: [!If [Cond, !Ref Q, !Ref AWS::NoValue]]")
    )
    template = template.replace("Resources:", "Conditions:\n  Cond: !Equals [a, a]\nResources:", 1)
    assert findings(template, "E9104") == []


def test_an_unencrypted_queue_is_reported() -> None:
    template = HEADER + queue("Q", encrypted=False) + queue_policy("Q")
    assert findings(template, "E9104") == [
        "Queue Q is not encrypted: set SqsManagedSseEnabled: true or KmsMasterKeyId"
    ]


def test_a_queue_without_a_tls_only_policy_is_reported() -> None:
    allow_only = queue_policy("Q").replace("Effect: Deny", "Effect: Allow")
    for template in (HEADER + queue("Q"), HEADER + queue("Q") + allow_only):
        (message,) = findings(template, "E9104")
        assert message.startswith("Queue Q has no queue policy denying requests without TLS")


def test_a_bucket_without_encryption_or_tls_policy_is_reported() -> None:
    template = HEADER + "\n  Bucket:\n    Type: AWS::S3::Bucket\n"
    assert findings(template, "E9104") == [
        "Bucket Bucket sets no BucketEncryption.ServerSideEncryptionConfiguration",
        "Bucket Bucket has no bucket policy denying requests without TLS (Deny, Principal *, Condition "
        "Bool aws:SecureTransport false)",
    ]


# ------------------------------------------------------------------------------ the project's template
def test_the_project_template_keeps_every_rule() -> None:
    template = (ROOT / "template.yaml").read_text()
    matches = lint(template, config=ManualArgs(append_rules=[str(RULES)], regions=["us-east-1"]))
    assert [f"{m.rule.id} {m.message}" for m in matches if m.rule.id.startswith("E91")] == []
