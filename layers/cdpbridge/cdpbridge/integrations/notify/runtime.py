"""Notify's functions: opt-in ingestion, the tracking pixel, the daily planner and the dispatcher.

Programs are YAML files under ``config/notify/`` in the drop bucket (``<program>.yaml``, the keys
of PROGRAM.yaml; ``send_date`` is left out: the planner plans the next date, the dispatcher looks
at the dates around now). Dropping a file there is all it takes to add a program: the planner's
daily schedule plans every program it finds, the dispatcher dispatches every program it finds.

Each function reads its settings from its environment on its first event (never at import) and
keeps its clients while the container stays warm.

Each function imports only what its trigger needs: the pixel (answered on every e-mail open, its
cold start in the reader's face) is here, with nothing but its token check and one table; the
opt-in ingestion, the planner and the dispatcher are in ``optin_runtime``, ``planner_runtime`` and
``dispatch_runtime``, and the programs they share in ``bucket_programs``. Their names are still
importable from this module, loaded on first use.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import Field

from cdpbridge.engagement import DynamoDbEngagementStore
from cdpbridge.environment import EnvironmentSettings, read_environment
from cdpbridge.integrations.notify.pixel import MACHINE_OPEN, gif_response, record_open, token_of_request

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics

    from cdpbridge.integrations.notify.bucket_programs import (
        ProgramLoadError,
        load_bucket_program,
        program_keys,
    )
    from cdpbridge.integrations.notify.dispatch_runtime import DispatchFunctionSettings, dispatch_programs
    from cdpbridge.integrations.notify.optin_runtime import (
        OptinFunctionSettings,
        handle_optin_message,
        ingest_optin_file,
    )
    from cdpbridge.integrations.notify.planner_runtime import (
        PlannerSettings,
        continue_plan,
        planned_date,
        start_plans,
    )

logger = Logger(child=True)

# The names of the other functions' modules, importable from here (loaded on first use).
_ELSEWHERE: dict[str, str] = {
    **dict.fromkeys(
        ("PROGRAMS_PREFIX", "ProgramLoadError", "load_bucket_program", "program_keys"), "bucket_programs"
    ),
    **dict.fromkeys(
        ("OPTIN_PREFIX", "OptinFunctionSettings", "handle_optin_message", "ingest_optin_file"),
        "optin_runtime",
    ),
    **dict.fromkeys(("PlannerSettings", "continue_plan", "planned_date", "start_plans"), "planner_runtime"),
    **dict.fromkeys(("DispatchFunctionSettings", "dispatch_programs"), "dispatch_runtime"),
}
_FUNCTION_MODULES = ("optin_runtime", "planner_runtime", "dispatch_runtime")


def __getattr__(name: str) -> Any:
    module = _ELSEWHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


def read_secret(secret_id: str) -> bytes:
    value = boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)
    text = value.get("SecretString")
    if text is None:
        return bytes(value["SecretBinary"])
    return text.strip().encode("utf-8")


# ----------------------------------------------------------------------------------------- the pixel


class PixelFunctionSettings(EnvironmentSettings):
    """The pixel function's environment."""

    pixel_key_secret: str = Field(min_length=1, alias="NOTIFY_PIXEL_KEY_SECRET")
    engagement_table: str = Field(min_length=3, alias="ENGAGEMENT_PROFILE_TABLE")


@dataclass(frozen=True, slots=True)
class PixelRuntime:
    key: bytes
    engagement: DynamoDbEngagementStore


@cache
def _pixel_runtime() -> PixelRuntime:
    settings = read_environment(PixelFunctionSettings)
    return PixelRuntime(
        read_secret(settings.pixel_key_secret), DynamoDbEngagementStore(settings.engagement_table)
    )


def handle_pixel_request(event: Any, metrics: Metrics | None = None) -> dict[str, Any]:
    """A Function URL request (payload 2.0): the GIF, always; the open recorded for a good token."""
    runtime = _pixel_runtime()
    token = token_of_request(event) if isinstance(event, dict) else None
    try:
        outcome = record_open(runtime.key, token, runtime.engagement)
    except Exception:
        # The image must load whatever happens behind it: the failure is logged and counted.
        logger.exception("pixel open not recorded")
        if metrics is not None:
            metrics.add_metric(name="PixelErrors", unit=MetricUnit.Count, value=1)
        return gif_response()
    if metrics is not None:
        name = "PixelOpens" if outcome.recorded else "PixelIgnored"
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    # A refused token is said at INFO with its reason (the caller only ever sees the GIF); an open
    # recorded or a prefetch is routine. The token itself is never logged: it names the user.
    refused = not outcome.recorded and outcome.reason != MACHINE_OPEN
    (logger.info if refused else logger.debug)(
        "pixel request", extra={"recorded": outcome.recorded, "reason": outcome.reason}
    )
    return gif_response()


def clear_cached_runtimes() -> None:
    """Forgets the clients built from the environment (tests change the environment)."""
    _pixel_runtime.cache_clear()
    # Only the functions' modules loaded hold anything to forget.
    for name in _FUNCTION_MODULES:
        module = sys.modules.get(f"{__package__}.{name}")
        if module is not None:
            module.clear_cached_runtime()


__all__ = [
    "DispatchFunctionSettings",
    "OptinFunctionSettings",
    "PixelFunctionSettings",
    "PlannerSettings",
    "ProgramLoadError",
    "clear_cached_runtimes",
    "continue_plan",
    "dispatch_programs",
    "handle_optin_message",
    "handle_pixel_request",
    "ingest_optin_file",
    "load_bucket_program",
    "planned_date",
    "program_keys",
    "read_secret",
    "start_plans",
]
