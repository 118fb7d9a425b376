"""Fn::ForEach expansion: identifiers in keys, strings and Refs, nested loops, Fn::FindInMap collections."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cdpbridge_local.stack.cfn_yaml import TemplateFormatError, load_template_text
from cdpbridge_local.stack.language_extensions import expand_language_extensions
from cdpbridge_local.stack.template import SamTemplate

ROOT = Path(__file__).resolve().parents[3]

LOOPED = """
Transform: [AWS::LanguageExtensions, AWS::Serverless-2016-10-31]
Mappings:
  Folders:
    Alpha: { Prefix: [alpha] }
    BetaTwo: { Prefix: [beta-two] }
Conditions:
  Fn::ForEach::Enabled:
    - Name
    - [Alpha, BetaTwo]
    - ${Name}Enabled: !Equals [!Ref { Fn::Sub: "Enable${Name}" }, "true"]
Resources:
  Fn::ForEach::Each:
    - Name
    - [Alpha, BetaTwo]
    - Fn::ForEach::Folder:
        - Prefix
        - !FindInMap [Folders, !Ref Name, Prefix]
        - ${Name}Queue:
            Type: AWS::SQS::Queue
            Condition: ${Name}Enabled
            Properties:
              QueueName: !Sub ${Prefix}-${AWS::Region}
              Tags:
                - { Key: folder, Value: !Ref Prefix }
                - { Key: id, Value: "&{Prefix}" }
                - { Key: dead, Value: !GetAtt [!Sub "${Name}Dead", Arn] }
Outputs:
  Fn::ForEach::Urls:
    - Name
    - [Alpha, BetaTwo]
    - ${Name}Url: { Condition: "${Name}Enabled", Value: !Ref { Fn::Sub: "${Name}Queue" } }
"""


def test_loops_expand_in_every_section_and_the_transform_goes():
    expanded = expand_language_extensions(load_template_text(LOOPED), source="t.yaml")

    assert expanded["Transform"] == ["AWS::Serverless-2016-10-31"]
    assert expanded["Conditions"]["BetaTwoEnabled"] == {"Fn::Equals": [{"Ref": "EnableBetaTwo"}, "true"]}
    queue = expanded["Resources"]["BetaTwoQueue"]
    assert queue["Condition"] == "BetaTwoEnabled"
    assert queue["Properties"]["QueueName"] == {"Fn::Sub": "beta-two-${AWS::Region}"}
    assert queue["Properties"]["Tags"] == [
        {"Key": "folder", "Value": "beta-two"},
        {"Key": "id", "Value": "betatwo"},
        {"Key": "dead", "Value": {"Fn::GetAtt": ["BetaTwoDead", "Arn"]}},
    ]
    assert set(expanded["Resources"]) == {"AlphaQueue", "BetaTwoQueue"}
    assert expanded["Outputs"]["AlphaUrl"] == {"Condition": "AlphaEnabled", "Value": {"Ref": "AlphaQueue"}}


def test_a_template_without_the_transform_is_left_as_it_is():
    document = load_template_text("Resources:\n  Fn::ForEach::X: [N, [A], {'${N}': {Type: T}}]\n")
    assert expand_language_extensions(document, source="t.yaml") is document


@pytest.mark.parametrize(
    ("loop", "reason"),
    [
        ("[N, !Ref Names, {'${N}Q': {Type: T}}]", "collection must be a list"),
        ("[N, !FindInMap [Missing, A, B], {'${N}Q': {Type: T}}]", "mapping 'Missing' has no 'A'/'B'"),
        ("[N, [A, A], {'${N}Q': {Type: T}}]", "makes 'AQ' twice"),
        ("[N, [A]]", "Fn::ForEach takes [identifier, collection"),
    ],
)
def test_a_loop_that_cannot_expand_is_refused_with_where_and_why(loop: str, reason: str):
    text = f"Transform: AWS::LanguageExtensions\nResources:\n  Fn::ForEach::Bad: {loop}\n"
    with pytest.raises(TemplateFormatError, match=re.escape("t.yaml: Resources.Fn::ForEach::Bad")) as error:
        expand_language_extensions(load_template_text(text), source="t.yaml")
    assert reason in str(error.value)


def test_a_loop_clashing_with_a_written_resource_is_refused():
    text = (
        "Transform: AWS::LanguageExtensions\nResources:\n"
        "  AQ: {Type: T}\n  Fn::ForEach::L: [N, [A], {'${N}Q': {Type: T}}]\n"
    )
    with pytest.raises(TemplateFormatError, match="makes 'AQ' again"):
        expand_language_extensions(load_template_text(text), source="t.yaml")


def test_template_yaml_instantiates_each_import_integration_with_the_names_the_project_relies_on():
    template = SamTemplate.load(ROOT / "template.yaml")
    resolver = template.parameters_resolver(template.parameter_values({}), pseudo={})
    for name, prefix in (("Generic", "generic"), ("BlueConic", "blueconic")):
        for suffix in ("Queue", "DeadLetterQueue", "LogGroup", "Function"):
            assert template.resources[f"{name}Import{suffix}"]["Condition"] == f"{name}ImportEnabled"
        for alarm in ("DeadLetter", "Errors", "Throttles"):
            assert f"{name}Import{alarm}Alarm" in template.resources
        function = template.resources[f"{name}ImportFunction"]["Properties"]
        assert resolver.resolve(function["CodeUri"], "CodeUri") == f"functions/{prefix}_import/"
        assert resolver.resolve(function["Environment"]["Variables"]["INTEGRATION"], "INTEGRATION") == prefix
        inbound = function["Policies"][0]["Statement"][0]["Resource"][0]
        assert resolver.resolve(inbound["Fn::Sub"][1], "Resource") == {"Prefix": prefix}
        scaling = function["Events"]["InboundFile"]["Properties"]["ScalingConfig"]
        assert scaling == {"MaximumConcurrency": {"Ref": f"{name}ImportMaxConcurrency"}}
        assert f"{name}ImportEnabled" in template.conditions
        assert {f"{name}ImportQueueUrl", f"{name}ImportFunctionName"} <= set(template.document["Outputs"])
    for queue_or_log in ("Queue", "DeadLetterQueue", "LogGroup", "DeadLetterAlarm", "ErrorsAlarm"):
        resource = template.resources[f"BlueConicExport{queue_or_log}"]
        assert resource["Condition"] == "BlueConicExportEnabled"
