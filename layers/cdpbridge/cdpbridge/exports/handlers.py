"""The export functions' entry points, light to import: the export machinery loads on the first event.

A handler module that imports only this keeps its cold start to Powertools' own imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from cdpbridge.exports.segment import ExportIntegration

# The export every export function runs: its integration's registry entry names it under this key.
SEGMENT_EXPORT = "segment"


def is_sqs_event(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return isinstance(records, list) and bool(records) and records[0].get("eventSource") == "aws:sqs"


def export_integration(name: str) -> ExportIntegration:
    """The segment export that integration ``name`` declares in the registry."""
    from cdpbridge.integrations import registry  # noqa: PLC0415 - see the module docstring

    if (
        name not in registry.known_integrations()
        or SEGMENT_EXPORT not in registry.get_integration(name).exports
    ):
        exporting = [entry.name for entry in registry.all_integrations() if SEGMENT_EXPORT in entry.exports]
        raise ValueError(f"no export integration {name!r} (known: {', '.join(exporting)})")
    return registry.get_integration(name).export(SEGMENT_EXPORT)


def start_export(
    event: Any,
    integration: str,
    *,
    lambda_context: LambdaContext | None = None,
    metrics: Metrics | None = None,
) -> dict[str, Any]:
    """The schedule side of an export function."""
    from cdpbridge.exports import runtime as export_runtime  # noqa: PLC0415 - see the module docstring

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
    from cdpbridge.exports import runtime as export_runtime  # noqa: PLC0415 - see the module docstring

    return export_runtime.continue_export(
        body, export_integration(integration), lambda_context=lambda_context, metrics=metrics
    )
