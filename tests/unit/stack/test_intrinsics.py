"""Intrinsic functions and conditions resolve as CloudFormation resolves them."""

from typing import Any

import pytest

from cdpbridge_local.stack.intrinsics import (
    IntrinsicResolver,
    ResolutionScope,
    TemplateResolutionError,
)

RESOURCES = {"Queue": "https://queue.example/123/q", "Bucket": "my-bucket"}
ATTRIBUTES = {
    ("Queue", "Arn"): "arn:aws:sqs:us-east-1:123456789012:q",
    ("Bucket", "Arn"): "arn:aws:s3:::my-bucket",
}


def make_resolver(parameters: dict[str, Any] | None = None, conditions: dict[str, Any] | None = None):
    def ref(name: str) -> Any:
        if name not in RESOURCES:
            raise TemplateResolutionError(f"unknown {name}")
        return RESOURCES[name]

    def get_att(name: str, attribute: str) -> Any:
        return ATTRIBUTES[(name, attribute)]

    return IntrinsicResolver(
        ResolutionScope(
            parameters=parameters or {"Stage": "prod", "Names": ["a", "b", "c"], "Empty": ""},
            pseudo_parameters={"AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012"},
            mappings={"Sizes": {"prod": {"memory": 1024}, "dev": {"memory": 256}}},
            conditions=conditions or {},
            ref=ref,
            get_att=get_att,
        )
    )


def test_ref_resolves_parameters_pseudo_parameters_and_resources():
    resolver = make_resolver()
    assert resolver.resolve({"Ref": "Stage"}, "x") == "prod"
    assert resolver.resolve({"Ref": "AWS::Region"}, "x") == "eu-west-1"
    assert resolver.resolve({"Ref": "Bucket"}, "x") == "my-bucket"


def test_sub_replaces_names_attributes_and_local_variables_and_keeps_escaped_literals():
    # Given a Sub with every kind of placeholder
    resolver = make_resolver()
    value = {
        "Fn::Sub": ["${Bucket}/${Queue.Arn}/${AWS::Region}/${Local}/${!Literal}", {"Local": {"Ref": "Stage"}}]
    }

    # When it is resolved
    resolved = resolver.resolve(value, "x")

    # Then each is replaced and ${!Literal} stays a literal ${Literal}
    assert resolved == "my-bucket/arn:aws:sqs:us-east-1:123456789012:q/eu-west-1/prod/${Literal}"


def test_if_with_no_value_removes_the_property_and_the_list_item():
    # Given a condition that is false
    resolver = make_resolver(conditions={"IsDev": {"Fn::Equals": [{"Ref": "Stage"}, "dev"]}})
    value = {
        "Keep": 1,
        "Drop": {"Fn::If": ["IsDev", "yes", {"Ref": "AWS::NoValue"}]},
        "List": ["a", {"Fn::If": ["IsDev", "b", {"Ref": "AWS::NoValue"}]}],
    }

    # When resolved, Then AWS::NoValue removes the key and the list item
    assert resolver.resolve(value, "x") == {"Keep": 1, "List": ["a"]}


def test_select_split_join_and_find_in_map():
    resolver = make_resolver()
    assert resolver.resolve({"Fn::Select": [1, {"Ref": "Names"}]}, "x") == "b"
    assert resolver.resolve({"Fn::Select": ["2", {"Fn::Split": ["/", "a/b/c"]}]}, "x") == "c"
    assert resolver.resolve({"Fn::Join": ["-", ["x", {"Ref": "Stage"}, 3]]}, "x") == "x-prod-3"
    assert resolver.resolve({"Fn::FindInMap": ["Sizes", {"Ref": "Stage"}, "memory"]}, "x") == 1024


def test_select_out_of_range_names_the_place():
    resolver = make_resolver()
    with pytest.raises(TemplateResolutionError, match=r"Resources\.X\.Fn::Select: index 5 is out of range"):
        resolver.resolve({"Fn::Select": [5, ["a"]]}, "Resources.X")


def test_conditions_combine_and_refer_to_each_other():
    # Given conditions built from others
    conditions = {
        "IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
        "HasName": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Empty"}, ""]}]},
        "Both": {"Fn::And": [{"Condition": "IsProd"}, {"Condition": "HasName"}]},
        "Either": {"Fn::Or": [{"Condition": "IsProd"}, {"Condition": "HasName"}]},
    }
    resolver = make_resolver(conditions=conditions)

    # When / Then they evaluate like CloudFormation's
    assert resolver.condition("IsProd") is True
    assert resolver.condition("HasName") is False
    assert resolver.condition("Both") is False
    assert resolver.condition("Either") is True


def test_equals_compares_yaml_booleans_and_numbers_as_text():
    resolver = make_resolver(parameters={"Flag": "true", "Count": "5"})
    assert resolver.evaluate_condition({"Fn::Equals": [{"Ref": "Flag"}, True]}, "x") is True
    assert resolver.evaluate_condition({"Fn::Equals": [{"Ref": "Count"}, 5]}, "x") is True


def test_conditions_in_a_cycle_are_reported():
    resolver = make_resolver(conditions={"A": {"Condition": "B"}, "B": {"Condition": "A"}})
    with pytest.raises(TemplateResolutionError, match="cycle: A -> B -> A"):
        resolver.condition("A")


def test_an_unknown_condition_is_reported():
    with pytest.raises(TemplateResolutionError, match="unknown condition 'Nope'"):
        make_resolver().condition("Nope")
