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
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from cdpbridge.braze import BrazeClient, BrazeSettings, SecretsManagerKeyProvider


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


@dataclass(frozen=True, slots=True)
class FunctionEnvironment[SettingsT: EnvironmentSettings]:
    """Everything a function reads from its environment: its own settings and the Braze client's."""

    function: SettingsT
    braze: BrazeSettings

    def braze_client(self) -> BrazeClient:
        """The function's Braze client, its REST key read from the Secrets Manager secret."""
        secret_id = self.braze.api_key_secret_id
        if not secret_id:
            raise EnvironmentSettingsError("BRAZE_API_KEY_SECRET: Field required")
        return BrazeClient(
            self.braze, SecretsManagerKeyProvider(secret_id, ttl_s=self.braze.api_key_cache_ttl_s)
        )


def read_function_environment[SettingsT: EnvironmentSettings](
    model: type[SettingsT], environ: Mapping[str, str] | None = None
) -> FunctionEnvironment[SettingsT]:
    """A function's settings and the Braze client's, read together at the function's cold start:
    one error lists every bad variable of both. The REST key is read from Secrets Manager, so
    BRAZE_API_KEY_SECRET is required here (the CLI passes a key of its own)."""
    env = os.environ if environ is None else environ
    problems: list[str] = []
    function: SettingsT | None = None
    braze: BrazeSettings | None = None
    try:
        function = read_environment(model, env)
    except EnvironmentSettingsError as error:
        problems += str(error).splitlines()[1:]
    try:
        braze = BrazeSettings.from_env(env)
    except ValueError as error:
        problems += str(error).splitlines()[1:]
    if braze is not None and not braze.api_key_secret_id:
        problems.append("  BRAZE_API_KEY_SECRET: Field required (the REST key is read from Secrets Manager)")
    if function is None or braze is None or problems:
        raise EnvironmentSettingsError(f"invalid {model.__name__} environment:\n" + "\n".join(problems))
    return FunctionEnvironment(function, braze)
