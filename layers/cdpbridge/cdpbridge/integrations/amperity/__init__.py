"""Amperity: typed query results and audiences into users Braze already knows.

Amperity's S3 destination drops query results (one row per customer, one typed column per
attribute: boolean, date, datetime, decimal, float, integer, string, varchar) and audience files
into inbound/amperity/. Query results run through the column ``Mapper``; a config with an
``audiences`` section reads audience files (``cdpbridge.mapping.audiences``). What makes it
Amperity's is in the entry: update-only unless the config says otherwise, a custom attribute that
shadows a standard field refused unless mapped, subscriptions never written, and the identifier
one of external_id, braze_id or a user alias.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from cdpbridge.integrations.registry import IntegrationEntry
from cdpbridge.mapping import ConfigProblem, IdentifierKind, MappingConfig, shadowed_standard_field
from cdpbridge.mapping.audiences import transformer_for

PACKAGE_DIR: Final = Path(__file__).resolve().parent
EXAMPLE_MAPPING_PATH: Final = PACKAGE_DIR / "mapping.example.yaml"
EXAMPLE_AUDIENCES_MAPPING_PATH: Final = PACKAGE_DIR / "audiences.example.yaml"
EXAMPLE_CURRENTS_CONFIG_PATH: Final = PACKAGE_DIR / "currents.example.yaml"
EXAMPLE_RESULTS_PATH: Final = PACKAGE_DIR / "example-results.csv"
EXAMPLE_AUDIENCES_PATH: Final = PACKAGE_DIR / "example-audiences.csv"

# Amperity matches users by these; e-mail and phone are not Amperity identifiers.
AMPERITY_IDENTIFIERS: Final = frozenset(
    {IdentifierKind.EXTERNAL_ID, IdentifierKind.BRAZE_ID, IdentifierKind.USER_ALIAS}
)
# Subscription state is the user's own choice, managed in Braze: Amperity never writes it.
SUBSCRIPTION_FIELDS: Final = frozenset({"email_subscribe", "push_subscribe", "subscription_groups"})


def _subscription_target(name: str) -> str | None:
    """The subscription field ``name`` writes, directly or as a shadowing spelling, else None."""
    if name in SUBSCRIPTION_FIELDS:
        return name
    standard = shadowed_standard_field(name)
    return standard if standard in SUBSCRIPTION_FIELDS else None


def amperity_config_problems(config: MappingConfig) -> list[ConfigProblem]:
    """Amperity's rules for a mapping config; each problem refuses the config at load."""
    problems: list[ConfigProblem] = []
    if config.identifier is not None and config.identifier.kind not in AMPERITY_IDENTIFIERS:
        problems.append(
            ConfigProblem(
                "identifier.as",
                f"Amperity matches users by external_id, braze_id or a user alias, not by "
                f"{config.identifier.kind}",
            )
        )
    for index, spec in enumerate(config.fields):
        subscription = _subscription_target(spec.target)
        if subscription is not None:
            where = "attribute" if spec.attribute is not None else "column"
            problems.append(
                ConfigProblem(
                    f"fields[{index}].{where}",
                    f"'{spec.target}' writes the subscription state '{subscription}': Amperity never "
                    "changes subscriptions (users manage them in Braze); remove this field",
                )
            )
    remaining = config.remaining
    if remaining is not None:
        reachable = sorted(name for name in SUBSCRIPTION_FIELDS if name.startswith(remaining.prefix))
        if reachable:
            problems.append(
                ConfigProblem(
                    "remaining.prefix",
                    f"with prefix '{remaining.prefix}' a column could write the subscription state "
                    f"'{reachable[0]}': Amperity never changes subscriptions; give a prefix such as "
                    "'amperity_'",
                )
            )
    # Audience attributes that would name a standard field (subscriptions among them) are refused
    # row by row (cdpbridge.mapping.audiences).
    return problems


INTEGRATION: Final = IntegrationEntry(
    name="amperity",
    summary="Amperity query results and audiences into users Braze already knows",
    transformer=transformer_for,
    example_config=EXAMPLE_MAPPING_PATH,
    samples=(EXAMPLE_RESULTS_PATH,),
    config_defaults={"create_missing": False, "standard_fields": "refuse"},
    config_checks=(amperity_config_problems,),
    reads_audiences=True,
)

__all__ = [
    "AMPERITY_IDENTIFIERS",
    "EXAMPLE_AUDIENCES_MAPPING_PATH",
    "EXAMPLE_AUDIENCES_PATH",
    "EXAMPLE_CURRENTS_CONFIG_PATH",
    "EXAMPLE_MAPPING_PATH",
    "EXAMPLE_RESULTS_PATH",
    "INTEGRATION",
    "PACKAGE_DIR",
    "SUBSCRIPTION_FIELDS",
    "amperity_config_problems",
]
