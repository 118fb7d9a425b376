"""The template loader: CloudFormation short-form tags become their long forms."""

import pytest

from cdpbridge_local.stack.cfn_yaml import TemplateFormatError, load_template_text


def test_short_form_tags_become_long_form_functions():
    # Given a template using the short forms
    text = """
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "${AWS::StackName}-queue"
      Tags:
        - Key: arn
          Value: !GetAtt Other.Arn
        - Key: joined
          Value: !Join ["-", [!Ref Name, !Select [0, !Split [",", "a,b"]]]]
        - Key: chosen
          Value: !If [IsProd, !FindInMap [Sizes, prod, size], !Ref AWS::NoValue]
Conditions:
  IsProd: !And [!Equals [!Ref Stage, prod], !Not [!Or [!Condition A, !Condition B]]]
"""
    # When it is loaded
    document = load_template_text(text)

    # Then every tag is the long-form mapping CloudFormation means
    properties = document["Resources"]["Queue"]["Properties"]
    assert properties["QueueName"] == {"Fn::Sub": "${AWS::StackName}-queue"}
    assert properties["Tags"][0]["Value"] == {"Fn::GetAtt": ["Other", "Arn"]}
    assert properties["Tags"][1]["Value"] == {
        "Fn::Join": ["-", [{"Ref": "Name"}, {"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]}]]
    }
    assert properties["Tags"][2]["Value"] == {
        "Fn::If": ["IsProd", {"Fn::FindInMap": ["Sizes", "prod", "size"]}, {"Ref": "AWS::NoValue"}]
    }
    assert document["Conditions"]["IsProd"] == {
        "Fn::And": [
            {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
            {"Fn::Not": [{"Fn::Or": [{"Condition": "A"}, {"Condition": "B"}]}]},
        ]
    }


def test_unknown_tag_is_refused_with_its_line():
    # Given a tag CloudFormation does not have
    text = "Resources:\n  X:\n    Type: T\n    Properties:\n      Name: !Bogus value\n"

    # When / Then loading names the tag and the line
    with pytest.raises(TemplateFormatError, match=r"!Bogus at line 5"):
        load_template_text(text)


def test_getatt_without_attribute_is_refused():
    with pytest.raises(TemplateFormatError, match=r"needs Resource\.Attribute"):
        load_template_text("Resources:\n  X:\n    Type: T\n    Properties:\n      A: !GetAtt Other\n")


def test_a_document_without_resources_is_not_a_template():
    with pytest.raises(TemplateFormatError, match="no Resources section"):
        load_template_text("Parameters: {}\n", source="x.yaml")
