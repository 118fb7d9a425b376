"""BlueConic both ways through the drop bucket.

Import: BlueConic drops profile deltas into inbound/blueconic/; they run through the generic mapper
(its merge strategies are BlueConic's: set, add, sum, set_if_empty, clear, plus remaining fields
with a prefix) and the sync engine. ``mapping.example.yaml`` and ``example-delta.csv`` beside this
module are a documented config and a realistic delta.

Export: a Braze segment is exported (/users/export/segment) into the bucket and converted into a
BlueConic import CSV under outbound/blueconic/ (``cdpbridge.integrations.blueconic.export``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from cdpbridge.mapping import MappingConfig, load_mapping

PACKAGE_DIR: Final = Path(__file__).resolve().parent
EXAMPLE_MAPPING_PATH: Final = PACKAGE_DIR / "mapping.example.yaml"
EXAMPLE_DELTA_PATH: Final = PACKAGE_DIR / "example-delta.csv"


def example_mapping() -> MappingConfig:
    """The documented example config (``mapping.example.yaml``), validated."""
    return load_mapping(EXAMPLE_MAPPING_PATH)


__all__ = ["EXAMPLE_DELTA_PATH", "EXAMPLE_MAPPING_PATH", "PACKAGE_DIR", "example_mapping"]
