"""Lytics through the template's wiring: audience snapshots dropped into inbound/lytics/<feed>/ end
as every user's lytics_segments, costing one data point per membership change; Lytics' delta shape
ends in the same state; and the export schedule turns a Braze segment into a Lytics import CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
import yaml

from cdpbridge.integrations.lytics import EXAMPLE_EXPORT_CONFIG_PATH, EXAMPLE_MAPPING_PATH
from cdpbridge_local.stack import LocalStack

pytestmark = pytest.mark.e2e

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
Memberships = dict[str, list[str]]
SNAPSHOTS: list[Memberships] = [
    {"LY-1": ["lytics_all", "lytics_new"], "LY-2": ["lytics_all"], "LY-3": ["high_value", "lytics_all"]},
    {"LY-1": ["lytics_all", "lytics_known"], "LY-2": [], "LY-4": ["lytics_all", "cart_abandoners"]},
    {"LY-1": ["lytics_known"], "LY-3": ["lytics_all"], "LY-4": ["cart_abandoners", "high_value", "vip"]},
]
USERS = ("LY-1", "LY-2", "LY-3", "LY-4")


def mapping(**lytics: Any) -> bytes:
    document = yaml.safe_load(EXAMPLE_MAPPING_PATH.read_text(encoding="utf-8"))
    document["lytics"].pop("feed")  # the folder under inbound/lytics/ names the feed
    document["lytics"].update(lytics)
    return yaml.safe_dump(document).encode()


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack.start(
        template=TEMPLATE,
        parameters={"LyticsExportSegment": "Engaged subscribers"},
        stack_name="lytics-e2e",
        env_vars={
            "LyticsExportFunction": {
                "EXPORT_POLL_INITIAL_S": "0.2",
                "EXPORT_POLL_MAX_S": "0.5",
                "EXPORT_QUIET_PERIOD_S": "0.3",
                "EXPORT_INLINE_WAIT_MAX_S": "0.3",
            }
        },
        failed_message_visibility_s=0,
    ) as running:
        running.put_object("config/lytics/audience_membership.yaml", mapping())
        running.put_object("config/lytics/late_feed.yaml", mapping(existing_users=False))
        running.put_object(
            "config/lytics/lytics_delta.yaml",
            b"version: 1\nintegration: lytics\nsource: {format: jsonl}\n"
            b"identifier: {column: external_id, as: external_id}\nlytics: {mode: delta}\n",
        )
        running.put_object("config/lytics-export.yaml", EXAMPLE_EXPORT_CONFIG_PATH.read_bytes())
        yield running


def emulator(stack: LocalStack, method: str, path: str, body: Any = None) -> Any:
    assert stack.emulator is not None
    response = requests.request(method, f"{stack.emulator.url}/_emulator{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def segments(stack: LocalStack, prefix: str = "") -> dict[str, set[str]]:
    return {user: set(attributes(stack, f"{prefix}{user}").get("lytics_segments") or []) for user in USERS}


def attributes(stack: LocalStack, external_id: str) -> dict[str, Any]:
    assert stack.emulator is not None
    response = requests.get(f"{stack.emulator.url}/_emulator/users/{external_id}", timeout=10)
    held: dict[str, Any] = response.json()["attributes"] if response.status_code == 200 else {}
    return held


def pairs(memberships: Memberships) -> set[tuple[str, str]]:
    return {(user, audience) for user, audiences in memberships.items() for audience in audiences}


def snapshot_csv(memberships: Memberships, prefix: str = "") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["external_id", "audiences"])
    for user, audiences in memberships.items():
        writer.writerow([f"{prefix}{user}", "|".join(audiences)])
    return out.getvalue().encode()


def data_points(stack: LocalStack) -> int:
    return int(emulator(stack, "GET", "/stats")["data_points"])


def keys(stack: LocalStack, prefix: str) -> list[str]:
    listing = stack.s3_client.list_objects_v2(Bucket=stack.drop_bucket, Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_three_snapshots_a_repeat_and_the_first_snapshot_per_existing_users(stack: LocalStack) -> None:
    previous: Memberships = {}
    for day, memberships in enumerate(SNAPSHOTS, 1):
        before = data_points(stack)
        # When the day's snapshot lands in the feed's folder
        key = f"inbound/lytics/audience_membership/audience_membership_2026-11-0{day}.csv"
        stack.put_object(key, snapshot_csv(memberships))
        stack.drain(timeout_s=120)
        # Then Braze holds exactly the memberships, at one data point per change
        assert segments(stack) == {user: set(memberships.get(user, [])) for user in USERS}
        assert data_points(stack) - before == len(pairs(memberships) ^ pairs(previous))
        previous = memberships

    # And the last snapshot again writes nothing
    requests_before = emulator(stack, "GET", "/stats")["requests"]
    stack.put_object(
        "inbound/lytics/audience_membership/audience_membership_2026-11-04.csv", snapshot_csv(previous)
    )
    stack.drain(timeout_s=120)
    assert emulator(stack, "GET", "/stats")["requests"] == requests_before
    reports = [key for key in keys(stack, "reports/lytics/") if key.endswith(".json")]
    assert len(reports) == 4

    # And a feed without existing users records its first snapshot and sends only later changes
    before = data_points(stack)
    stack.put_object("inbound/lytics/late_feed/late_2026-11-01.csv", snapshot_csv(SNAPSHOTS[0], "LZ-"))
    stack.drain(timeout_s=120)
    assert data_points(stack) == before
    assert segments(stack, "LZ-") == {user: set() for user in USERS}
    stack.put_object("inbound/lytics/late_feed/late_2026-11-02.csv", snapshot_csv(SNAPSHOTS[1], "LZ-"))
    stack.drain(timeout_s=120)
    assert data_points(stack) - before == len(pairs(SNAPSHOTS[1]) ^ pairs(SNAPSHOTS[0]))
    entered = pairs(SNAPSHOTS[1]) - pairs(SNAPSHOTS[0])
    assert segments(stack, "LZ-") == {user: {a for u, a in entered if u == user} for user in USERS}


def test_the_delta_shape_ends_in_the_same_state(stack: LocalStack) -> None:
    previous: Memberships = {}
    for day, memberships in enumerate(SNAPSHOTS, 1):
        lines = []
        for user in USERS:
            old, new = set(previous.get(user, [])), set(memberships.get(user, []))
            change = {
                key: sorted(values) for key, values in (("add", new - old), ("remove", old - new)) if values
            }
            if change:
                lines.append(orjson.dumps({"external_id": f"LD-{user}", "lytics_segments": change}))
        stack.put_object(f"inbound/lytics/lytics_delta/delta_{day}.jsonl", b"\n".join(lines) + b"\n")
        stack.drain(timeout_s=120)
        previous = memberships
    assert segments(stack, "LD-") == {user: set(SNAPSHOTS[-1].get(user, [])) for user in USERS}


def test_the_export_schedule_writes_the_segments_members_as_a_lytics_csv(stack: LocalStack) -> None:
    # Given a segment of users with the known audience, and Braze writing exports to the drop bucket
    emulator(
        stack,
        "POST",
        "/segments",
        {"name": "Engaged subscribers", "filter": {"attribute": "lytics_segments", "op": "exists"}},
    )
    emulator(
        stack,
        "PUT",
        "/config",
        {
            "export_s3": {
                "endpoint_url": stack.moto_url,
                "bucket": stack.drop_bucket,
                "path": "",
                "region": "us-east-1",
            },
            "export_delay_s": 1.0,
        },
    )
    candidates = [f"{prefix}{user}" for prefix in ("", "LZ-", "LD-") for user in USERS]
    members = sorted(user for user in candidates if "lytics_segments" in attributes(stack, user))

    # When the export schedule fires and its continuations are delivered
    (first,) = stack.fire_schedule("LyticsExportFunction")
    assert first.error is None, first.error
    stack.drain(timeout_s=120)

    # Then one CSV under outbound/lytics/ holds exactly the segment's members, ids first
    (csv_key,) = keys(stack, "outbound/lytics/")
    body = stack.s3_client.get_object(Bucket=stack.drop_bucket, Key=csv_key)["Body"].read().decode("utf-8")
    rows = list(csv.reader(io.StringIO(body, newline="")))
    assert rows[0][:2] == ["email", "external_id"]
    assert sorted(row[1] for row in rows[1:]) == members
