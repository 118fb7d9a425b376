"""BlueConic both ways through the drop bucket.

Import: BlueConic drops profile deltas into inbound/blueconic/; they run through the generic mapper
(its merge strategies are BlueConic's: set, add, sum, set_if_empty, clear, plus remaining fields
with a prefix) and the sync engine. ``mapping.example.yaml`` and ``example-delta.csv`` beside this
module are a documented config and a realistic delta.

Export: a Braze segment is exported (/users/export/segment) into the bucket and converted into a
BlueConic import CSV under outbound/blueconic/ (``cdpbridge.integrations.blueconic.export``).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Final

from cdpbridge.integrations.registry import IntegrationEntry
from cdpbridge.mapping import Mapper, MappingConfig, load_mapping

if TYPE_CHECKING:
    from cdpbridge.exports.segment import ExportIntegration

PACKAGE_DIR: Final = Path(__file__).resolve().parent
EXAMPLE_MAPPING_PATH: Final = PACKAGE_DIR / "mapping.example.yaml"
EXAMPLE_DELTA_PATH: Final = PACKAGE_DIR / "example-delta.csv"


def example_mapping() -> MappingConfig:
    """The documented example config (``mapping.example.yaml``), validated."""
    return load_mapping(EXAMPLE_MAPPING_PATH)


def segment_export() -> ExportIntegration:
    """Loaded by the export function on its first event: the import function never needs it."""
    export: ExportIntegration = importlib.import_module(f"{__name__}.export").BLUECONIC_EXPORT
    return export


INTEGRATION: Final = IntegrationEntry(
    name="blueconic",
    summary="BlueConic profile deltas in; Braze segments out as BlueConic import CSVs",
    # BlueConic's merge strategies (set, add, sum, set_if_empty, clear) are the mapping config's.
    transformer=Mapper,
    example_config=EXAMPLE_MAPPING_PATH,
    samples=(EXAMPLE_DELTA_PATH,),
    exports={"segment": segment_export},
)


__all__ = [
    "EXAMPLE_DELTA_PATH",
    "EXAMPLE_MAPPING_PATH",
    "INTEGRATION",
    "PACKAGE_DIR",
    "example_mapping",
    "segment_export",
]
