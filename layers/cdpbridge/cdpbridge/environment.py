"""Function settings from environment variables: one model per kind of function, read one way.

A model's fields carry their variable's name as alias, so a validation error names the variable
(``DROP_BUCKET: Field required``), not the Python field. Variables set to the empty string count as
unset: the template passes "" for optional parameters left empty. Nothing is read at import; a
function reads its settings when its first event builds the runtime (its cold start), and a bad
value fails that invocation with every problem listed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class EnvironmentSettingsError(ValueError):
    """The environment does not give valid settings; the message names each bad variable."""


class EnvironmentSettings(BaseModel):
    """Base of the function settings models: fields aliased by their variable names."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    @classmethod
    def from_env[SettingsT: EnvironmentSettings](
        cls: type[SettingsT], environ: Mapping[str, str] | None = None
    ) -> SettingsT:
        return read_environment(cls, environ)


def read_environment[SettingsT: BaseModel](
    model: type[SettingsT], environ: Mapping[str, str] | None = None
) -> SettingsT:
    """``model`` validated from ``environ`` (the process environment by default)."""
    env = os.environ if environ is None else environ
    present = {name: value for name, value in env.items() if value.strip()}
    try:
        return model.model_validate(present)
    except ValidationError as error:
        problems = [_problem(item) for item in error.errors()]
        title = model.__doc__.strip().splitlines()[0] if model.__doc__ else model.__name__
        raise EnvironmentSettingsError(
            f"invalid settings ({title.rstrip('.')}):\n  " + "\n  ".join(problems)
        ) from error


def _problem(item: Mapping[str, Any]) -> str:
    variable = ".".join(str(part) for part in item["loc"]) or "environment"
    message = str(item["msg"]).removeprefix("Value error, ")
    value = item.get("input")
    if item["type"] != "missing" and isinstance(value, str):
        message += f" (got {value!r})"
    return f"{variable}: {message}"
