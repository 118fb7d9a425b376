"""The export functions' entry points, light to import: the export machinery loads on the first event.

A handler module that imports only this keeps its cold start to Powertools' own imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from cdpbridge.integrations.segment_export import ExportIntegration

# integration name -> (module, attribute) of its ExportIntegration
_EXPORTS: dict[str, tuple[str, str]] = {
    "blueconic": ("cdpbridge.integrations.blueconic.export", "BLUECONIC_EXPORT"),
}


def is_sqs_event(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return isinstance(records, list) and bool(records) and records[0].get("eventSource") == "aws:sqs"


def export_integration(name: str) -> ExportIntegration:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise ValueError(f"no export integration {name!r} (known: {', '.join(sorted(_EXPORTS))})") from None
    integration: ExportIntegration = getattr(importlib.import_module(module), attribute)
    return integration


def start_export(
    event: Any,
    integration: str,
    *,
    lambda_context: LambdaContext | None = None,
    metrics: Metrics | None = None,
) -> dict[str, Any]:
    """The schedule side of an export function."""
    from cdpbridge.integrations import export_runtime  # noqa: PLC0415 - see the module docstring

    return export_runtime.start_export(
        event, export_integration(integration), lambda_context=lambda_context, metrics=metrics
    )


def continue_export(
    body: str,
    integration: str,
    *,
    lambda_context: LambdaContext | None = None,
    metrics: Metrics | None = None,
) -> dict[str, Any]:
    """One continuation message of an export function's own queue."""
    from cdpbridge.integrations import export_runtime  # noqa: PLC0415 - see the module docstring

    return export_runtime.continue_export(
        body, export_integration(integration), lambda_context=lambda_context, metrics=metrics
    )
