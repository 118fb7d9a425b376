"""template.yaml: every handler it names imports, and every function is wired the way the project requires.

The handler check imports each handler in a fresh interpreter with only the function's directory and
its layers on sys.path, as Lambda does, so a missing module or a typo in Handler fails here.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cdpbridge_local.stack.template import SERVERLESS_FUNCTION, SamTemplate

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = SamTemplate.load(ROOT / "template.yaml")
RESOURCES = TEMPLATE.resources
# Resolves what the template writes with intrinsics (an import function's CodeUri is an Fn::FindInMap).
RESOLVER = TEMPLATE.parameters_resolver(TEMPLATE.parameter_values({}), pseudo={})
FUNCTIONS = sorted(name for name, body in RESOURCES.items() if body["Type"] == SERVERLESS_FUNCTION)
# The generic import handler imports cdpbridge.sync.runtime, written separately from the template.
IMPORT_RUNTIME = ROOT / "layers" / "cdpbridge" / "cdpbridge" / "sync" / "runtime.py"
REQUIRED_ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "LOG_LEVEL",
    "BRAZE_INSTANCE",
    "BRAZE_API_KEY_SECRET",
    "BRAZE_MAX_CONCURRENCY",
    "DROP_BUCKET",
    "FIELD_STATE_TABLE",
    "RUN_STATE_TABLE",
    "IDEMPOTENCY_TABLE",
}
# What each kind of function reads besides: the import and export runtimes check they were deployed
# for their integration; Currents reads its tables, prefix and Lytics settings (CurrentsSettings).
REQUIRED_ENVIRONMENT_OF = {
    "CurrentsFunction": {
        "CURRENTS_STATE_TABLE",
        "ENGAGEMENT_PROFILE_TABLE",
        "CURRENTS_PREFIX",
        "LYTICS_URL",
        "LYTICS_TOKEN_SECRET",
    },
}
INTEGRATION_ENVIRONMENT = {"INTEGRATION"}

IMPORT_CHECK = """
import importlib, os, sys
code_dir, handler, *layer_dirs = sys.argv[1:]
sys.path[:0] = [code_dir, *layer_dirs]
os.chdir(code_dir)
module_name, _, function_name = handler.rpartition(".")
function = getattr(importlib.import_module(module_name), function_name)
assert callable(function), f"{handler} is not callable"
"""


def function_dirs(logical_id: str) -> tuple[Path, str, list[Path]]:
    properties = TEMPLATE.function_properties(logical_id)
    layer_dirs = []
    for layer in properties.get("Layers", []):
        layer_id = layer["Ref"]
        layer_dirs.append(ROOT / RESOURCES[layer_id]["Properties"]["ContentUri"])
    return ROOT / code_uri_of(logical_id), properties["Handler"], layer_dirs


def code_uri_of(logical_id: str) -> str:
    code_uri: str = RESOLVER.resolve(TEMPLATE.function_properties(logical_id)["CodeUri"], logical_id)
    return code_uri


def import_marks(logical_id: str) -> list[Any]:
    if logical_id == "GenericImportFunction":
        return [
            pytest.mark.xfail(
                condition=not IMPORT_RUNTIME.exists(),
                reason="cdpbridge/sync/runtime.py does not exist yet",
                strict=True,
            )
        ]
    return []


@pytest.mark.parametrize(
    "logical_id", [pytest.param(name, marks=import_marks(name), id=name) for name in FUNCTIONS]
)
def test_every_handler_imports_with_only_its_code_and_layers_on_the_path(logical_id: str):
    # Given the function's code directory, handler and layer directories from the template
    code_dir, handler, layer_dirs = function_dirs(logical_id)
    assert code_dir.is_dir(), f"{logical_id}: CodeUri {code_dir} is not a directory"

    # When the handler is imported in a fresh, isolated interpreter
    result = subprocess.run(
        [sys.executable, "-I", "-c", IMPORT_CHECK, str(code_dir), handler, *map(str, layer_dirs)],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": os.environ.get("PATH", ""),
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        },
        check=False,
    )

    # Then it imported
    assert result.returncode == 0, f"{logical_id}: {handler} does not import:\n{result.stderr}"


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_every_function_has_the_environment_the_layer_reads(logical_id: str):
    variables = TEMPLATE.function_properties(logical_id)["Environment"]["Variables"]
    required = REQUIRED_ENVIRONMENT | REQUIRED_ENVIRONMENT_OF.get(logical_id, INTEGRATION_ENVIRONMENT)
    assert set(variables) >= required, f"missing: {sorted(required - set(variables))}"


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_every_function_logs_to_its_own_group_with_retention(logical_id: str):
    properties = TEMPLATE.function_properties(logical_id)
    log_group = RESOURCES[properties["LoggingConfig"]["LogGroup"]["Ref"]]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert log_group["Properties"]["LogGroupName"]["Fn::Sub"].startswith("/aws/lambda/")


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_every_function_has_error_and_throttle_alarms(logical_id: str):
    watched = {
        body["Properties"]["MetricName"]
        for body in RESOURCES.values()
        if body["Type"] == "AWS::CloudWatch::Alarm"
        and {"Name": "FunctionName", "Value": {"Ref": logical_id}} in body["Properties"].get("Dimensions", [])
    }
    assert {"Errors", "Throttles"} <= watched


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_sqs_triggers_report_item_failures_cap_concurrency_and_have_a_dead_letter_queue(logical_id: str):
    events = TEMPLATE.function_properties(logical_id).get("Events", {})
    sqs_events = [event["Properties"] for event in events.values() if event["Type"] == "SQS"]
    for properties in sqs_events:
        assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert "BatchSize" in properties
        assert "Ref" in properties["ScalingConfig"]["MaximumConcurrency"]
        queue = RESOURCES[properties["Queue"]["Fn::GetAtt"][0]]
        redrive = queue["Properties"]["RedrivePolicy"]
        assert RESOURCES[redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]]["Type"] == "AWS::SQS::Queue"
        dead_letter_alarms = [
            body
            for body in RESOURCES.values()
            if body["Type"] == "AWS::CloudWatch::Alarm"
            and body["Properties"]["Dimensions"][0]["Value"]
            == {"Fn::GetAtt": [redrive["deadLetterTargetArn"]["Fn::GetAtt"][0], "QueueName"]}
        ]
        assert dead_letter_alarms, f"{logical_id}: no alarm on its dead-letter queue"


def statements(value: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(value, dict):
        if "Effect" in value and "Action" in value:
            found.append(value)
        for item in value.values():
            found += statements(item)
    elif isinstance(value, list):
        for item in value:
            found += statements(item)
    return found


def test_no_allow_statement_grants_every_resource():
    allows = [statement for statement in statements(RESOURCES) if statement["Effect"] == "Allow"]
    assert allows
    for statement in allows:
        resources = statement.get("Resource", [])
        assert "*" not in (resources if isinstance(resources, list) else [resources]), json.dumps(statement)


def test_every_function_directory_belongs_to_a_function_and_every_sample_to_a_function():
    code_dirs = {code_uri_of(name).rstrip("/") for name in FUNCTIONS}
    on_disk = {
        f"functions/{path.name}"
        for path in (ROOT / "functions").iterdir()
        if path.is_dir() and path.name != "__pycache__"
    }
    assert on_disk == code_dirs
    samples = sorted((ROOT / "events").glob("*.json"))
    assert samples
    prefixes = {sample_prefix(name) for name in FUNCTIONS}
    for sample in samples:
        assert any(sample.stem.startswith(prefix + "_") for prefix in prefixes), (
            f"{sample.name} names no function"
        )


def sample_prefix(logical_id: str) -> str:
    """GenericImportFunction -> generic_import: the name of its code directory, which prefixes its
    events/ samples (a name such as BlueConic does not snake-case to the directory's name)."""
    return Path(code_uri_of(logical_id)).name


def test_the_dashboard_body_is_json_and_charts_the_sync_metrics():
    # Given the template's default parameters
    values = TEMPLATE.parameter_values({})
    pseudo = {
        "AWS::Region": "eu-west-1",
        "AWS::StackName": "braze-cdp-bridge",
        "AWS::AccountId": "123456789012",
    }
    resolver = TEMPLATE.parameters_resolver(values, pseudo)

    # When the dashboard body is substituted
    body = resolver.resolve(RESOURCES["SyncDashboard"]["Properties"]["DashboardBody"], "SyncDashboard")

    # Then it is valid JSON that charts each metric the functions publish
    widgets = json.loads(body)["widgets"]
    expressions = [widget["properties"]["metrics"][0][0]["expression"] for widget in widgets]
    for metric in ("RowsSynced", "DataPointsSaved", "RateLimited", "Rejects"):
        assert f"SEARCH('Namespace=\"BrazeCdpBridge\" MetricName=\"{metric}\"', 'Sum', 300)" in expressions
    assert all(widget["properties"]["region"] == "eu-west-1" for widget in widgets)
