"""Expands the ``AWS::LanguageExtensions`` transform's Fn::ForEach loops, as ``sam build`` does.

template.yaml writes each import integration's resources once and instantiates them with Fn::ForEach.
The expansion follows SAM CLI's (``--language-extensions``), which mirrors CloudFormation's: every
``${Identifier}`` and ``&{Identifier}`` in the fragment's keys and strings, and every
``{"Ref": Identifier}``, becomes the collection item, and an Fn::Sub left with nothing to
substitute becomes its string. It is written here rather than taken from a
library because neither available one fits: cfn-lint's transform leaves plain strings such as a
resource's ``Condition: ${Name}ImportEnabled`` unexpanded, and SAM CLI pins boto3 and click versions
that conflict with this project's. Collections are literal lists or Fn::FindInMap look-ups, known
before any parameter value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from cdpbridge_local.stack.cfn_yaml import TemplateFormatError

LANGUAGE_EXTENSIONS: Final = "AWS::LanguageExtensions"
FOR_EACH_PREFIX: Final = "Fn::ForEach::"
# The sections CloudFormation lets Fn::ForEach appear in (and, within them, resource properties).
_EXPANDED_SECTIONS: Final = ("Conditions", "Resources", "Outputs")
_NOT_ALPHANUMERIC: Final = re.compile(r"[^A-Za-z0-9]")


def declared_transforms(document: Mapping[str, Any]) -> list[str]:
    """The Transform section as a list (a template may name one transform or several)."""
    declared = document.get("Transform") or []
    return [str(name) for name in (declared if isinstance(declared, list) else [declared])]


def expand_language_extensions(document: dict[str, Any], source: str) -> dict[str, Any]:
    """The template with its loops expanded and the transform taken off its Transform list.

    A template that does not declare the transform is returned as it is.
    """
    transforms = declared_transforms(document)
    if LANGUAGE_EXTENSIONS not in transforms:
        return document
    expander = _LoopExpander(mappings=document.get("Mappings") or {}, source=source)
    expanded = dict(document)
    for section in _EXPANDED_SECTIONS:
        if isinstance(document.get(section), dict):
            expanded[section] = expander.expand(document[section], section)
    remaining = [name for name in transforms if name != LANGUAGE_EXTENSIONS]
    if remaining:
        expanded["Transform"] = remaining
    else:
        expanded.pop("Transform", None)
    return expanded


class _LoopExpander:
    def __init__(self, mappings: Mapping[str, Any], source: str) -> None:
        self.mappings = mappings
        self.source = source

    def expand(self, value: Any, where: str) -> Any:
        """``value`` with every Fn::ForEach key inside it replaced by its instances."""
        if isinstance(value, list):
            return [self.expand(item, f"{where}[{index}]") for index, item in enumerate(value)]
        if not isinstance(value, dict):
            return value
        expanded: dict[str, Any] = {}
        for key, item in value.items():
            here = f"{where}.{key}"
            instances = (
                self._loop(item, here) if key.startswith(FOR_EACH_PREFIX) else {key: self.expand(item, here)}
            )
            for instance_key, instance in instances.items():
                if instance_key in expanded:
                    raise self._error(here, f"the loop makes {instance_key!r} again")
                expanded[instance_key] = instance
        return expanded

    def _loop(self, loop: Any, where: str) -> dict[str, Any]:
        if not (
            isinstance(loop, list)
            and len(loop) == 3
            and isinstance(loop[0], str)
            and isinstance(loop[2], dict)
        ):
            raise self._error(where, "Fn::ForEach takes [identifier, collection, {output key: output value}]")
        identifier, collection, fragment = loop
        instances: dict[str, Any] = {}
        for item in self._collection(collection, where):
            substituted = _substitute(fragment, identifier, item)
            for key, instance in self.expand(substituted, f"{where}[{item}]").items():
                if key in instances:
                    raise self._error(where, f"the loop makes {key!r} twice")
                instances[key] = instance
        return instances

    def _collection(self, collection: Any, where: str) -> list[str]:
        if isinstance(collection, dict) and set(collection) == {"Fn::FindInMap"}:
            collection = self._find_in_map(collection["Fn::FindInMap"], where)
        if not isinstance(collection, list) or not all(isinstance(item, str | int) for item in collection):
            raise self._error(
                where, f"the collection must be a list of strings or an Fn::FindInMap of one: {collection!r}"
            )
        return [str(item) for item in collection]

    def _find_in_map(self, arguments: Any, where: str) -> Any:
        if not (
            isinstance(arguments, list) and len(arguments) == 3 and all(isinstance(a, str) for a in arguments)
        ):
            raise self._error(
                where, f"the collection's Fn::FindInMap needs three literal keys: {arguments!r}"
            )
        map_name, top_key, second_key = arguments
        try:
            return self.mappings[map_name][top_key][second_key]
        except (KeyError, TypeError):
            raise self._error(where, f"mapping {map_name!r} has no {top_key!r}/{second_key!r}") from None

    def _error(self, where: str, reason: str) -> TemplateFormatError:
        return TemplateFormatError(f"{self.source}: {where}: {reason}")


def _substitute(value: Any, identifier: str, item: str) -> Any:
    """``value`` with the loop identifier replaced by ``item`` in keys, strings and Refs."""
    if isinstance(value, str):
        alphanumeric = _NOT_ALPHANUMERIC.sub("", item)
        return value.replace("${" + identifier + "}", item).replace("&{" + identifier + "}", alphanumeric)
    if isinstance(value, list):
        return [_substitute(element, identifier, item) for element in value]
    if isinstance(value, dict):
        if value == {"Ref": identifier}:
            return item
        substituted = {
            _substitute(key, identifier, item): _substitute(element, identifier, item)
            for key, element in value.items()
        }
        # A name built with Fn::Sub (the form cfn-lint understands) is a literal once the identifier is
        # in: collapse it, as SAM CLI and cfn-lint do, so that Ref, GetAtt and CodeUri see a string.
        text = substituted.get("Fn::Sub") if len(substituted) == 1 else None
        if isinstance(text, str) and "${" not in text:
            return text
        return substituted
    return value
