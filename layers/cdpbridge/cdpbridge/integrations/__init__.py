"""Integrations: each turns its partner's files into UserUpdates through a mapping config.

The engine never looks here; callers ask ``build_mapper`` for the mapper a config names. Nothing is
imported at package import, so an export handler importing a sibling module stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cdpbridge.mapping import Mapper, MappingConfig

# Integrations whose files map column by column use the generic mapper; the ones that reshape rows
# (audience diffs, event files) get a factory of their own here.
_COLUMN_MAPPED = frozenset({"generic", "blueconic"})


class UnknownIntegrationError(ValueError):
    pass


def build_mapper(config: MappingConfig) -> Mapper:
    from cdpbridge.mapping import Mapper  # noqa: PLC0415 - see the module docstring

    if config.integration not in _COLUMN_MAPPED:
        known = ", ".join(sorted(_COLUMN_MAPPED))
        raise UnknownIntegrationError(
            f"integration {config.integration!r} has no mapper in this version (known: {known})"
        )
    return Mapper(config)
