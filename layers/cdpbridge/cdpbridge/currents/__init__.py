"""Braze Currents: Avro files read once, deduplicated on event id, routed to files, Lytics and
engagement profiles. See docs/currents.md.

Names are loaded on first use: the function's handler imports ``cdpbridge.currents.runtime``, which
must stay light (see there), and importing this package must not load the routing with it.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from cdpbridge.currents.router import (
        CurrentsRouteError,
        CurrentsRouter,
        DeadlineReachedError,
        RouterServices,
    )
    from cdpbridge.currents.state import (
        CURRENTS_STATE_TABLE,
        CurrentsState,
        DynamoDbCurrentsState,
        FileProgress,
        SqliteCurrentsState,
        event_key,
    )

_MODULES = {
    "config": ("CurrentsConfig", "CurrentsConfigError", "load_currents_config", "parse_currents_config"),
    "layout": ("CurrentsKey", "CurrentsLayoutError", "currents_key", "parse_currents_key"),
    "lytics": ("LyticsClient", "LyticsError"),
    "outputs": ("LocalOutputStore", "OutputStore", "S3OutputStore"),
    "reader": ("CurrentsFile", "CurrentsFileError"),
    "report": ("RouteReport",),
    "router": ("CurrentsRouteError", "CurrentsRouter", "DeadlineReachedError", "RouterServices"),
    "state": (
        "CURRENTS_STATE_TABLE",
        "CurrentsState",
        "DynamoDbCurrentsState",
        "FileProgress",
        "SqliteCurrentsState",
        "event_key",
    ),
}
_MODULE_OF = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"cdpbridge.currents.{module}"), name)


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
