"""The traffic of each integration that the chaos run sends through the stack: one entry per scenario.

An import integration is one :class:`ImportScenario` in :data:`SCENARIOS`: its name as the template
and the registry know it, its mapping config, and a function that writes its sample files (seeded)
and says what Braze must hold afterwards (:class:`ImportTraffic`). Other kinds of traffic (an export)
implement :class:`ChaosScenario` themselves. Every scenario writes users of its own (a prefix of its
own), so that the expected states of all scenarios add up.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from cdpbridge_local.chaos.ledger import ExpectedState, event_key, purchase_key
from cdpbridge_local.stack import LocalStack

EVENT_TIME = "2026-12-01T10:00:00Z"
FIRST_NAMES = ("Anna", "Luc", "Maya", "Tom", "Inés", "Kenji", "Olu", "Sven", "Priya", "Zoë")
# A cell that a sum (integer) field cannot take: the row is rejected, the others go through.
BAD_INCREMENT = "many"


@dataclass(slots=True)
class ImportTraffic:
    """Files to land under inbound/<integration>/, what Braze must hold once they are imported,
    and the rows (file name, 1-based data row) that must come back in a rejects file."""

    files: list[tuple[str, bytes]] = field(default_factory=list)
    expected: ExpectedState = field(default_factory=ExpectedState)
    rejected_rows: set[tuple[str, int]] = field(default_factory=set)

    @property
    def rows(self) -> int:
        return sum(data.count(b"\n") - 1 for _, data in self.files)


class StackAccess(Protocol):
    """What a scenario uses of the running stack: the LocalStack and the emulator's admin API."""

    @property
    def stack(self) -> LocalStack: ...

    def admin(self, method: str, path: str, body: Any = None) -> Any: ...


class ChaosScenario(Protocol):
    @property
    def name(self) -> str: ...

    def template_parameters(self) -> Mapping[str, str]: ...

    def function_environment(self) -> Mapping[str, Mapping[str, str]]: ...

    def land(self, access: StackAccess, rows: int, seed: int) -> ImportTraffic:
        """Puts the scenario's configs and files into the drop bucket (first phase)."""
        ...

    def after_imports(self, access: StackAccess, expected: ExpectedState) -> None:
        """Starts what runs once every import is done (second phase), e.g. an export."""
        ...

    def check(self, access: StackAccess, expected: ExpectedState) -> list[str]:
        """What the scenario wrote besides Braze's profiles (outbound files), as mismatches."""
        ...


@dataclass(frozen=True, slots=True)
class ImportScenario:
    """An import integration's traffic: files land under inbound/<integration>/ with its config."""

    name: str
    integration: str
    mapping_yaml: str
    traffic: Callable[[int, random.Random], ImportTraffic]

    def template_parameters(self) -> Mapping[str, str]:
        return {}

    def function_environment(self) -> Mapping[str, Mapping[str, str]]:
        return {}

    def land(self, access: StackAccess, rows: int, seed: int) -> ImportTraffic:
        traffic = self.traffic(rows, random.Random(f"{seed}/{self.name}"))
        access.stack.put_object(f"config/{self.integration}.yaml", self.mapping_yaml)
        for name, data in traffic.files:
            access.stack.put_object(f"inbound/{self.integration}/{name}", data)
        return traffic

    def after_imports(self, access: StackAccess, expected: ExpectedState) -> None:
        return None

    def check(self, access: StackAccess, expected: ExpectedState) -> list[str]:
        return []


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue().encode("utf-8")


