"""The integrations this version knows: one entry each, found by name.

An entry says everything the shared code needs about a partner: the inbound prefix its files land
under, what turns its records into Braze writes, its exports and its example files. The import
runtime, the CLI, the reports and the demo look integrations up here and nowhere else, and a
mapping config naming an integration that is not listed is refused when it is loaded.

Only names and module paths are listed here, so checking a config's ``integration`` name imports no
integration; an entry's module is imported the first time the entry is asked for (validating a whole
config asks for its integration's ``config_defaults`` and ``config_checks``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self

if TYPE_CHECKING:
    from cdpbridge.exports.segment import ExportIntegration
    from cdpbridge.mapping import ColumnCheck, ConfigProblem, MappingConfig
    from cdpbridge.records import SourceRow
    from cdpbridge.updates import UserUpdate

# name -> the module whose INTEGRATION attribute is the entry. Adding an integration adds a line.
_ENTRY_MODULES: Mapping[str, str] = {
    "generic": "cdpbridge.integrations.generic",
    "blueconic": "cdpbridge.integrations.blueconic",
    "segment": "cdpbridge.integrations.segment",
    "lytics": "cdpbridge.integrations.lytics",
    "amperity": "cdpbridge.integrations.amperity",
    "notify": "cdpbridge.integrations.notify",
}

# Integrations whose records carry their own identity (a mapping config names no identifier column).
_RECORD_IDENTITY: frozenset[str] = frozenset({"segment"})


class UnknownIntegrationError(ValueError):
    """A name that no registry entry carries; the message lists the known ones."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown integration {name!r} (known: {', '.join(known_integrations())})")
        self.name = name


class RecordTransformer(Protocol):
    """Turns a source record into the UserUpdate it means: the engine's side of an integration.

    ``Mapper`` (column by column, from the mapping config) is one; an integration whose records are
    not column-mapped (an audience diff, an event file) supplies its own with these methods.
    ``map_row`` never raises on bad data: problems become issues on the update (``rejected`` for
    the whole row). ``check_columns`` judges a file's header before any row is read (a transformer
    that needs no columns returns an empty check); ``without_columns`` leaves out what reads
    ``columns`` when a file lacks optional ones.
    """

    @property
    def config(self) -> MappingConfig: ...

    def map_row(self, row: SourceRow) -> UserUpdate: ...

    def check_columns(self, columns: Iterable[str]) -> ColumnCheck: ...

    def without_columns(self, columns: Iterable[str]) -> Self: ...


@dataclass(frozen=True, slots=True)
class IntegrationEntry:
    """One integration, declared once in its own package (``cdpbridge.integrations.<name>``)."""

    name: str
    summary: str
    # Builds the transformer a run uses from the integration's validated mapping config.
    transformer: Callable[[MappingConfig], RecordTransformer]
    # A documented, valid mapping config, and realistic files it reads (tests run them all).
    example_config: Path | None = None
    samples: tuple[Path, ...] = ()
    # export name -> loader of its segment export (loaded on the export function's first event).
    exports: Mapping[str, Callable[[], ExportIntegration]] = field(default_factory=dict)
    # Mapping config keys this integration defaults differently (e.g. {"create_missing": False}):
    # applied when the config leaves the key out, before the config is validated.
    config_defaults: Mapping[str, Any] = field(default_factory=dict)
    # Rules of this integration's configs, run after the config validated: every problem returned
    # refuses the config at load, with its key path.
    config_checks: tuple[Callable[[MappingConfig], list[ConfigProblem]], ...] = ()
    # Whether the transformer reads audience files (the config's ``audiences`` section).
    reads_audiences: bool = False

    @property
    def inbound_prefix(self) -> str:
        """Where the partner drops files; the template routes this prefix to the function."""
        return f"inbound/{self.name}/"

    def export(self, name: str) -> ExportIntegration:
        try:
            load = self.exports[name]
        except KeyError:
            known = ", ".join(sorted(self.exports)) or "none"
            raise ValueError(f"integration {self.name!r} has no export {name!r} (known: {known})") from None
        return load()


def known_integrations() -> tuple[str, ...]:
    """The registered names, in registry order."""
    return tuple(_ENTRY_MODULES)


def check_integration_name(name: str) -> str:
    """``name`` when it is registered; else UnknownIntegrationError naming the known ones."""
    if name not in _ENTRY_MODULES:
        raise UnknownIntegrationError(name)
    return name


def reads_identifier_column(name: str) -> bool:
    """Whether a mapping config of integration ``name`` must say which column identifies the user."""
    return name not in _RECORD_IDENTITY


def get_integration(name: str) -> IntegrationEntry:
    entry = importlib.import_module(_ENTRY_MODULES[check_integration_name(name)]).INTEGRATION
    if not isinstance(entry, IntegrationEntry) or entry.name != name:
        raise TypeError(f"{_ENTRY_MODULES[name]}.INTEGRATION is not the entry of {name!r}")
    return entry


def all_integrations() -> tuple[IntegrationEntry, ...]:
    return tuple(get_integration(name) for name in _ENTRY_MODULES)


__all__ = [
    "IntegrationEntry",
    "RecordTransformer",
    "UnknownIntegrationError",
    "all_integrations",
    "check_integration_name",
    "get_integration",
    "known_integrations",
    "reads_identifier_column",
]
