"""Reads CloudFormation/SAM templates: YAML with the short-form intrinsic tags (!Ref, !Sub, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class TemplateFormatError(ValueError):
    """The template is not valid YAML or uses a tag CloudFormation does not know."""


# Short-form tag -> the long form it stands for. !GetAtt also accepts "Resource.Attribute".
_FUNCTION_TAGS: dict[str, str] = {
    "!Ref": "Ref",
    "!Condition": "Condition",
    "!Sub": "Fn::Sub",
    "!GetAtt": "Fn::GetAtt",
    "!If": "Fn::If",
    "!Equals": "Fn::Equals",
    "!Not": "Fn::Not",
    "!And": "Fn::And",
    "!Or": "Fn::Or",
    "!Select": "Fn::Select",
    "!Join": "Fn::Join",
    "!Split": "Fn::Split",
    "!FindInMap": "Fn::FindInMap",
    "!Base64": "Fn::Base64",
    "!GetAZs": "Fn::GetAZs",
    "!ImportValue": "Fn::ImportValue",
    "!Cidr": "Fn::Cidr",
    "!Transform": "Fn::Transform",
    "!ToJsonString": "Fn::ToJsonString",
    "!Length": "Fn::Length",
    "!Contains": "Fn::Contains",
    "!EachMemberEquals": "Fn::EachMemberEquals",
    "!EachMemberIn": "Fn::EachMemberIn",
    "!ValueOf": "Fn::ValueOf",
    "!ValueOfAll": "Fn::ValueOfAll",
    "!RefAll": "Fn::RefAll",
}


class CloudFormationLoader(yaml.SafeLoader):
    """A safe loader that turns short-form tags into their long-form mappings."""


def _construct_function(loader: CloudFormationLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    tag = "!" + tag_suffix
    long_name = _FUNCTION_TAGS.get(tag)
    if long_name is None:
        raise TemplateFormatError(f"unknown CloudFormation tag {tag} at line {node.start_mark.line + 1}")
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if long_name == "Fn::GetAtt" and isinstance(value, str):
            resource, _, attribute = value.partition(".")
            if not attribute:
                raise TemplateFormatError(
                    f"!GetAtt {value!r} at line {node.start_mark.line + 1} needs Resource.Attribute"
                )
            value = [resource, attribute]
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {long_name: value}


CloudFormationLoader.add_multi_constructor("!", _construct_function)


def load_template_text(text: str, source: str = "<template>") -> dict[str, Any]:
    try:
        document = yaml.load(text, Loader=CloudFormationLoader)  # nosec B506 # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise TemplateFormatError(f"{source}: not valid YAML: {error}") from error
    if not isinstance(document, dict) or "Resources" not in document:
        raise TemplateFormatError(f"{source}: not a CloudFormation template (no Resources section)")
    return document


def load_template(path: Path) -> dict[str, Any]:
    return load_template_text(path.read_text(encoding="utf-8"), source=str(path))
