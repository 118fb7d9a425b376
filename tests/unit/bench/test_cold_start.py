"""Cold start: handler modules found in a template, timed in fresh interpreters, failures reported."""

from __future__ import annotations

from pathlib import Path

from cold_start import handler_modules, measure

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  LogLevel:
    Type: String
    Default: WARNING
Globals:
  Function:
    Runtime: python3.12
    Layers: [!Ref SharedLayer]
    Environment:
      Variables:
        LOG_LEVEL: !Ref LogLevel
        QUEUE_URL: !Ref SomeQueue
Resources:
  SharedLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layer/
  SomeQueue:
    Type: AWS::SQS::Queue
  GoodFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/good/
      Handler: app.lambda_handler
      Environment:
        Variables:
          INTEGRATION: generic
  BrokenFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/broken/
      Handler: handler.main
"""


def write_stack(root: Path) -> Path:
    (root / "layer" / "shared").mkdir(parents=True)
    (root / "layer" / "shared" / "__init__.py").write_text("VALUE = 1\n")
    (root / "functions" / "good").mkdir(parents=True)
    # The handler reads what the template and Lambda set, and imports from the layer.
    (root / "functions" / "good" / "app.py").write_text(
        "import os\nimport shared\n"
        "assert os.environ['LOG_LEVEL'] == 'WARNING'\n"
        "assert os.environ['INTEGRATION'] == 'generic'\n"
        "assert os.environ['AWS_LAMBDA_FUNCTION_NAME'] == 'GoodFunction'\n"
        "def lambda_handler(event, context):\n    return shared.VALUE\n"
    )
    (root / "functions" / "broken").mkdir(parents=True)
    (root / "functions" / "broken" / "handler.py").write_text("import module_that_does_not_exist\n")
    template = root / "template.yaml"
    template.write_text(TEMPLATE)
    return template


def test_every_function_of_the_template_is_found_with_its_layer_and_environment(tmp_path: Path) -> None:
    # Given a template with two functions sharing a layer
    handlers = {handler.function: handler for handler in handler_modules(write_stack(tmp_path))}
    # Then each has its code directory, module, the layer and the environment Lambda would give it
    assert set(handlers) == {"GoodFunction", "BrokenFunction"}
    good = handlers["GoodFunction"]
    assert good.module == "app"
    assert good.code_dir == tmp_path / "functions" / "good/"
    assert good.layer_dirs == (tmp_path / "layer/",)
    assert good.environment["LOG_LEVEL"] == "WARNING"  # a parameter at its default
    assert good.environment["QUEUE_URL"] == "bench-queue-url"  # a resource: a placeholder
    assert good.environment["INTEGRATION"] == "generic"
    assert handlers["BrokenFunction"].module == "handler"


def test_a_handler_is_timed_and_a_broken_one_is_reported_not_crashed_on(tmp_path: Path) -> None:
    handlers = {handler.function: handler for handler in handler_modules(write_stack(tmp_path))}
    # When both are measured in fresh interpreters
    good = measure(handlers["GoodFunction"], repeats=1)
    broken = measure(handlers["BrokenFunction"], repeats=1)
    # Then the good one has import times and the broken one its error
    assert good["ms"] is not None and good["ms"] > 0
    assert good["ms_no_pyc"] is not None and good["ms_no_pyc"] > 0
    assert "error" not in good
    assert broken["ms"] is None
    assert "module_that_does_not_exist" in broken["error"]
