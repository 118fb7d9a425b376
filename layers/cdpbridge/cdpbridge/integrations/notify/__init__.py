"""Notify: send each user a Braze campaign at the local hour they are most likely to engage.

- ``hashing``: the opt-in export's user key (SHA-256 of the trimmed, lower-cased e-mail).
- ``observations``: the model's input (one engagement event at a local hour of week), fed by the
  opt-in export and by the Currents engagement profiles alike.
- ``optin``: the opt-in export CSV into typed events, bad rows into rejects.
- ``model``: the send-time model (hierarchical empirical-Bayes smoothing, recency weighting); pure.
- ``fitting``: its hyperparameters fitted on the history (method of moments, held-out likelihood).
- ``program``: PROGRAM.yaml.
- ``planner``: users and their history into plan rows (external_id, send_at, local_time, basis).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final

from cdpbridge.integrations.registry import IntegrationEntry, RecordTransformer

if TYPE_CHECKING:
    from cdpbridge.exports.segment import ExportIntegration
    from cdpbridge.mapping import MappingConfig

# Opt-in exports land here; NotifyOptinFunction ingests them (they are history, not profile updates).
OPTIN_INBOUND_PREFIX: Final = "inbound/notify/optin/"


def transformer(config: MappingConfig) -> RecordTransformer:
    """The column mapper (imported on first use: Notify's functions import this package and map
    nothing, so their cold start does not load the mapping package)."""
    mapper: RecordTransformer = importlib.import_module("cdpbridge.mapping").Mapper(config)
    return mapper


def segment_export() -> ExportIntegration:
    """The planner's segment export (loaded by the planner function on its first event)."""
    export: ExportIntegration = importlib.import_module(f"{__name__}.export").NOTIFY_EXPORT
    return export


INTEGRATION: Final = IntegrationEntry(
    name="notify",
    summary="Notify: opt-in history in, each user's campaign sent at their best local hour",
    # Notify has no mapping-config import: its inbound files (inbound/notify/optin/) are opt-in
    # history, ingested by NotifyOptinFunction into the opt-in store. The field is required of
    # every entry; a mapping config naming notify would run column-mapped like generic.
    transformer=transformer,
    exports={"segment": segment_export},
)

__all__ = ["INTEGRATION", "OPTIN_INBOUND_PREFIX", "segment_export", "transformer"]
