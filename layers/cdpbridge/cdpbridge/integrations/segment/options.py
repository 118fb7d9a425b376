"""The Segment integration's own settings: the ``options`` section of its mapping config."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cdpbridge.mapping import MappingConfig, MappingConfigError
from cdpbridge.mapping.config import ConfigProblem, attribute_name_problem

DEFAULT_ALIAS_LABEL: Final = "segment_anonymous_id"
DEFAULT_COHORT_PARTNER: Final = "segment"


class AnonymousCalls(StrEnum):
    """What a call without a userId becomes."""

    REJECT = "reject"  # a reject naming the reason (Braze's own Segment destination drops them)
    ALIAS = "alias"  # an update of the user alias {alias_label: <label>, alias_name: anonymousId}


class MappableCall(StrEnum):
    PAGE = "page"
    SCREEN = "screen"
    GROUP = "group"
    ALIAS = "alias"


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CohortOptions(_Options):
    """Audiences synced as Braze cohorts through the Cohort Import API (off unless enabled)."""

    enabled: bool = False
    # The partner name in /partners/<partner>/cohorts; Braze issues it with the partner key.
    partner: str = Field(default=DEFAULT_COHORT_PARTNER, min_length=1)
    # Audience keys to sync; empty: every audience the calls name.
    audiences: list[str] = Field(default_factory=list)
    # audience key -> the cohort's name in Braze (default: the audience key).
    names: dict[str, str] = Field(default_factory=dict)


class SegmentOptions(_Options):
    anonymous: AnonymousCalls = AnonymousCalls.REJECT
    alias_label: str = Field(default=DEFAULT_ALIAS_LABEL, min_length=1)
    # trait -> Braze attribute; a trait not listed keeps its own name.
    traits: dict[str, str] = Field(default_factory=dict)
    # Traits never sent (e.g. e-mail when Braze gets it elsewhere).
    skip_traits: list[str] = Field(default_factory=list)
    # Whether identify calls of audiences set the audience key as a boolean attribute.
    audience_attributes: bool = True
    # page/screen/group/alias -> the custom event they become; a call kind not listed is skipped.
    call_events: dict[MappableCall, str] = Field(default_factory=dict)
    cohorts: CohortOptions = Field(default_factory=CohortOptions)


def segment_options(config: MappingConfig) -> SegmentOptions:
    """The config's ``options`` validated; MappingConfigError naming each bad key otherwise."""
    try:
        options = SegmentOptions.model_validate(config.options)
    except ValidationError as error:
        problems = [
            ConfigProblem(".".join(["options", *map(str, item["loc"])]), item["msg"])
            for item in error.errors()
        ]
        raise MappingConfigError(problems) from None
    problems = [
        ConfigProblem(f"options.traits.{trait}", f"attribute {problem}")
        for trait, attribute in options.traits.items()
        if (problem := attribute_name_problem(attribute)) is not None
    ]
    if problems:
        raise MappingConfigError(problems)
    return options


__all__ = [
    "DEFAULT_ALIAS_LABEL",
    "AnonymousCalls",
    "CohortOptions",
    "MappableCall",
    "SegmentOptions",
    "segment_options",
]
