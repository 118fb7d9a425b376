"""Generic import: any CSV/TSV/PSV, JSON lines, JSON or Avro file, mapped column by column.

Files dropped under inbound/generic/ run through the mapping config's ``Mapper``. The example config
``mapping.example.yaml`` beside this module reads the customer files ``cdpbridge demo`` generates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from cdpbridge.integrations.registry import IntegrationEntry
from cdpbridge.mapping import Mapper

PACKAGE_DIR: Final = Path(__file__).resolve().parent
EXAMPLE_MAPPING_PATH: Final = PACKAGE_DIR / "mapping.example.yaml"

INTEGRATION: Final = IntegrationEntry(
    name="generic",
    summary="any delimited, JSON or Avro file, mapped column by column",
    transformer=Mapper,
    example_config=EXAMPLE_MAPPING_PATH,
)

__all__ = ["EXAMPLE_MAPPING_PATH", "INTEGRATION", "PACKAGE_DIR"]
