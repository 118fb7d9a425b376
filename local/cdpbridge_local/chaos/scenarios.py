"""The traffic of each integration that the chaos run sends through the stack: one entry per scenario.

An import integration is one :class:`ImportScenario` in :data:`SCENARIOS`: its name as the template
and the registry know it, its mapping config, and a function that writes its sample files (seeded)
and says what Braze must hold afterwards (:class:`ImportTraffic`). Other kinds of traffic (an export)
implement :class:`ChaosScenario` themselves. Every scenario writes users of its own (a prefix of its
own), so that the expected states of all scenarios add up.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import hmac
import io
import random
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson
import requests

from cdpbridge.currents import currents_key
from cdpbridge.engagement.store import DynamoDbEngagementStore
from cdpbridge.integrations.segment.relay import call_row
from cdpbridge_local.chaos.ledger import ExpectedState, event_key, purchase_key
from cdpbridge_local.currents_data import avro_bytes, load_sample, synthetic_events
from cdpbridge_local.sinks import LyticsSinkServer
from cdpbridge_local.stack import LocalStack

EVENT_TIME = "2026-12-01T10:00:00Z"
FIRST_NAMES = ("Anna", "Luc", "Maya", "Tom", "Inés", "Kenji", "Olu", "Sven", "Priya", "Zoë")
# A cell that a sum (integer) field cannot take: the row is rejected, the others go through.
BAD_INCREMENT = "many"


@dataclass(slots=True)
class ImportTraffic:
    """Files to land under inbound/<integration>/ (names may hold a folder), what Braze must hold
    once they are imported, and the rows (file name, 1-based data row) that must come back in a
    rejects file.

    ``rounds`` puts a file in a later round (file name -> round, 0 when absent): a round lands once
    the one before it drained, for traffic whose order matters (a feed's snapshots). ``known_users``
    are in Braze before the run (their attributes), for integrations that update existing users
    only. ``rows_count`` replaces the line count of the files (binary files, webhook calls)."""

    files: list[tuple[str, bytes]] = field(default_factory=list)
    expected: ExpectedState = field(default_factory=ExpectedState)
    rejected_rows: set[tuple[str, int]] = field(default_factory=set)
    rounds: dict[str, int] = field(default_factory=dict)
    known_users: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows_count: int | None = None

    @property
    def rows(self) -> int:
        if self.rows_count is not None:
            return self.rows_count
        return sum(data.count(b"\n") - 1 for _, data in self.files)

    @property
    def last_round(self) -> int:
        return max(self.rounds.values(), default=0)

    def files_of_round(self, number: int) -> list[tuple[str, bytes]]:
        return [(name, data) for name, data in self.files if self.rounds.get(name, 0) == number]


class StackAccess(Protocol):
    """What a scenario uses of the running stack: the LocalStack and the emulator's admin API."""

    @property
    def stack(self) -> LocalStack: ...

    def admin(self, method: str, path: str, body: Any = None) -> Any: ...

    def keys(self, prefix: str) -> list[str]: ...

    def read(self, key: str) -> bytes: ...


class ChaosScenario(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def user_prefix(self) -> str:
        """The prefix of the external ids the scenario writes ("" when it writes none)."""
        ...

    def running(self) -> AbstractContextManager[object]:
        """What the scenario runs beside the stack for the whole run (a sink), entered first."""
        ...

    def template_parameters(self) -> Mapping[str, str]: ...

    def function_environment(self) -> Mapping[str, Mapping[str, str]]: ...

    def secret_values(self) -> Mapping[str, str]:
        """Values of secrets the template creates (logical id -> value)."""
        ...

    def function_timeouts(self) -> Mapping[str, int]:
        """Functions that keep a timeout of their own instead of the run's (logical id -> seconds)."""
        ...

    def land(self, access: StackAccess, rows: int, seed: int) -> ImportTraffic:
        """Puts the scenario's configs and files into the drop bucket (first phase)."""
        ...

    def land_round(self, access: StackAccess, traffic: ImportTraffic, number: int) -> None:
        """Lands the files of a later round (``traffic.rounds``), once the round before drained."""
        ...

    def after_imports(self, access: StackAccess, expected: ExpectedState) -> None:
        """Starts what runs once every import is done (second phase), e.g. an export."""
        ...

    def check(self, access: StackAccess, expected: ExpectedState) -> list[str]:
        """What the scenario wrote besides Braze's profiles (outbound files), as mismatches."""
        ...

    def outputs_twice(self) -> int:
        """Outputs outside Braze written twice in a window the docs name (read after ``check``)."""
        ...


class ScenarioDefaults:
    """What a scenario does not need: nothing beside the stack, no parameter, secret or round."""

    __slots__ = ()

    def running(self) -> AbstractContextManager[object]:
        return nullcontext()

    def template_parameters(self) -> Mapping[str, str]:
        return {}

    def function_environment(self) -> Mapping[str, Mapping[str, str]]:
        return {}

    def secret_values(self) -> Mapping[str, str]:
        return {}

    def function_timeouts(self) -> Mapping[str, int]:
        return {}

    def land_round(self, access: StackAccess, traffic: ImportTraffic, number: int) -> None:
        return None

    def after_imports(self, access: StackAccess, expected: ExpectedState) -> None:
        return None

    def check(self, access: StackAccess, expected: ExpectedState) -> list[str]:
        return []

    def outputs_twice(self) -> int:
        return 0


@dataclass(frozen=True, slots=True)
class ImportScenario(ScenarioDefaults):
    """An import integration's traffic: files land under inbound/<integration>/ with its config
    (``config/<integration>.yaml``, plus ``configs``: further config keys and their text)."""

    name: str
    integration: str
    mapping_yaml: str
    traffic: Callable[[int, random.Random], ImportTraffic]
    user_prefix: str = ""
    configs: tuple[tuple[str, str], ...] = ()

    def land(self, access: StackAccess, rows: int, seed: int) -> ImportTraffic:
        traffic = self.traffic(rows, random.Random(f"{seed}/{self.name}"))
        access.stack.put_object(f"config/{self.integration}.yaml", self.mapping_yaml)
        for key, text in self.configs:
            access.stack.put_object(key, text)
        self.land_round(access, traffic, 0)
        return traffic

    def land_round(self, access: StackAccess, traffic: ImportTraffic, number: int) -> None:
        for name, data in traffic.files_of_round(number):
            access.stack.put_object(f"inbound/{self.integration}/{name}", data)


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


def generic_traffic(rows: int, rng: random.Random, files: int | None = None) -> ImportTraffic:
    """Users appear in several files (their increments and events add up); about 2% of the rows
    carry an increment that is not a number and must be rejected."""
    if files is None:
        # A small file is one chunk, sent whole before the deadline is checked again: at the small
        # size's 10 objects a request, 50 rows (15 requests, with their 429 waits) fit the 5 s
        # deadline margin on a loaded machine where 100 rows did not always.
        files = 3 if rows >= 1000 else max(3, -(-rows // 50))
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


def exports_to_drop_bucket(access: StackAccess) -> None:
    """Braze writes segment exports into the drop bucket (its S3 export settings), after a delay."""
    stack = access.stack
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


@dataclass(frozen=True, slots=True)
class BlueConicExportScenario(ScenarioDefaults):
    """Once the imports are done, the export schedule fires and waits for Braze's segment export
    across invocations (continuation messages, which may come twice); the gold BlueConic profiles
    must come out in one CSV, once each."""

    name: str = "blueconic-export"
    user_prefix: str = ""

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
        exports_to_drop_bucket(access)
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


# -- Lytics export: a Braze segment as a Lytics import CSV ---------------------------------------

LYTICS_EXPORT_SEGMENT = "Chaos platinum"
LYTICS_EXPORT_CONFIG = {
    "segment": {"name": "replaced by the schedule's segment"},
    "output_folder": "chaos_platinum",
    "fields": [
        {"braze": "first_name", "column": "first_name"},
        {"braze": "custom_attributes.loyalty_tier", "column": "loyalty_tier"},
    ],
}


@dataclass(frozen=True, slots=True)
class LyticsExportScenario(ScenarioDefaults):
    """As the BlueConic export: once the imports are done the schedule fires, the export waits for
    Braze across invocations (continuations may come twice), and the platinum customers (Amperity's)
    must come out in one CSV, once each, e-mail and external id first."""

    name: str = "lytics-export"
    user_prefix: str = ""

    def template_parameters(self) -> Mapping[str, str]:
        return {"LyticsExportSegment": LYTICS_EXPORT_SEGMENT}

    def function_environment(self) -> Mapping[str, Mapping[str, str]]:
        return {
            "LyticsExportFunction": dict(
                BlueConicExportScenario().function_environment()["BlueConicExportFunction"]
            )
        }

    def land(self, access: StackAccess, rows: int, seed: int) -> ImportTraffic:
        access.stack.put_object("config/lytics-export.yaml", orjson.dumps(LYTICS_EXPORT_CONFIG))
        return ImportTraffic()

    def after_imports(self, access: StackAccess, expected: ExpectedState) -> None:
        filter_ = {"attribute": "loyalty_tier", "op": "in", "value": ["platinum"]}
        access.admin("POST", "/segments", {"name": LYTICS_EXPORT_SEGMENT, "filter": filter_})
        exports_to_drop_bucket(access)
        access.stack.fire_schedule("LyticsExportFunction")

    def check(self, access: StackAccess, expected: ExpectedState) -> list[str]:
        wanted = sorted(
            ["", external_id, attributes["first_name"], "platinum"]
            for external_id, attributes in expected.attributes.items()
            if attributes.get("loyalty_tier") == "platinum"
        )
        keys = access.keys("outbound/lytics/")
        if len(keys) != 1:
            return [f"{self.name}: expected one CSV under outbound/lytics/, found {keys}"]
        rows = list(csv.reader(io.StringIO(access.read(keys[0]).decode("utf-8"), newline="")))
        problems: list[str] = []
        if not rows or rows[0] != ["email", "external_id", "first_name", "loyalty_tier"]:
            problems.append(f"{self.name}: header {rows[:1]}")
        if sorted(rows[1:]) != wanted:
            missing = [row for row in wanted if row not in rows[1:]]
            unexpected = [row for row in rows[1:] if row not in wanted]
            problems.append(f"{self.name}: rows missing {missing[:5]}, rows not expected {unexpected[:5]}")
        return problems


# -- Lytics: a feed's membership snapshots and a feed of add/remove deltas ------------------------

LYTICS_SNAPSHOT_MAPPING = """\
version: 1
integration: lytics
source: {format: csv}
identifier: {column: external_id, as: external_id}
lytics: {mode: snapshot, audiences_column: audiences, separator: "|", attribute: lytics_segments}
"""
LYTICS_DELTA_MAPPING = """\
version: 1
integration: lytics
source: {format: jsonl}
identifier: {column: external_id, as: external_id}
lytics: {mode: delta, attribute: lytics_segments}
"""
LYTICS_AUDIENCES = ("lytics_all", "lytics_new", "lytics_known", "high_value", "cart_abandoners", "vip")
LYTICS_DAYS = 3


def lytics_traffic(rows: int, rng: random.Random) -> ImportTraffic:
    """Three days of one snapshot feed (users move between audiences, some are absent and leave all
    of them) and three of a delta feed; each day a round of its own, as their order matters. A
    snapshot row without an id and a delta whose change is not an add/remove object are rejected."""
    traffic = ImportTraffic()
    expected = traffic.expected
    expected.set_like.add("lytics_segments")
    users = max(rows // (2 * LYTICS_DAYS), 2)
    held: dict[str, set[str]] = {}
    for day in range(LYTICS_DAYS):
        name = f"chaos_membership/audience_membership_2026-12-0{day + 1}.csv"
        lines: list[list[str]] = []
        for user in range(users):
            external_id = f"LS{user:06d}"
            if day and rng.random() < 0.1:
                held[external_id] = set()  # absent from the snapshot: in no audience of the feed
                continue
            audiences = set(rng.sample(LYTICS_AUDIENCES, rng.randrange(0 if day else 1, 4)))
            held[external_id] = audiences
            lines.append([external_id, "|".join(sorted(audiences))])
        bad_row = rng.randrange(len(lines) + 1)
        lines.insert(bad_row, ["", "vip"])
        traffic.rejected_rows.add((name, bad_row + 1))
        traffic.files.append((name, _csv(["external_id", "audiences"], lines)))
        traffic.rounds[name] = day
    delta_held: dict[str, set[str]] = {}
    for day in range(LYTICS_DAYS):
        name = f"chaos_delta/delta_2026-12-0{day + 1}.jsonl"
        records: list[bytes] = []
        for user in range(users):
            external_id = f"LD{user:06d}"
            current = delta_held.get(external_id)
            if current is None:
                add = set(rng.sample(LYTICS_AUDIENCES, rng.randrange(1, 4)))
                remove: set[str] = set()
            elif rng.random() < 0.3:
                continue
            else:
                add = set(rng.sample([a for a in LYTICS_AUDIENCES if a not in current], 1))
                remove = set(rng.sample(sorted(current), min(len(current), rng.randrange(0, 2))))
            delta_held[external_id] = ((current or set()) | add) - remove
            change = {key: sorted(values) for key, values in (("add", add), ("remove", remove)) if values}
            records.append(orjson.dumps({"external_id": external_id, "lytics_segments": change}))
        bad_row = rng.randrange(len(records) + 1)
        records.insert(bad_row, orjson.dumps({"external_id": "LD-bad", "lytics_segments": "vip"}))
        traffic.rejected_rows.add((name, bad_row + 1))
        traffic.files.append((name, b"\n".join(records) + b"\n"))
        traffic.rounds[name] = day
    for external_id, audiences in (held | delta_held).items():
        expected.attributes[external_id] = {"lytics_segments": sorted(audiences)}
    traffic.rows_count = sum(data.count(b"\n") for _, data in traffic.files) - LYTICS_DAYS  # headers
    return traffic


# -- Amperity: query results updating users Braze knows (create_missing: false) -----------------

AMPERITY_MAPPING = """\
version: 1
integration: amperity
source: {format: csv, delimiter: ",", encoding: utf-8, compression: auto}
identifier: {column: customer_id, as: external_id}
create_missing: false
on_invalid: reject_row
fields:
  - {column: given_name, attribute: first_name, type: "varchar(40)"}
  - {column: loyalty_member, attribute: loyalty_member, type: boolean}
  - {column: last_purchase_at, attribute: last_purchase_at, type: datetime}
  - {column: l12m_monetary, attribute: l12m_monetary, type: decimal}
  - {column: l12m_frequency, attribute: l12m_frequency, type: integer}
  - {column: loyalty_tier, attribute: loyalty_tier, type: string}
"""
AMPERITY_TIERS = ("bronze", "silver", "gold", "platinum")


def amperity_traffic(rows: int, rng: random.Random, files: int = 2) -> ImportTraffic:
    """Results of a query (each customer's values fixed, so files may run in any order); a quarter of
    the customers are unknown to Braze and must not be created (their rows come back rejected by
    Braze); about 2% of the rows carry a frequency that is not an integer and are rejected."""
    traffic = ImportTraffic()
    users = max(rows * 2 // 3, 1)
    header = [
        "customer_id",
        "given_name",
        "loyalty_member",
        "last_purchase_at",
        "l12m_monetary",
        "l12m_frequency",
        "loyalty_tier",
    ]
    for user in range(users + 1):
        if user % 4:
            external_id = f"AM{user:06d}"
            traffic.known_users[external_id] = {"amp_seeded": True}
            traffic.expected.attributes[external_id] = {"amp_seeded": True}
    for file_index, count in enumerate(_spread(rows, files)):
        name = f"results-{file_index}.csv"
        lines: list[list[str]] = []
        unknown_seen: set[int] = set()
        for row in range(1, count + 1):
            user = rng.randrange(users)
            if user % 4 == 0 and user in unknown_seen:
                # A second identical row of a user Braze refused is planned as unchanged within the
                # run and never sent: one row per unknown customer and file keeps rejects exact.
                user += 1
            if user % 4 == 0:
                unknown_seen.add(user)
            external_id = f"AM{user:06d}"
            person = random.Random(f"amperity/{user}")
            first_name = person.choice(FIRST_NAMES)
            member = person.random() < 0.5
            day, hour = person.randrange(1, 29), person.randrange(24)
            cents = person.randrange(0, 500_000)
            frequency = person.randrange(0, 60)
            tier = person.choice(AMPERITY_TIERS)
            cell = str(frequency)
            if rng.random() < 0.02:
                cell = BAD_INCREMENT
                traffic.rejected_rows.add((name, row))
            elif external_id not in traffic.known_users:
                # Braze refuses the update-only object (docs/amperity.md): a reject naming the row.
                traffic.rejected_rows.add((name, row))
            else:
                traffic.expected.attributes[external_id] = {
                    "amp_seeded": True,
                    "first_name": first_name,
                    "loyalty_member": member,
                    "last_purchase_at": f"2026-11-{day:02d}T{hour:02d}:30:00Z",
                    "l12m_monetary": cents / 100,
                    "l12m_frequency": frequency,
                    "loyalty_tier": tier,
                }
            lines.append(
                [
                    external_id,
                    first_name,
                    "true" if member else "false",
                    f"2026-11-{day:02d} {hour:02d}:30:00",
                    f"{cents / 100:.2f}",
                    cell,
                    tier,
                ]
            )
        traffic.files.append((name, _csv(header, lines)))
    return traffic


# -- Segment Engage: S3 log files and the signed webhook -----------------------------------------

SEGMENT_MAPPING = """\
version: 1
integration: segment
source: {format: jsonl}
"""
SEGMENT_PLANS = ("free", "pro", "team", "enterprise")
SEGMENT_WEBHOOK_SECRET = "chaos-webhook-secret"  # nosec B105 # noqa: S105 - the loopback stack's own secret
SEGMENT_DAY_MS = 1_796_083_200_000


@dataclass(slots=True)
class EngageCalls:
    """Engage calls of users of one prefix: identify calls with computed traits (the latest call
    per trait wins, whatever the order of arrival) and "Audience Entered" track calls; about 2%
    anonymous (rejected: no userId)."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    anonymous: list[int] = field(default_factory=list)  # positions in calls
    expected: ExpectedState = field(default_factory=ExpectedState)


def engage_calls(prefix: str, count: int, rng: random.Random) -> EngageCalls:
    made = EngageCalls()
    users = max(count // 3, 1)
    latest: dict[tuple[str, str], tuple[int, Any]] = {}
    seconds = rng.sample(range(count * 10), count)  # distinct times, in no particular order
    for index in range(count):
        second = seconds[index]
        timestamp = f"2026-12-01T{second // 3600 % 24:02d}:{second // 60 % 60:02d}:{second % 60:02d}.000Z"
        message_id = f"{prefix}-msg-{index}"
        user = f"{prefix}{rng.randrange(users):06d}"
        call: dict[str, Any] = {"messageId": message_id, "timestamp": timestamp}
        anonymous = rng.random() < 0.02
        if rng.random() < 0.6:
            traits = {"plan": rng.choice(SEGMENT_PLANS), "score": rng.randrange(1000)}
            call |= {"type": "identify", "traits": traits}
            for trait, value in traits.items():
                if not anonymous and latest.get((user, trait), (-1, None))[0] < second:
                    latest[(user, trait)] = (second, value)
        else:
            properties = {"audience_key": "chaos_audience", "call": message_id}
            call |= {"type": "track", "event": "Audience Entered", "properties": properties}
        if anonymous:
            call["anonymousId"] = f"{prefix}-anon-{index}"
            made.anonymous.append(index)
        else:
            call["userId"] = user
            made.expected.attributes.setdefault(user, {})
            if call["type"] == "track":
                made.expected.events[event_key(user, "Audience Entered", call["properties"])] += 1
        made.calls.append(call)
    for (user, trait), (_, value) in latest.items():
        made.expected.attributes[user][trait] = value
    return made


def segment_file_traffic(rows: int, rng: random.Random, files: int = 2) -> ImportTraffic:
    """Segment's S3 destination: gzipped JSON lines; about 3% of the lines repeat an earlier call of
    the same file (Segment delivers at least once), applied once; anonymous calls rejected."""
    made = engage_calls("SG", rows, rng)
    traffic = ImportTraffic(expected=made.expected)
    anonymous = set(made.anonymous)
    start = 0
    for file_index, count in enumerate(_spread(rows, files)):
        name = f"segment-logs/src_chaos/{SEGMENT_DAY_MS}/{1_796_115_900 + file_index}-chaos.gz"
        lines: list[bytes] = []
        for index in range(start, start + count):
            lines.append(orjson.dumps(made.calls[index]))
            if index in anonymous:
                traffic.rejected_rows.add((name, len(lines)))
            elif rng.random() < 0.03:
                lines.append(orjson.dumps(made.calls[index]))
        start += count
        traffic.files.append((name, gzip.compress(b"\n".join(lines) + b"\n")))
    traffic.rows_count = rows
    return traffic


def _signature(body: bytes) -> str:
    return hmac.new(SEGMENT_WEBHOOK_SECRET.encode(), body, hashlib.sha1).hexdigest()


@dataclass(frozen=True, slots=True)
class SegmentWebhookScenario(ScenarioDefaults):
    """Engage calls through the signed webhook, as Segment's Webhooks destination sends them: in
    requests of one to five calls, about 10% of the requests sent twice and 5% of the calls again in
    a later request (Segment retries); each call applied once (its event through the send ledger).
    The relay runs under every fault and kill; anonymous calls end in the webhook's rejects."""

    name: str = "segment-webhook"
    user_prefix: str = "SW"
    # The anonymous calls' message ids, once landed (the check reads them).
    anonymous: list[str] = field(default_factory=list)

    def secret_values(self) -> Mapping[str, str]:
        return {"SegmentWebhookSecret": SEGMENT_WEBHOOK_SECRET}

    def function_timeouts(self) -> Mapping[str, int]:
        # The relay sends a batch of up to 100 queue messages whole (it never resumes one part-way,
        # so it has no deadline check to make): the run's seconds-long timeout would end it at a
        # point nobody chose. Its template timeout is minutes; a minute is plenty here.
        return {"SegmentRelayFunction": 60}

    def land(self, access: StackAccess, rows: int, seed: int) -> ImportTraffic:
        rng = random.Random(f"{seed}/{self.name}")
        made = engage_calls(self.user_prefix, rows, rng)
        self.anonymous[:] = [str(made.calls[index]["messageId"]) for index in made.anonymous]
        access.stack.put_object("config/segment.yaml", SEGMENT_MAPPING)
        bodies: list[bytes] = []
        index = 0
        while index < len(made.calls):
            size = rng.randrange(1, 6)
            batch = made.calls[index : index + size]
            if index and rng.random() < 0.05:
                batch = [*batch, made.calls[rng.randrange(index)]]
            index += size
            bodies.append(orjson.dumps(batch))
            if rng.random() < 0.1:
                bodies.append(bodies[-1])
        url = access.stack.function_urls["SegmentWebhookFunction"]
        for body in bodies:
            answer = requests.post(
                url,
                data=body,
                headers={"content-type": "application/json", "x-signature": _signature(body)},
                timeout=30,
            )
            answer.raise_for_status()
        # Counted as rejected rows; the check finds them in the relay's rejects.
        rejected = {(f"webhook:{message}", 0) for message in self.anonymous}
        return ImportTraffic(expected=made.expected, rows_count=rows, rejected_rows=rejected)

    def check(self, access: StackAccess, expected: ExpectedState) -> list[str]:
        rows: set[int] = set()
        for key in access.keys("reports/segment/webhook/"):
            if key.endswith(".rejects.csv"):
                text = access.read(key).decode("utf-8")
                rows |= {int(row["row"]) for row in csv.DictReader(io.StringIO(text))}
        missing = [message for message in self.anonymous if call_row(message, "", 0) not in rows]
        return [f"{self.name}: anonymous calls not in a rejects file: {missing[:5]}"] if missing else []


# -- Braze Currents: Avro files routed to outbound files, engagement profiles and Lytics ----------

CURRENTS_FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "currents"
CURRENTS_TOKEN = "chaos-lytics-token"  # nosec B105 # noqa: S105 - the loopback sink's own token
CURRENTS_HOUR = datetime(2026, 12, 7, 8, tzinfo=UTC)
CLICK = "users.messages.email.Click"
CUSTOM_EVENT = "users.behaviors.CustomEvent"
# Small segments and chunks: a file commits several times, each commit a chance for a kill.
CURRENTS_CONFIG = """\
version: 1
segment_records: 100
chunk_records: 25
routes:
  files: {enabled: true, event_types: ["*"], destinations: [amperity]}
  lytics: {enabled: true, event_types: ["users.messages.*"], stream: braze_engagement, batch_size: 25}
  engagement: {enabled: true}
"""


@dataclass(frozen=True, slots=True)
class CurrentsScenario(ScenarioDefaults):
    """Braze's e-mail clicks and custom events as Currents files, one file repeating events of
    another (Braze delivers at least once). Currents writes no Braze profile: the check is on its
    outputs. Every event once in outbound/amperity/currents/ and in the engagement profiles; at the
    Lytics sink every click at least once, more only for segments posted by an invocation killed
    before its commit (the window docs/currents.md names), which is counted."""

    name: str = "currents"
    user_prefix: str = ""
    sink: LyticsSinkServer = field(default_factory=lambda: LyticsSinkServer(CURRENTS_TOKEN))
    # Event ids by event type and clicks per user, once landed; Lytics re-posts once checked.
    landed: dict[str, Any] = field(default_factory=dict)

    @contextmanager
    def _sink_running(self) -> Iterator[object]:
        self.sink.start()
        try:
            yield self.sink
        finally:
            self.sink.stop()

    def running(self) -> AbstractContextManager[object]:
        return self._sink_running()

    def template_parameters(self) -> Mapping[str, str]:
        return {"EnableCurrents": "true", "LyticsUrl": self.sink.url}

    def secret_values(self) -> Mapping[str, str]:
        return {"LyticsTokenSecretResource": CURRENTS_TOKEN}

    def land(self, access: StackAccess, rows: int, seed: int) -> ImportTraffic:
        rng = random.Random(f"{seed}/{self.name}")
        access.stack.put_object("config/currents.yaml", CURRENTS_CONFIG)
        ids: dict[str, list[str]] = {CLICK: [], CUSTOM_EVENT: []}
        clicks: Counter[str] = Counter()
        count = 0
        for event_type, files in ((CLICK, 3), (CUSTOM_EVENT, 2)):
            sample = load_sample(CURRENTS_FIXTURES / f"{event_type}.avro")
            for file_index, size in enumerate(_spread(rows // 2, files)):
                events = list(
                    synthetic_events(sample.record, size, seed=rng.getrandbits(32), users=max(rows // 6, 1))
                )
                for event in events:
                    event["external_user_id"] = "CU" + str(event["external_user_id"]).removeprefix("user-")
                    ids[event_type].append(str(event["id"]))
                    if event_type == CLICK:
                        clicks[str(event["external_user_id"])] += 1
                if event_type == CLICK and file_index == 0:
                    again = events[: len(events) // 4]  # the same events in a later file of Braze's
                    key = currents_key(
                        prefix="currents", event_type=event_type, hour=CURRENTS_HOUR, name="again.avro"
                    )
                    access.stack.put_object(key, avro_bytes(sample.schema, again))
                    count += len(again)
                key = currents_key(
                    prefix="currents",
                    event_type=event_type,
                    hour=CURRENTS_HOUR,
                    name=f"part-{file_index}.avro",
                )
                access.stack.put_object(key, avro_bytes(sample.schema, events))
                count += len(events)
        self.landed.update(ids=ids, clicks=clicks, reposted=0)
        return ImportTraffic(rows_count=count)

    def check(self, access: StackAccess, expected: ExpectedState) -> list[str]:
        stack = access.stack
        problems: list[str] = []
        ids: dict[str, list[str]] = self.landed["ids"]
        lines: Counter[str] = Counter()
        for key in access.keys("outbound/amperity/currents/"):
            for line in gzip.decompress(access.read(key)).splitlines():
                lines[str(orjson.loads(line)["id"])] += 1
        wanted = Counter(ids[CLICK] + ids[CUSTOM_EVENT])
        if lines != wanted:
            problems.append(
                f"{self.name}: outbound events missing {sorted((wanted - lines).elements())[:5]},"
                f" not expected {sorted((lines - wanted).elements())[:5]}"
            )
        store = DynamoDbEngagementStore(
            stack.physical_id("EngagementProfileTable"), client=stack.dynamodb_client
        )
        clicks: Counter[str] = self.landed["clicks"]
        held = {
            user: profile.by_kind.get("email_click", 0) for user, profile in store.profiles(clicks).items()
        }
        if held != dict(clicks):
            wrong = sorted(user for user in set(held) | set(clicks) if held.get(user) != clicks.get(user))
            problems.append(f"{self.name}: engagement clicks differ for {wrong[:5]}")
        posted = Counter(str(event["id"]) for event in self.sink.sink.events("braze_engagement"))
        missing = set(ids[CLICK]) - set(posted)
        unexpected = set(posted) - set(ids[CLICK])
        if missing or unexpected:
            problems.append(
                f"{self.name}: Lytics events missing {sorted(missing)[:5]},"
                f" not expected {sorted(unexpected)[:5]}"
            )
        self.landed["reposted"] = sum(posted.values()) - len(posted)
        return problems

    def outputs_twice(self) -> int:
        """Clicks posted to Lytics a second time: a segment routed again after a kill before its
        commit (docs/currents.md, "Exactly once over at-least-once")."""
        return int(self.landed.get("reposted", 0))


# The table: one entry per integration's traffic (see docs/operations.md, "Failure guarantees").
SCENARIOS: tuple[ChaosScenario, ...] = (
    ImportScenario("generic-import", "generic", GENERIC_MAPPING, generic_traffic, "G"),
    ImportScenario("blueconic-import", "blueconic", BLUECONIC_MAPPING, blueconic_traffic, "B"),
    BlueConicExportScenario(),
    ImportScenario(
        "lytics-import",
        "lytics",
        LYTICS_SNAPSHOT_MAPPING,
        lytics_traffic,
        "L",
        configs=(("config/lytics/chaos_delta.yaml", LYTICS_DELTA_MAPPING),),
    ),
    ImportScenario("amperity-import", "amperity", AMPERITY_MAPPING, amperity_traffic, "AM"),
    LyticsExportScenario(),
    ImportScenario("segment-import", "segment", SEGMENT_MAPPING, segment_file_traffic, "SG"),
    SegmentWebhookScenario(),
    CurrentsScenario(),
)
