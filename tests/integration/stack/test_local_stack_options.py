"""Starting the local stack with parameters and options (each test runs its own stack)."""

import json
from pathlib import Path

import pytest

from cdpbridge_local.stack import LocalStack, LocalStackError, TemplateParameterError, TemplateRuleError

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "stack" / "template.yaml"


def test_parameters_decide_conditions_and_properties():
    # When the scheduled function is switched off and the batch size changed
    with LocalStack.start(
        FIXTURE,
        {"EnableScheduled": "false", "RecorderBatchSize": 1},
        stack_name="options-conditions",
        with_emulator=False,
    ) as stack:
        # Then the conditional function and output are absent and the batch size follows the parameter
        assert "ScheduledFunction" not in stack.functions
        assert "ScheduledName" not in stack.outputs()
        assert stack.functions["RecorderFunction"].sqs_triggers[0].batch_size == 1


def test_bad_parameters_and_failing_rules_stop_the_start_before_anything_runs():
    with pytest.raises(TemplateParameterError, match="RequiredWord='Not Valid': must match"):
        LocalStack.start(FIXTURE, {"RequiredWord": "Not Valid"}, with_emulator=False)
    with pytest.raises(TemplateRuleError, match="The scheduled function needs a greeting"):
        LocalStack.start(FIXTURE, {"Greeting": ""}, with_emulator=False)


def test_env_vars_reach_functions_and_a_failing_schedule_ends_in_its_on_failure_destination():
    # Given an environment file that makes the scheduled function fail and sets a value for all
    env_vars = {"Parameters": {"GREETING": "from-env-vars"}, "ScheduledFunction": {"SCHEDULE_FAILS": "1"}}
    with LocalStack.start(FIXTURE, stack_name="options-env", with_emulator=False, env_vars=env_vars) as stack:
        # When its schedule fires
        records = stack.fire_schedule("ScheduledFunction", "EveryMinute")

        # Then it was tried 1 + MaximumRetryAttempts times and the failure went to the destination
        assert [record.error["errorType"] for record in records if record.error] == [
            "ValueError",
            "ValueError",
        ]
        failures = stack.take_messages("FailureQueue")
        assert len(failures) == 1
        destination_record = json.loads(failures[0]["Body"])
        assert destination_record["requestContext"]["condition"] == "RetriesExhausted"
        assert destination_record["requestContext"]["approximateInvokeCount"] == 2
        assert destination_record["requestPayload"]["detail-type"] == "Scheduled Event"
        assert destination_record["responsePayload"]["errorMessage"] == "scheduled run failed on purpose"
        # And the file's Parameters section applied to every function
        assert stack.function_environment(stack.functions["PlainFunction"])["GREETING"] == "from-env-vars"


def test_a_shorter_failed_message_visibility_retries_without_the_queues_long_timeout():
    # Given a queue whose visibility timeout (600 s) would hold a failed message for ten minutes
    with LocalStack.start(
        FIXTURE, stack_name="options-retry", with_emulator=False, failed_message_visibility_s=0
    ) as stack:
        stack.sqs_client.send_message(
            QueueUrl=stack.physical_id("SlowRetryQueue"), MessageBody=json.dumps({"fail": True})
        )

        # When drained with failed messages made visible again at once
        records = stack.drain(timeout_s=20)

        # Then the message was retried up to maxReceiveCount and dead-lettered within the drain
        assert [len(record.failed_message_ids) for record in records] == [1, 1]
        assert len(stack.take_messages("SlowRetryDeadLetterQueue")) == 1


def test_s3_test_events_can_be_kept_and_secret_values_set():
    # When S3's test events are kept and the secret's value is chosen
    with LocalStack.start(
        FIXTURE,
        stack_name="options-test-events",
        with_emulator=False,
        keep_s3_test_events=True,
        secret_values={"ApiKeySecret": "another-key"},
    ) as stack:
        # Then each notified queue holds the s3:TestEvent S3 sent when notifications were stored
        bodies = [json.loads(message["Body"]) for message in stack.take_messages("RecorderQueue")]
        assert [body["Event"] for body in bodies] == ["s3:TestEvent"]
        secret = stack.secrets_client.get_secret_value(SecretId=stack.physical_id("ApiKeySecret"))
        assert secret["SecretString"] == "another-key"


def test_only_one_stack_runs_per_process_because_motos_state_is_shared():
    with (
        LocalStack.start(FIXTURE, stack_name="options-first", with_emulator=False),
        pytest.raises(LocalStackError, match="already running"),
    ):
        LocalStack.start(FIXTURE, stack_name="options-second", with_emulator=False)
    # And once stopped, another can start
    with LocalStack.start(FIXTURE, stack_name="options-second", with_emulator=False) as stack:
        assert stack.drop_bucket == "options-second-drop"
