"""POST /users/export/segment, as Braze documents it (export users by segment, API limits).

- Rate limit: the shared 250,000 requests an hour pool, not /users/export/ids' family. (gap row 14)
- ``object_prefix`` is ``<uuid>-<unix timestamp>``; with the customer's bucket, files are
  ``segment-export/<segment_id>/<YYYY-MM-dd>/<object_prefix>/<random>.gz`` (or ``.zip``), the date
  being the day the export completes; gzip output only with the customer's own bucket. (row 16)
- The callback POST carries ``{"success": true}``, plus ``url`` without S3 credentials. (row 16)
- ``custom_attributes`` in ``fields_to_export`` exports all custom attributes; the
  ``custom_attributes_to_export`` selection is capped at 500 names. (row 16)
- A second export of a segment while one runs is a 429 whose text Braze does not document: the
  emulator's answer is a setting, and the client recognises it by its status and rate-limit headers,
  whatever the text. (row 16)
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from typing import Any

import orjson
import pytest

from cdpbridge.braze import ExportInProgress
from tests.contract.conftest import BrazeClientFactory
from tests.unit.emulator.conftest import EmulatorClient

WAIT_S = 10.0


def segment(emulator: EmulatorClient) -> str:
    emulator.track(attributes=[{"external_id": "u1", "plan": "gold", "score": 3}])
    emulator.admin("POST", "/segments", {"name": "All", "segment_id": "s1"})
    return "s1"


def finished(emulator: EmulatorClient, object_prefix: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for job in emulator.admin("GET", "/exports")["exports"]:
            if job["object_prefix"] == object_prefix and job["status"] != "running":
                return dict(job)
        time.sleep(0.02)
    raise AssertionError("the export did not finish")


def test_object_prefix_is_a_uuid_and_a_unix_timestamp(emulator: EmulatorClient) -> None:
    segment_id = segment(emulator)
    response = emulator.post(
        "/users/export/segment", {"segment_id": segment_id, "fields_to_export": ["external_id"]}
    )
    prefix = response.json()["object_prefix"]
    match = re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-(\d+)", prefix)
    assert match is not None and abs(int(match.group(1)) - time.time()) < 60


def test_custom_attributes_field_exports_them_all(emulator: EmulatorClient) -> None:
    emulator.configure(export_delay_s=0)
    segment_id = segment(emulator)
    body = {
        "segment_id": segment_id,
        "fields_to_export": ["external_id", "custom_attributes"],
        "custom_attributes_to_export": ["plan"],
    }
    response = emulator.post("/users/export/segment", body)
    finished(emulator, response.json()["object_prefix"])
    archive = zipfile.ZipFile(io.BytesIO(emulator.session.get(response.json()["url"], timeout=30).content))
    [user] = [orjson.loads(line) for name in archive.namelist() for line in archive.read(name).splitlines()]
    # The selection names only "plan", but custom_attributes in fields_to_export exports them all
    assert user["custom_attributes"] == {"plan": "gold", "score": 3}
    too_many = {**body, "custom_attributes_to_export": [f"a{n}" for n in range(501)]}
    refused = emulator.post("/users/export/segment", too_many)
    assert refused.status_code == 400 and "the limit is 500" in refused.json()["message"]


@pytest.mark.parametrize(
    "message",
    ["An export of this segment is already in progress", "Too many requests", None],
    ids=["in progress", "generic text", "no message"],
)
def test_second_export_while_one_runs_is_429_and_the_client_tells_it_apart(
    emulator: EmulatorClient, braze: BrazeClientFactory, message: str | None
) -> None:
    emulator.configure(export_delay_s=2, export_in_progress_message=message)
    segment_id = segment(emulator)
    body = {"segment_id": segment_id, "fields_to_export": ["external_id"]}
    assert emulator.post("/users/export/segment", body).status_code == 201
    second = emulator.post("/users/export/segment", body)
    assert second.status_code == 429 and int(second.headers["X-RateLimit-Remaining"]) > 0
    with pytest.raises(ExportInProgress):
        braze().export_segment(segment_id, ["external_id"], output_format="zip")


def test_export_segment_is_in_the_shared_hourly_pool(
    emulator: EmulatorClient, braze: BrazeClientFactory
) -> None:
    emulator.configure(rate_limits={"users.export": {"limit": 1, "window_s": 3600}})
    segment_id = segment(emulator)
    emulator.post("/users/export/ids", {"external_ids": ["u1"], "fields_to_export": ["email"]})
    started = braze().export_segment(segment_id, ["external_id"], output_format="zip")
    assert started.url is not None
