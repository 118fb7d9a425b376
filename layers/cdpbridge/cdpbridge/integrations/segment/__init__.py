"""Segment Engage: calls from Segment's S3 destination (inbound/segment/) and its Webhooks destination.

Segment writes gzipped JSON lines, one call per line, under
``segment-logs/<source-id>/<received-day>/``; ``SegmentTransformer`` turns each call into one
user's writes. The webhook (``webhook.py``) and its queue relay (``relay.py``) send the same calls
through the same transformer and engine in real time; ``cohorts.py`` syncs audiences as cohorts.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Final

from cdpbridge.integrations.registry import IntegrationEntry, RecordTransformer

if TYPE_CHECKING:
    from cdpbridge.mapping import MappingConfig

PACKAGE_DIR: Final = Path(__file__).resolve().parent
EXAMPLE_MAPPING_PATH: Final = PACKAGE_DIR / "mapping.example.yaml"
EXAMPLE_FILE_PATH: Final = PACKAGE_DIR / "example-engage.jsonl"


def transformer(config: MappingConfig) -> RecordTransformer:
    """The run's transformer (imported on first use: the webhook function imports this package and
    only verifies and queues, so its cold start does not load the transformer or the mapping package).
    """
    built: RecordTransformer = importlib.import_module(f"{__name__}.transform").SegmentTransformer(config)
    return built


INTEGRATION: Final = IntegrationEntry(
    name="segment",
    summary="Segment Engage computed traits, audiences and events, from S3 files and a signed webhook",
    transformer=transformer,
    example_config=EXAMPLE_MAPPING_PATH,
    samples=(EXAMPLE_FILE_PATH,),
)

__all__ = ["EXAMPLE_FILE_PATH", "EXAMPLE_MAPPING_PATH", "INTEGRATION", "PACKAGE_DIR", "transformer"]
