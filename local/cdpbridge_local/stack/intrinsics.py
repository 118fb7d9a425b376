"""CloudFormation intrinsic functions and conditions, resolved the way CloudFormation resolves them."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final


class TemplateResolutionError(ValueError):
    """An intrinsic function cannot be resolved; the message names where in the template."""


class _NoValue:
    """AWS::NoValue: removes the property or list item that resolves to it."""

    _instance: _NoValue | None = None

    def __new__(cls) -> _NoValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Final = _NoValue()

CONDITION_FUNCTIONS: Final = frozenset({"Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition"})
_VALUE_FUNCTIONS: Final = frozenset(
    {
        "Ref",
        "Fn::Sub",
        "Fn::GetAtt",
        "Fn::If",
        "Fn::Select",
        "Fn::Join",
        "Fn::Split",
        "Fn::FindInMap",
        "Fn::Base64",
        "Fn::GetAZs",
        "Fn::ImportValue",
        "Fn::ToJsonString",
        "Fn::Length",
        "Fn::Equals",
        "Fn::Not",
        "Fn::And",
        "Fn::Or",
        "Fn::Contains",
        "Fn::EachMemberEquals",
        "Fn::EachMemberIn",
    }
)
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def _intrinsic(value: Any) -> tuple[str, Any] | None:
    """(function name, argument) when ``value`` is a one-key mapping naming an intrinsic function."""
    if isinstance(value, dict) and len(value) == 1:
        name, argument = next(iter(value.items()))
        if name in _VALUE_FUNCTIONS or name == "Condition":
            return name, argument
    return None


def as_cfn_string(value: Any) -> str:
    """How CloudFormation stringifies a scalar (YAML may have typed it as bool or number)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str | int | float):
        return str(value)
    raise TemplateResolutionError(f"expected a string, got {type(value).__name__}: {value!r}")


@dataclass(slots=True)
class ResolutionScope:
    """Everything names can resolve to. ``ref``/``get_att`` answer for resources (logical ids)."""

    parameters: Mapping[str, Any]
    pseudo_parameters: Mapping[str, Any]
    mappings: Mapping[str, Any]
    conditions: Mapping[str, Any]
    ref: Callable[[str], Any]
    get_att: Callable[[str, str], Any]
    azs: list[str] = field(default_factory=list)


