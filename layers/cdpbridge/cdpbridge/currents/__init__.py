"""Braze Currents: Avro files read once, deduplicated on event id, routed to files, Lytics and
engagement profiles. See docs/currents.md."""

from cdpbridge.currents.config import (
    CurrentsConfig,
    CurrentsConfigError,
    load_currents_config,
    parse_currents_config,
)
from cdpbridge.currents.layout import CurrentsKey, CurrentsLayoutError, currents_key, parse_currents_key
from cdpbridge.currents.lytics import LyticsClient, LyticsError
from cdpbridge.currents.outputs import LocalOutputStore, OutputStore, S3OutputStore
from cdpbridge.currents.reader import CurrentsFile, CurrentsFileError
from cdpbridge.currents.report import RouteReport
from cdpbridge.currents.router import CurrentsRouteError, CurrentsRouter, DeadlineReachedError, RouterServices
from cdpbridge.currents.state import (
    CURRENTS_STATE_TABLE,
    CurrentsState,
    DynamoDbCurrentsState,
    FileProgress,
    SqliteCurrentsState,
    event_key,
)

__all__ = [
    "CURRENTS_STATE_TABLE",
    "CurrentsConfig",
    "CurrentsConfigError",
    "CurrentsFile",
    "CurrentsFileError",
    "CurrentsKey",
    "CurrentsLayoutError",
    "CurrentsRouteError",
    "CurrentsRouter",
    "CurrentsState",
    "DeadlineReachedError",
    "DynamoDbCurrentsState",
    "FileProgress",
    "LocalOutputStore",
    "LyticsClient",
    "LyticsError",
    "OutputStore",
    "RouteReport",
    "RouterServices",
    "S3OutputStore",
    "SqliteCurrentsState",
    "currents_key",
    "event_key",
    "load_currents_config",
    "parse_currents_config",
    "parse_currents_key",
]
