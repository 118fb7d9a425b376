"""A SAM template as the local stack sees it: parameters, rules, conditions and SAM Globals."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdpbridge_local.stack.cfn_yaml import TemplateFormatError, load_template
from cdpbridge_local.stack.intrinsics import (
    IntrinsicResolver,
    ResolutionScope,
    TemplateResolutionError,
    as_cfn_string,
)
from cdpbridge_local.stack.language_extensions import expand_language_extensions

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
_LIST_PARAMETER_TYPES = ("CommaDelimitedList", "List<")


class TemplateParameterError(ValueError):
    """A parameter value is missing, unknown or outside what the template allows."""


class TemplateRuleError(ValueError):
    """A Rules assertion of the template fails for the given parameters."""


@dataclass(frozen=True, slots=True)
class ParameterSpec:
    name: str
    type: str
    default: str | None
    allowed_values: tuple[str, ...] = ()
    allowed_pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    min_value: float | None = None
    max_value: float | None = None
    constraint_description: str | None = None

    @classmethod
    def from_template(cls, name: str, body: Mapping[str, Any]) -> ParameterSpec:
        def optional_number(key: str) -> float | None:
            return float(body[key]) if key in body else None

        default = body.get("Default")
        return cls(
            name=name,
            type=str(body.get("Type", "String")),
            default=None if default is None else _parameter_text(default),
            allowed_values=tuple(as_cfn_string(item) for item in body.get("AllowedValues", [])),
            allowed_pattern=body.get("AllowedPattern"),
            min_length=int(body["MinLength"]) if "MinLength" in body else None,
            max_length=int(body["MaxLength"]) if "MaxLength" in body else None,
            min_value=optional_number("MinValue"),
            max_value=optional_number("MaxValue"),
            constraint_description=body.get("ConstraintDescription"),
        )

    def validate(self, text: str) -> Any:
        """Checks ``text`` against the constraints; returns the value a Ref to the parameter gives."""
        is_list = self.type.startswith(_LIST_PARAMETER_TYPES)
        items = [item.strip() for item in text.split(",")] if is_list else [text]
        for item in items:
            self._validate_item(item)
        return items if is_list else text

    def _validate_item(self, item: str) -> None:
        problem: str | None = None
        if self.allowed_values and item not in self.allowed_values:
            problem = f"must be one of {', '.join(self.allowed_values)}"
        elif self.allowed_pattern is not None and re.fullmatch(self.allowed_pattern, item) is None:
            problem = f"must match {self.allowed_pattern}"
        elif self.min_length is not None and len(item) < self.min_length:
            problem = f"must be at least {self.min_length} characters"
        elif self.max_length is not None and len(item) > self.max_length:
            problem = f"must be at most {self.max_length} characters"
        elif self.type in ("Number", "List<Number>"):
            try:
                number = float(item)
            except ValueError:
                problem = "must be a number"
            else:
                if self.min_value is not None and number < self.min_value:
                    problem = f"must be at least {self.min_value:g}"
                elif self.max_value is not None and number > self.max_value:
                    problem = f"must be at most {self.max_value:g}"
        if problem is not None:
            hint = f" ({self.constraint_description})" if self.constraint_description else ""
            raise TemplateParameterError(f"parameter {self.name}={item!r}: {problem}{hint}")


def _parameter_text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(as_cfn_string(item) for item in value)
    return as_cfn_string(value)


@dataclass(slots=True)
class SamTemplate:
    """The parsed template plus where it lives (CodeUri and ContentUri are relative to it)."""

    path: Path
    document: dict[str, Any]
    parameter_specs: dict[str, ParameterSpec] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> SamTemplate:
        path = path.resolve()
        document = expand_language_extensions(load_template(path), source=str(path))
        template = cls(path=path, document=document)
        parameters = document.get("Parameters") or {}
        if not isinstance(parameters, dict):
            raise TemplateFormatError(f"{path}: Parameters must be a mapping")
        template.parameter_specs = {
            name: ParameterSpec.from_template(name, body or {}) for name, body in parameters.items()
        }
        return template

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.document["Resources"]
        return resources

    @property
    def conditions(self) -> dict[str, Any]:
        return dict(self.document.get("Conditions") or {})

    @property
    def mappings(self) -> dict[str, Any]:
        return dict(self.document.get("Mappings") or {})

    def parameter_values(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Validates the given values (text, numbers or lists) and fills in defaults."""
        unknown = sorted(set(given) - set(self.parameter_specs))
        if unknown:
            raise TemplateParameterError(
                f"{self.path.name} has no parameter {', '.join(unknown)} "
                f"(known: {', '.join(sorted(self.parameter_specs))})"
            )
        values: dict[str, Any] = {}
        for name, spec in self.parameter_specs.items():
            if name in given:
                text = _parameter_text(given[name])
            elif spec.default is not None:
                text = spec.default
            else:
                raise TemplateParameterError(f"parameter {name} has no default and no value was given")
            values[name] = spec.validate(text)
        return values

    def parameters_resolver(self, values: Mapping[str, Any], pseudo: Mapping[str, Any]) -> IntrinsicResolver:
        """A resolver that knows parameters, mappings and conditions, but no resources (for Rules)."""

        def no_resources(logical_id: str, *_: str) -> Any:
            raise TemplateResolutionError(f"{logical_id}: resources cannot be referred to here")

        return IntrinsicResolver(
            ResolutionScope(
                parameters=values,
                pseudo_parameters=pseudo,
                mappings=self.mappings,
                conditions=self.conditions,
                ref=no_resources,
                get_att=no_resources,
            )
        )

    def check_rules(self, resolver: IntrinsicResolver) -> None:
        """Evaluates the Rules section as CloudFormation does before creating anything."""
        rules = self.document.get("Rules") or {}
        for rule_name, rule in rules.items():
            where = f"Rules.{rule_name}"
            if "RuleCondition" in rule and not resolver.resolve(rule["RuleCondition"], where):
                continue
            for index, assertion in enumerate(rule.get("Assertions", [])):
                if not resolver.resolve(assertion["Assert"], f"{where}.Assertions[{index}]"):
                    description = assertion.get("AssertDescription", "assertion failed")
                    raise TemplateRuleError(f"rule {rule_name}: {description}")

    def function_properties(self, logical_id: str) -> dict[str, Any]:
        """A function's properties with SAM Globals merged in (maps merge, lists append, scalars override)."""
        resource = self.resources[logical_id]
        own = copy.deepcopy(resource.get("Properties") or {})
        globals_section = (self.document.get("Globals") or {}).get("Function") or {}
        merged: dict[str, Any] = _merge_globals(copy.deepcopy(globals_section), own)
        return merged


def _is_intrinsic(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)).startswith(("Fn::", "Ref"))


def _merge_globals(global_value: Any, own_value: Any) -> Any:
    if isinstance(global_value, dict) and isinstance(own_value, dict):
        if _is_intrinsic(global_value) or _is_intrinsic(own_value):
            return own_value
        merged = dict(global_value)
        for key, item in own_value.items():
            merged[key] = _merge_globals(global_value[key], item) if key in global_value else item
        return merged
    if isinstance(global_value, list) and isinstance(own_value, list):
        return [*global_value, *own_value]
    return own_value