def _spread(rows: int, files: int) -> list[int]:
    return [rows // files + (1 if index < rows % files else 0) for index in range(files)]


# -- generic: attributes, an increment, an event and a purchase per row ---------------------------

GENERIC_MAPPING = """\
version: 1
integration: generic
source: {format: csv, delimiter: ",", encoding: utf-8}
identifier: {column: customer_id, as: external_id}
create_missing: true
fields:
  - {column: first_name, attribute: first_name, type: string, strategy: set}
  - {column: tier, attribute: loyalty_tier, type: string, strategy: set}
  - {column: points, attribute: loyalty_points, type: integer, strategy: sum}
events:
  - {name: chaos_visit, time_column: visit_at, properties: {visit: visit_id}}
purchases:
  - product_id: chaos-sku
    currency: EUR
    price_column: price
    time_column: visit_at
    properties: {order: order_id}
"""
GENERIC_TIERS = ("standard", "plus", "premium")


def generic_traffic(rows: int, rng: random.Random, files: int = 3) -> ImportTraffic:
    """Users appear in several files (their increments and events add up); about 2% of the rows
    carry an increment that is not a number and must be rejected."""
    traffic = ImportTraffic()
    expected = traffic.expected
    users = max(rows * 2 // 3, 1)
    header = ["customer_id", "first_name", "tier", "points", "visit_at", "visit_id", "order_id", "price"]
    for file_index, count in enumerate(_spread(rows, files)):
        name = f"chaos-{file_index}.csv"
        lines: list[list[str]] = []
        for row in range(1, count + 1):
            user = rng.randrange(users)
            external_id = f"G{user:06d}"
            person = random.Random(f"generic/{user}")
            first_name = person.choice(FIRST_NAMES)
            tier = person.choice(GENERIC_TIERS)
            visit = f"v{file_index}-{row}"
            order = f"o{file_index}-{row}"
            if rng.random() < 0.02:
                points = BAD_INCREMENT
                traffic.rejected_rows.add((name, row))
            else:
                amount = rng.randrange(1, 40)
                points = str(amount)
                expected.attributes[external_id] = {"first_name": first_name, "loyalty_tier": tier}
                expected.increments[(external_id, "loyalty_points")] += amount
                expected.events[event_key(external_id, "chaos_visit", {"visit": visit})] += 1
                expected.purchases[purchase_key(external_id, "chaos-sku", {"order": order})] += 1
            price = f"{rng.randrange(100, 10_000) / 100:.2f}"
            lines.append([external_id, first_name, tier, points, EVENT_TIME, visit, order, price])
        traffic.files.append((name, _csv(header, lines)))
    return traffic


# -- BlueConic: deltas with set, sum, add (arrays), clear and remaining fields ---------------------

BLUECONIC_MAPPING = """\
version: 1
integration: blueconic
source: {format: csv, delimiter: ",", encoding: utf-8, compression: auto}
identifier: {column: crm_customer_id, as: external_id}
create_missing: true
on_invalid: reject_row
fields:
  - {column: firstname, attribute: first_name, strategy: set}
  - {column: loyalty_points_earned, attribute: loyalty_points, type: integer, strategy: sum}
  - {column: interests, attribute: interests, type: array, separator: "|", strategy: add, max_items: 25}
  - {column: loyalty_tier, attribute: loyalty_tier, type: string, strategy: clear}
remaining:
  prefix: "bc_"
  strategy: set
"""
BLUECONIC_TIERS = ("bronze", "silver", "gold", "")
INTERESTS = ("running", "yoga", "cycling", "gaming", "music", "travel", "cooking")


def blueconic_traffic(rows: int, rng: random.Random, files: int = 2) -> ImportTraffic:
    """Deltas: a profile comes with all its properties in every delta it is in; its interests
    grow from delta to delta (Braze adds them to a set), its points earned add up."""
    traffic = ImportTraffic()
    expected = traffic.expected
    expected.set_like.add("interests")
    users = max(rows * 2 // 3, 1)
    header = [
        "profile_id",
        "crm_customer_id",
        "firstname",
        "loyalty_points_earned",
        "interests",
        "loyalty_tier",
        "visits",
    ]
    interests_of: dict[str, set[str]] = {}
    for file_index, count in enumerate(_spread(rows, files)):
        name = f"delta-{file_index}.csv"
        lines: list[list[str]] = []
        for row in range(1, count + 1):
            user = rng.randrange(users)
            external_id = f"B{user:06d}"
            person = random.Random(f"blueconic/{user}")
            profile_id = f"bc-{person.getrandbits(48):012x}"
            first_name = person.choice(FIRST_NAMES)
            tier = person.choice(BLUECONIC_TIERS)
            visits = str(person.randrange(1, 500))
            interests = sorted(rng.sample(INTERESTS, rng.randrange(0, 3)))
            if rng.random() < 0.02:
                earned = BAD_INCREMENT
                traffic.rejected_rows.add((name, row))
            else:
                amount = rng.randrange(1, 40)
                earned = str(amount)
                held = interests_of.setdefault(external_id, set())
                held.update(interests)
                attributes: dict[str, Any] = {
                    "first_name": first_name,
                    "bc_profile_id": profile_id,
                    "bc_visits": visits,
                }
                if held:
                    attributes["interests"] = sorted(held)
                if tier:
                    attributes["loyalty_tier"] = tier
                expected.attributes[external_id] = attributes
                expected.increments[(external_id, "loyalty_points")] += amount
            lines.append([profile_id, external_id, first_name, earned, "|".join(interests), tier, visits])
        traffic.files.append((name, _csv(header, lines)))
    return traffic


# -- BlueConic export: a Braze segment back out as a BlueConic import CSV --------------------------

EXPORT_SEGMENT = "Chaos gold"
EXPORT_CONFIG = {
    "segment": {"name": "replaced by the schedule's segment"},
    "identifiers": [{"braze": "external_id", "column": "crm_customer_id"}],
    "fields": [
        {"braze": "first_name", "column": "firstname"},
        {"braze": "custom_attributes.loyalty_tier", "column": "loyalty_tier"},
    ],
}


@dataclass(frozen=True, slots=True)
class BlueConicExportScenario:
    """Once the imports are done, the export schedule fires and waits for Braze's segment export
    across invocations (continuation messages, which may come twice); the gold BlueConic profiles
    must come out in one CSV, once each."""

    name: str = "blueconic-export"

    def template_parameters(self) -> Mapping[str, str]:
        return {"BlueConicExportSegment": EXPORT_SEGMENT}

    def function_environment(self) -> Mapping[str, Mapping[str, str]]:
        # Braze's export waits shortened from minutes to fractions of a second.
        return {
            "BlueConicExportFunction": {
                "EXPORT_POLL_INITIAL_S": "0.2",
                "EXPORT_POLL_MAX_S": "0.5",
                "EXPORT_QUIET_PERIOD_S": "0.3",
                "EXPORT_INLINE_WAIT_MAX_S": "0.3",
                # The run's function timeout is seconds, not minutes: any budget left converts.
                "EXPORT_CONVERT_MIN_BUDGET_S": "1",
            }
        }

    def land(self, access: StackAccess, rows: int, seed: int) -> ImportTraffic:
        access.stack.put_object("config/blueconic-export.yaml", orjson.dumps(EXPORT_CONFIG))
        return ImportTraffic()

    def after_imports(self, access: StackAccess, expected: ExpectedState) -> None:
        stack = access.stack
        access.admin(
            "POST",
            "/segments",
            {"name": EXPORT_SEGMENT, "filter": {"attribute": "loyalty_tier", "op": "in", "value": ["gold"]}},
        )
        access.admin(
            "PUT",
            "/config",
            {
                "export_s3": {
                    "endpoint_url": stack.moto_url,
                    "bucket": stack.drop_bucket,
                    "region": stack.region,
                },
                "export_delay_s": 0.5,
            },
        )
        stack.fire_schedule("BlueConicExportFunction")

    def check(self, access: StackAccess, expected: ExpectedState) -> list[str]:
        stack = access.stack
        wanted = sorted(
            [external_id, attributes["first_name"], "gold"]
            for external_id, attributes in expected.attributes.items()
            if attributes.get("loyalty_tier") == "gold"
        )
        listing = stack.s3_client.list_objects_v2(Bucket=stack.drop_bucket, Prefix="outbound/blueconic/")
        keys = [item["Key"] for item in listing.get("Contents", [])]
        if len(keys) != 1:
            return [f"{self.name}: expected one CSV under outbound/blueconic/, found {keys}"]
        body = stack.s3_client.get_object(Bucket=stack.drop_bucket, Key=keys[0])["Body"].read()
        rows = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
        problems: list[str] = []
        if not rows or rows[0] != ["crm_customer_id", "firstname", "loyalty_tier"]:
            problems.append(f"{self.name}: header {rows[:1]}")
        if sorted(rows[1:]) != wanted:
            missing = [row for row in wanted if row not in rows[1:]]
            unexpected = [row for row in rows[1:] if row not in wanted]
            problems.append(f"{self.name}: rows missing {missing[:5]}, rows not expected {unexpected[:5]}")
        return problems


# The table: one entry per integration's traffic (see docs/operations.md, "Failure guarantees").
SCENARIOS: tuple[ChaosScenario, ...] = (
    ImportScenario("generic-import", "generic", GENERIC_MAPPING, generic_traffic),
    ImportScenario("blueconic-import", "blueconic", BLUECONIC_MAPPING, blueconic_traffic),
    BlueConicExportScenario(),
)
