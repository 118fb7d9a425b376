"""Parameters, Rules and SAM Globals as the local stack reads them from a template."""

from pathlib import Path

import pytest

from cdpbridge_local.stack.template import SamTemplate, TemplateParameterError, TemplateRuleError

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  Instance:
    Type: String
    Default: US-01
    AllowedValues: [US-01, EU-01]
  Name:
    Type: String
    Default: ""
    AllowedPattern: ^$|^[a-z-]+$
    ConstraintDescription: lower-case letters and hyphens
  Count:
    Type: Number
    Default: 5
    MinValue: 2
    MaxValue: 10
  Subnets:
    Type: CommaDelimitedList
    Default: a,b
  Required:
    Type: String
Rules:
  NeedsName:
    RuleCondition: !Equals [!Ref Instance, EU-01]
    Assertions:
      - Assert: !Not [!Equals [!Ref Name, ""]]
        AssertDescription: EU stacks need a name.
Globals:
  Function:
    Runtime: python3.12
    Timeout: 30
    Layers: [!Ref SharedLayer]
    Environment:
      Variables:
        SHARED: global
        LEVEL: INFO
Resources:
  SharedLayer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: layer/}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Timeout: 60
      Layers: [!Ref OwnLayer]
      Environment:
        Variables:
          LEVEL: DEBUG
          OWN: yes-own
"""


@pytest.fixture
def template(tmp_path: Path) -> SamTemplate:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE, encoding="utf-8")
    return SamTemplate.load(path)


def test_defaults_fill_in_and_lists_split(template: SamTemplate):
    # When only the required parameter is given
    values = template.parameter_values({"Required": "x"})

    # Then the rest come from defaults, and a list parameter is a list
    assert values == {"Instance": "US-01", "Name": "", "Count": "5", "Subnets": ["a", "b"], "Required": "x"}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({}, "parameter Required has no default"),
        ({"Required": "x", "Instance": "US-09"}, "Instance='US-09': must be one of US-01, EU-01"),
        ({"Required": "x", "Name": "Bad Name"}, "must match .* \\(lower-case letters and hyphens\\)"),
        ({"Required": "x", "Count": 11}, "Count='11': must be at most 10"),
        ({"Required": "x", "Count": "many"}, "Count='many': must be a number"),
        ({"Required": "x", "Typo": "1"}, "has no parameter Typo"),
    ],
)
def test_bad_parameter_values_are_refused_with_the_reason(template: SamTemplate, given, message):
    with pytest.raises(TemplateParameterError, match=message):
        template.parameter_values(given)


def test_a_failing_rule_stops_the_stack_with_its_description(template: SamTemplate):
    # Given parameters that break the rule
    values = template.parameter_values({"Required": "x", "Instance": "EU-01"})
    resolver = template.parameters_resolver(values, {"AWS::Region": "us-east-1"})

    # When / Then the rule's description is the error
    with pytest.raises(TemplateRuleError, match=r"rule NeedsName: EU stacks need a name\."):
        template.check_rules(resolver)


def test_a_rule_whose_condition_is_false_is_skipped(template: SamTemplate):
    values = template.parameter_values({"Required": "x", "Instance": "US-01"})
    template.check_rules(template.parameters_resolver(values, {"AWS::Region": "us-east-1"}))


def test_globals_merge_maps_append_lists_and_let_the_function_override_scalars(template: SamTemplate):
    # When the function's properties are read
    properties = template.function_properties("Fn")

    # Then SAM's merge rules apply
    assert properties["Runtime"] == "python3.12"
    assert properties["Timeout"] == 60
    assert properties["Layers"] == [{"Ref": "SharedLayer"}, {"Ref": "OwnLayer"}]
    assert properties["Environment"]["Variables"] == {"SHARED": "global", "LEVEL": "DEBUG", "OWN": "yes-own"}
