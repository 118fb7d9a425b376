"""Segment Engage traffic for the demo and the end-to-end tests: computed traits and an audience for
a few users, one anonymous, with calls repeated and out of order, and what Braze should hold after.

``prefix`` keeps two deliveries of the same traffic (a file and the webhook) apart in one workspace.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from typing import Any, Final

import orjson

AUDIENCE_KEY: Final = "dormant_shopper"
ALIAS_LABEL: Final = "segment_anonymous_id"
# The mapping config the traffic is meant for: anonymous calls update an alias, audiences are cohorts.
ENGAGE_CONFIG_YAML: Final = """\
version: 1
integration: segment
source: {format: jsonl}
options:
  anonymous: alias
  alias_label: segment_anonymous_id
  cohorts: {enabled: true, partner: segment}
"""


def _personas(kind: str, key: str, computation_id: str) -> dict[str, Any]:
    return {"personas": {"computation_class": kind, "computation_key": key, "computation_id": computation_id}}


@dataclass(frozen=True, slots=True)
class EngageTraffic:
    prefix: str

    def user(self, number: int) -> str:
        return f"{self.prefix}user-{number}"

    @property
    def anonymous_id(self) -> str:
        return f"{self.prefix}anon-9"

    @property
    def cohort_id(self) -> str:
        return f"{self.prefix}aud_dormant"

    def _call(self, kind: str, message: int, hour: str, who: str | None, **fields: Any) -> dict[str, Any]:
        call: dict[str, Any] = {
            "type": kind,
            "messageId": f"{self.prefix}msg-{message}",
            "timestamp": f"2026-12-01T{hour}:00.000Z",
            **fields,
        }
        if who is None:
            call["anonymousId"] = self.anonymous_id
        else:
            call["userId"] = who
        return call

    def _trait(self, message: int, hour: str, who: str, key: str, value: Any) -> dict[str, Any]:
        context = _personas("trait", key, f"{self.prefix}ais_{key}")
        return self._call("identify", message, hour, who, traits={key: value}, context=context)

    def _audience(self, message: int, hour: str, who: str | None, member: bool) -> dict[str, Any]:
        context = _personas("audience", AUDIENCE_KEY, self.cohort_id)
        return self._call("identify", message, hour, who, traits={AUDIENCE_KEY: member}, context=context)

    def _audience_event(self, message: int, hour: str, who: str | None, entered: bool) -> dict[str, Any]:
        event = "Audience Entered" if entered else "Audience Exited"
        properties = {"audience_key": AUDIENCE_KEY, AUDIENCE_KEY: entered}
        context = _personas("audience", AUDIENCE_KEY, self.cohort_id)
        return self._call("track", message, hour, who, event=event, properties=properties, context=context)

    def calls(self) -> list[dict[str, Any]]:
        """The calls in delivery order: newer before older for some users, some delivered twice."""
        one, two, three = self.user(1), self.user(2), self.user(3)
        return [
            self._trait(1, "10:00", one, "last_product_viewed_item", "Boots"),
            self._trait(2, "09:00", one, "last_product_viewed_item", "Sweater"),  # older, later
            self._audience(3, "09:05", one, member=True),
            self._audience_event(4, "09:05", one, entered=True),
            self._audience_event(4, "09:05", one, entered=True),  # delivered twice
            self._audience(5, "09:00", two, member=False),  # left ...
            self._audience(6, "08:00", two, member=True),  # ... after entering, delivered later
            self._audience_event(7, "08:00", two, entered=True),
            self._audience_event(8, "09:00", two, entered=False),
            self._trait(9, "09:00", three, "lifetime_value", 120.5),
            self._call(
                "track",
                10,
                "09:00",
                three,
                event="Trait Computed",
                properties={"trait_key": "lifetime_value", "lifetime_value": 120.5},
                context=_personas("trait", "lifetime_value", f"{self.prefix}ais_lifetime_value"),
            ),
            self._trait(11, "07:00", three, "lifetime_value", 99.0),  # older, later
            self._trait(1, "10:00", one, "last_product_viewed_item", "Boots"),  # delivered twice
            self._audience(12, "09:10", None, member=True),
            self._audience_event(13, "09:10", None, entered=True),
            self._call("page", 14, "09:20", three, name="Pricing", properties={"path": "/pricing"}),
        ]

    def jsonl_gz(self) -> bytes:
        """The calls as Segment's S3 destination writes them: gzipped JSON lines."""
        return gzip.compress(b"".join(orjson.dumps(call) + b"\n" for call in self.calls()), mtime=0)

    def expected_attributes(self) -> dict[str, dict[str, Any]]:
        """external_id (or "alias:<name>") -> the custom attributes Braze should hold."""
        return {
            self.user(1): {"last_product_viewed_item": "Boots", AUDIENCE_KEY: True},
            self.user(2): {AUDIENCE_KEY: False},
            self.user(3): {"lifetime_value": 120.5},
            f"alias:{self.anonymous_id}": {AUDIENCE_KEY: True},
        }

    def expected_events(self) -> dict[str, list[str]]:
        """external_id (or "alias:<name>") -> the custom event names Braze should hold, sorted."""
        return {
            self.user(1): ["Audience Entered"],
            self.user(2): ["Audience Entered", "Audience Exited"],
            self.user(3): ["Trait Computed"],
            f"alias:{self.anonymous_id}": ["Audience Entered"],
        }

    def expected_cohort_members(self) -> set[str]:
        """The audience's members at the end: external ids, and "alias:<name>" for the anonymous one."""
        return {self.user(1), f"alias:{self.anonymous_id}"}


__all__ = ["ALIAS_LABEL", "AUDIENCE_KEY", "ENGAGE_CONFIG_YAML", "EngageTraffic"]
