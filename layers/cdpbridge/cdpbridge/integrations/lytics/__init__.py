"""Lytics both ways through the drop bucket.

Import: Lytics audience files land in inbound/lytics/<feed>/, as Lytics' own add/remove records
(``mode: delta``) or as complete membership snapshots (``mode: snapshot``) that are diffed against
the feed's previous snapshot; either way they become add/remove operations on one Braze array
attribute (``lytics_segments``), sent only when they change what Braze acknowledged
(``cdpbridge.integrations.lytics.transform``).

Export: a Braze segment exported (/users/export/segment) into outbound/lytics/<segment>/<date>/ as
the CSV a Lytics "Import CSV" job reads (``cdpbridge.integrations.lytics.export``).

Engagement (e-mail, SMS and push activity) reaches Lytics through the Currents route to the Lytics
collect API; ``currents.example.yaml`` beside this module switches it on.

This module is imported by the mapping config (for ``settings``): it imports nothing of the mapping
package at import time.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Final

from cdpbridge.integrations.registry import IntegrationEntry, RecordTransformer

if TYPE_CHECKING:
    from cdpbridge.exports.segment import ExportIntegration
    from cdpbridge.mapping import MappingConfig

PACKAGE_DIR: Final = Path(__file__).resolve().parent
EXAMPLE_MAPPING_PATH: Final = PACKAGE_DIR / "mapping.example.yaml"
EXAMPLE_SNAPSHOT_PATH: Final = PACKAGE_DIR / "audience_membership_2026-11-03.csv"
EXAMPLE_DELTA_MAPPING_PATH: Final = PACKAGE_DIR / "mapping.delta.example.yaml"
EXAMPLE_DELTA_PATH: Final = PACKAGE_DIR / "example-delta.jsonl"
EXAMPLE_EXPORT_CONFIG_PATH: Final = PACKAGE_DIR / "export.example.yaml"
EXAMPLE_CURRENTS_CONFIG_PATH: Final = PACKAGE_DIR / "currents.example.yaml"


def transformer(config: MappingConfig) -> RecordTransformer:
    """The run's transformer (imported on first use: the mapping config imports this package)."""
    module = importlib.import_module(f"{__name__}.transform")
    built: RecordTransformer = module.LyticsTransformer(config)
    return built


def segment_export() -> ExportIntegration:
    """Loaded by the export function on its first event: the import function never needs it."""
    export: ExportIntegration = importlib.import_module(f"{__name__}.export").LYTICS_EXPORT
    return export


INTEGRATION: Final = IntegrationEntry(
    name="lytics",
    summary="Lytics audiences in as lytics_segments (snapshots diffed, or deltas); Braze segments out as "
    "Lytics import CSVs",
    transformer=transformer,
    example_config=EXAMPLE_MAPPING_PATH,
    samples=(EXAMPLE_SNAPSHOT_PATH,),
    exports={"segment": segment_export},
)

__all__ = [
    "EXAMPLE_CURRENTS_CONFIG_PATH",
    "EXAMPLE_DELTA_MAPPING_PATH",
    "EXAMPLE_DELTA_PATH",
    "EXAMPLE_EXPORT_CONFIG_PATH",
    "EXAMPLE_MAPPING_PATH",
    "EXAMPLE_SNAPSHOT_PATH",
    "INTEGRATION",
    "PACKAGE_DIR",
    "segment_export",
    "transformer",
]