class IntrinsicResolver:
    """Resolves template values; conditions are evaluated once and cached."""

    def __init__(self, scope: ResolutionScope) -> None:
        self.scope = scope
        self._condition_values: dict[str, bool] = {}
        self._evaluating: list[str] = []

    # ------------------------------------------------------------------ conditions
    def condition(self, name: str) -> bool:
        if name in self._condition_values:
            return self._condition_values[name]
        if name not in self.scope.conditions:
            raise TemplateResolutionError(f"unknown condition {name!r}")
        if name in self._evaluating:
            cycle = " -> ".join([*self._evaluating, name])
            raise TemplateResolutionError(f"conditions refer to each other in a cycle: {cycle}")
        self._evaluating.append(name)
        try:
            result = self.evaluate_condition(self.scope.conditions[name], f"Conditions.{name}")
        finally:
            self._evaluating.pop()
        self._condition_values[name] = result
        return result

    def evaluate_condition(self, expression: Any, where: str) -> bool:
        intrinsic = _intrinsic(expression)
        if intrinsic is None:
            if isinstance(expression, bool):
                return expression
            raise TemplateResolutionError(f"{where}: not a condition expression: {expression!r}")
        name, argument = intrinsic
        if name == "Condition":
            return self.condition(as_cfn_string(argument))
        if name == "Fn::Equals":
            left, right = self._pair(argument, name, where)
            return bool(
                self._comparable(self.resolve(left, where)) == self._comparable(self.resolve(right, where))
            )
        if name == "Fn::Not":
            items = self._list(argument, name, where)
            if len(items) != 1:
                raise TemplateResolutionError(f"{where}: Fn::Not takes exactly one condition")
            return not self.evaluate_condition(items[0], where)
        if name in ("Fn::And", "Fn::Or"):
            items = self._list(argument, name, where)
            if not 2 <= len(items) <= 10:
                raise TemplateResolutionError(f"{where}: {name} takes 2 to 10 conditions, got {len(items)}")
            values = (self.evaluate_condition(item, where) for item in items)
            return all(values) if name == "Fn::And" else any(values)
        raise TemplateResolutionError(f"{where}: {name} is not a condition function")

    @staticmethod
    def _comparable(value: Any) -> Any:
        if isinstance(value, list):
            return [as_cfn_string(item) for item in value]
        return as_cfn_string(value)

    # ------------------------------------------------------------------ values
    def resolve(self, value: Any, where: str) -> Any:
        """Resolves every intrinsic in ``value``; AWS::NoValue entries disappear from dicts and lists."""
        intrinsic = _intrinsic(value)
        if intrinsic is not None:
            return self._resolve_function(intrinsic[0], intrinsic[1], where)
        if isinstance(value, dict):
            resolved_dict: dict[str, Any] = {}
            for key, item in value.items():
                resolved = self.resolve(item, f"{where}.{key}")
                if resolved is not NO_VALUE:
                    resolved_dict[key] = resolved
            return resolved_dict
        if isinstance(value, list):
            resolved_list: list[Any] = []
            for index, item in enumerate(value):
                resolved = self.resolve(item, f"{where}[{index}]")
                if resolved is not NO_VALUE:
                    resolved_list.append(resolved)
            return resolved_list
        return value

    def _resolve_function(self, name: str, argument: Any, where: str) -> Any:
        here = f"{where}.{name}"
        if name == "Ref":
            return self._ref(as_cfn_string(argument), here)
        if name == "Fn::GetAtt":
            return self._get_att(argument, here)
        if name == "Fn::Sub":
            return self._sub(argument, here)
        if name == "Fn::If":
            items = self._list(argument, name, where)
            if len(items) != 3:
                raise TemplateResolutionError(
                    f"{here}: Fn::If takes [condition, value if true, value if false]"
                )
            chosen = items[1] if self.condition(as_cfn_string(items[0])) else items[2]
            return self.resolve(chosen, here)
        if name == "Fn::Join":
            delimiter, values = self._pair(argument, name, where)
            parts = self.resolve(values, here)
            if not isinstance(parts, list):
                raise TemplateResolutionError(f"{here}: Fn::Join needs a list of values")
            return as_cfn_string(delimiter).join(as_cfn_string(part) for part in parts)
        if name == "Fn::Split":
            delimiter, source = self._pair(argument, name, where)
            return as_cfn_string(self.resolve(source, here)).split(as_cfn_string(delimiter))
        if name == "Fn::Select":
            index_value, values = self._pair(argument, name, where)
            index = int(as_cfn_string(self.resolve(index_value, here)))
            items = self.resolve(values, here)
            if isinstance(items, str):  # a CommaDelimitedList parameter given as text
                items = items.split(",")
            if not isinstance(items, list) or not 0 <= index < len(items):
                raise TemplateResolutionError(f"{here}: index {index} is out of range of {items!r}")
            return items[index]
        if name == "Fn::FindInMap":
            return self._find_in_map(argument, here)
        if name == "Fn::Base64":
            text = as_cfn_string(self.resolve(argument, here))
            return base64.b64encode(text.encode("utf-8")).decode("ascii")
        if name == "Fn::GetAZs":
            return list(self.scope.azs)
        if name == "Fn::ToJsonString":
            return json.dumps(self.resolve(argument, here), separators=(",", ":"))
        if name == "Fn::Length":
            resolved = self.resolve(argument, here)
            if not isinstance(resolved, list):
                raise TemplateResolutionError(f"{here}: Fn::Length needs a list")
            return len(resolved)
        if name in CONDITION_FUNCTIONS:
            return self.evaluate_condition({name: argument}, where)
        if name == "Fn::Contains":
            values, wanted = self._pair(argument, name, where)
            listed = [as_cfn_string(item) for item in self._as_list(self.resolve(values, here))]
            return as_cfn_string(self.resolve(wanted, here)) in listed
        if name == "Fn::EachMemberEquals":
            values, wanted = self._pair(argument, name, where)
            expected = as_cfn_string(self.resolve(wanted, here))
            return all(as_cfn_string(item) == expected for item in self._as_list(self.resolve(values, here)))
        if name == "Fn::EachMemberIn":
            values, allowed = self._pair(argument, name, where)
            allowed_set = {as_cfn_string(item) for item in self._as_list(self.resolve(allowed, here))}
            return all(
                as_cfn_string(item) in allowed_set for item in self._as_list(self.resolve(values, here))
            )
        raise TemplateResolutionError(f"{here}: {name} is not supported by the local stack")

    def _ref(self, name: str, where: str) -> Any:
        if name in self.scope.pseudo_parameters:
            return self.scope.pseudo_parameters[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.scope.parameters:
            return self.scope.parameters[name]
        return self.scope.ref(name)

    def _get_att(self, argument: Any, where: str) -> Any:
        if isinstance(argument, str):
            resource, _, attribute = argument.partition(".")
        elif isinstance(argument, list) and len(argument) == 2:
            resource = as_cfn_string(argument[0])
            attribute = as_cfn_string(self.resolve(argument[1], where))
        else:
            raise TemplateResolutionError(f"{where}: Fn::GetAtt takes [resource, attribute]")
        if not attribute:
            raise TemplateResolutionError(f"{where}: Fn::GetAtt {argument!r} names no attribute")
        return self.scope.get_att(resource, attribute)

    def _sub(self, argument: Any, where: str) -> str:
        variables: dict[str, Any] = {}
        if isinstance(argument, list):
            if len(argument) != 2 or not isinstance(argument[1], dict):
                raise TemplateResolutionError(f"{where}: Fn::Sub takes a string or [string, {{variables}}]")
            text = as_cfn_string(argument[0])
            for key, item in argument[1].items():
                variables[key] = self.resolve(item, f"{where}.{key}")
        else:
            text = as_cfn_string(argument)

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):  # ${!Literal} stays as ${Literal}
                return "${" + expression[1:] + "}"
            expression = expression.strip()
            if expression in variables:
                return as_cfn_string(variables[expression])
            if "." in expression and not expression.startswith("AWS::"):
                resource, _, attribute = expression.partition(".")
                return as_cfn_string(self.scope.get_att(resource, attribute))
            return as_cfn_string(self._ref(expression, where))

        return _SUB_VARIABLE.sub(replace, text)

    def _find_in_map(self, argument: Any, where: str) -> Any:
        items = self._list(argument, "Fn::FindInMap", where)
        if len(items) not in (3, 4):
            raise TemplateResolutionError(f"{where}: Fn::FindInMap takes [map, top key, second key]")
        map_name, top_key, second_key = (as_cfn_string(self.resolve(item, where)) for item in items[:3])
        mapping = self.scope.mappings.get(map_name)
        if not isinstance(mapping, dict):
            raise TemplateResolutionError(f"{where}: no mapping named {map_name!r}")
        top = mapping.get(top_key)
        if isinstance(top, dict) and second_key in top:
            return top[second_key]
        if len(items) == 4 and isinstance(items[3], dict) and "DefaultValue" in items[3]:
            return self.resolve(items[3]["DefaultValue"], where)
        raise TemplateResolutionError(f"{where}: mapping {map_name!r} has no {top_key!r}/{second_key!r}")

    @staticmethod
    def _list(argument: Any, name: str, where: str) -> list[Any]:
        if not isinstance(argument, list):
            raise TemplateResolutionError(f"{where}: {name} takes a list, got {argument!r}")
        return argument

    def _pair(self, argument: Any, name: str, where: str) -> tuple[Any, Any]:
        items = self._list(argument, name, where)
        if len(items) != 2:
            raise TemplateResolutionError(f"{where}: {name} takes exactly two arguments")
        return items[0], items[1]

    @staticmethod
    def _as_list(value: Any) -> list[Any]:
        if isinstance(value, list):
            return value
        if isinstance(value, str):
            return value.split(",")
        return [value]
