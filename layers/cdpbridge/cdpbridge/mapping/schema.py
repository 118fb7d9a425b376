"""The JSON Schema of MappingConfig, for editors and CI checks of mapping files.

Regenerate the committed copy with ``python -m cdpbridge.mapping.schema > schemas/mapping.schema.json``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from cdpbridge.integrations.registry import known_integrations, reads_identifier_column
from cdpbridge.mapping.config import MappingConfig


def mapping_schema() -> dict[str, Any]:
    """The schema as a dict, with the keys as users write them (``as``, not ``kind``).

    ``identifier`` is required unless the config names an integration whose records carry their
    own identity (the model checks the same when a config is loaded).
    """
    schema = MappingConfig.model_json_schema(by_alias=True, mode="validation")
    record_identity = [name for name in known_integrations() if not reads_identifier_column(name)]
    schema["if"] = {"required": ["integration"], "properties": {"integration": {"enum": record_identity}}}
    schema["else"] = {"required": ["identifier"]}
    return schema


def render_schema() -> str:
    """The schema as stable, pretty JSON text ending in a newline."""
    return json.dumps(mapping_schema(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    sys.stdout.write(render_schema())
    return 0


if __name__ == "__main__":
    sys.exit(main())
