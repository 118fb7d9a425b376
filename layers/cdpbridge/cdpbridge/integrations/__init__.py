"""Integrations: each turns its partner's files into UserUpdates through a mapping config.

The engine never looks here; callers ask ``build_mapper`` for the mapper a config names.
"""

from __future__ import annotations

from collections.abc import Callable

from cdpbridge.mapping import Mapper, MappingConfig

# Integrations whose files map column by column use the generic mapper; the ones that reshape rows
# (audience diffs, event files) register their own factory here.
_FACTORIES: dict[str, Callable[[MappingConfig], Mapper]] = {
    "generic": Mapper,
    "blueconic": Mapper,
}


class UnknownIntegrationError(ValueError):
    pass


def build_mapper(config: MappingConfig) -> Mapper:
    factory = _FACTORIES.get(config.integration)
    if factory is None:
        known = ", ".join(sorted(_FACTORIES))
        raise UnknownIntegrationError(
            f"integration {config.integration!r} has no mapper in this version (known: {known})"
        )
    return factory(config)
