"""User exports over real HTTP: by ids, and by segment to a served zip or to S3 (a moto server)."""

from __future__ import annotations

import gzip
import io
import threading
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import orjson
import pytest

from tests.moto_server import moto_client, moto_server
from tests.unit.emulator.conftest import EmulatorClient

EXPORT_WAIT_S = 20.0


def wait_for_export(client: EmulatorClient, object_prefix: str) -> dict[str, Any]:
    """Poll the admin API until the export is finished (the emulator writes it in the background)."""
    deadline = time.monotonic() + EXPORT_WAIT_S
    while time.monotonic() < deadline:
        for job in client.admin("GET", "/exports")["exports"]:
            if job["object_prefix"] == object_prefix and job["status"] != "running":
                return dict(job)
        time.sleep(0.02)
    raise AssertionError(f"export {object_prefix} did not finish within {EXPORT_WAIT_S} s")


def seed_users(client: EmulatorClient) -> None:
    response = client.track(
        attributes=[
            {
                "external_id": "u1",
                "first_name": "Ada",
                "plan": "gold",
                "score": 10,
                "email": "ada@example.com",
            },
            {"external_id": "u2", "first_name": "Bob", "plan": "free", "score": 3},
            {"external_id": "u3", "plan": "gold", "score": 7},
            {
                "user_alias": {"alias_name": "a4", "alias_label": "crm"},
                "_update_existing_only": False,
                "plan": "gold",
            },
        ],
        events=[
            {"external_id": "u1", "name": "login", "time": "2024-01-01T00:00:00Z"},
            {"external_id": "u1", "name": "login", "time": "2024-02-01T00:00:00Z"},
        ],
        purchases=[
            {
                "external_id": "u1",
                "product_id": "p",
                "currency": "USD",
                "price": 2.5,
                "quantity": 2,
                "time": "2024-01-03",
            }
        ],
    )
    assert response.status_code == 201 and "errors" not in response.json()


# -- /users/export/ids --------------------------------------------------------------------------


def test_export_ids_returns_braze_shaped_profiles_and_invalid_ids(client: EmulatorClient) -> None:
    seed_users(client)
    fields = ["external_id", "braze_id", "first_name", "email", "custom_attributes", "custom_events"]
    fields += ["purchases", "total_revenue"]
    response = client.post(
        "/users/export/ids", {"external_ids": ["u1", "nobody"], "fields_to_export": fields}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["message"] == "success"
    assert body["invalid_user_ids"] == ["nobody"]
    [user] = body["users"]
    assert user["external_id"] == "u1" and user["first_name"] == "Ada" and user["email"] == "ada@example.com"
    assert user["custom_attributes"] == {"plan": "gold", "score": 10}
    assert user["custom_events"] == [
        {"name": "login", "first": "2024-01-01T00:00:00.000Z", "last": "2024-02-01T00:00:00.000Z", "count": 2}
    ]
    assert user["purchases"] == [
        # A quantity of 2 counts as two purchases.
        {"name": "p", "first": "2024-01-03T00:00:00.000Z", "last": "2024-01-03T00:00:00.000Z", "count": 2}
    ]
    assert user["total_revenue"] == 5.0
    assert len(user["braze_id"]) == 24


def test_export_ids_by_alias_and_email_with_selected_fields(client: EmulatorClient) -> None:
    seed_users(client)
    response = client.post(
        "/users/export/ids",
        {
            "user_aliases": [{"alias_name": "a4", "alias_label": "crm"}],
            "email_address": "ADA@example.com",
            "fields_to_export": ["external_id", "user_aliases", "custom_attributes"],
        },
    )
    users = response.json()["users"]
    assert {"external_id": "u1", "custom_attributes": {"plan": "gold", "score": 10}} in users
    assert {
        "user_aliases": [{"alias_name": "a4", "alias_label": "crm"}],
        "custom_attributes": {"plan": "gold"},
    } in users


@pytest.mark.parametrize(
    ("body", "message_part"),
    [
        (
            {"external_ids": [f"u{index}" for index in range(51)], "fields_to_export": ["email"]},
            "limit is 50",
        ),
        ({"fields_to_export": ["email"]}, "name at least one user"),
        ({"external_ids": ["u1"], "fields_to_export": ["shoe_size"]}, "unknown fields ['shoe_size']"),
        ({"external_ids": "u1", "fields_to_export": ["email"]}, "'external_ids' must be an array"),
    ],
)
def test_export_ids_refuses_bad_requests(
    client: EmulatorClient, body: dict[str, Any], message_part: str
) -> None:
    response = client.post("/users/export/ids", body)
    assert response.status_code == 400
    assert message_part in response.json()["message"]


# -- /users/export/segment to a zip served by the emulator ---------------------------------------


def add_segment(client: EmulatorClient, **definition: Any) -> str:
    segment: dict[str, Any] = client.admin("POST", "/segments", {"name": "Gold", **definition})
    return str(segment["segment_id"])


def test_segment_export_serves_a_zip_of_json_lines_after_the_delay(client: EmulatorClient) -> None:
    # Given three gold users and a segment of them
    seed_users(client)
    client.configure(export_delay_s=0.2, export_users_per_file=2)
    segment_id = add_segment(client, filter={"attribute": "plan", "op": "eq", "value": "gold"})
    # When the segment is exported without S3 credentials
    response = client.post(
        "/users/export/segment",
        {"segment_id": segment_id, "fields_to_export": ["external_id", "custom_attributes"]},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["message"] == "success" and body["url"].startswith(client.url)
    # Then the URL answers 404 until the export is written, then serves the zip
    assert client.session.get(body["url"], timeout=30).status_code == 404
    job = wait_for_export(client, body["object_prefix"])
    assert job["status"] == "done" and job["user_count"] == 3 and job["files"] == ["0.json", "1.json"]
    archive = zipfile.ZipFile(io.BytesIO(client.session.get(body["url"], timeout=30).content))
    lines = [orjson.loads(line) for name in archive.namelist() for line in archive.read(name).splitlines()]
    assert sorted(user.get("external_id", "alias-only") for user in lines) == ["alias-only", "u1", "u3"]
    assert all(set(user) <= {"external_id", "custom_attributes"} for user in lines)


def test_a_second_export_of_a_running_segment_is_429(client: EmulatorClient) -> None:
    client.configure(export_delay_s=0.5)
    segment_id = add_segment(client)
    body = {"segment_id": segment_id, "fields_to_export": ["external_id"]}
    first = client.post("/users/export/segment", body)
    second = client.post("/users/export/segment", body)
    assert first.status_code == 201
    assert second.status_code == 429
    assert "already in progress" in second.json()["message"]
    wait_for_export(client, first.json()["object_prefix"])
    assert client.post("/users/export/segment", body).status_code == 201


@pytest.mark.parametrize(
    ("body", "message_part"),
    [
        ({"segment_id": "nope", "fields_to_export": ["external_id"]}, "Invalid segment_id"),
        ({"segment_id": "SEGMENT"}, "'fields_to_export' is required"),
        ({"segment_id": "SEGMENT", "fields_to_export": ["external_id"], "output_format": "gzip"}, "S3"),
        (
            {"segment_id": "SEGMENT", "fields_to_export": ["external_id"], "output_format": "csv"},
            "'zip' or 'gzip'",
        ),
        (
            {"segment_id": "SEGMENT", "fields_to_export": ["external_id"], "callback_endpoint": "ftp://x"},
            "http",
        ),
    ],
)
def test_segment_export_refuses_bad_requests(
    client: EmulatorClient, body: dict[str, Any], message_part: str
) -> None:
    segment_id = add_segment(client)
    if body["segment_id"] == "SEGMENT":
        body = {**body, "segment_id": segment_id}
    response = client.post("/users/export/segment", body)
    assert response.status_code == 400
    assert message_part in response.json()["message"]


def test_segment_filters(client: EmulatorClient) -> None:
    seed_users(client)
    client.configure(export_delay_s=0)
    cases: dict[str, tuple[dict[str, Any], list[str | None]]] = {
        "eq": ({"attribute": "plan", "op": "eq", "value": "free"}, ["u2"]),
        "ne": ({"attribute": "plan", "op": "ne", "value": "gold"}, ["u2"]),
        "gt": ({"attribute": "score", "op": "gt", "value": 5}, ["u1", "u3"]),
        "lt": ({"attribute": "score", "op": "lt", "value": 5}, ["u2"]),
        "in": ({"attribute": "external_id", "op": "in", "value": ["u1", "u2"]}, ["u1", "u2"]),
        "exists": ({"attribute": "first_name", "op": "exists"}, ["u1", "u2"]),
        "not exists": ({"attribute": "first_name", "op": "exists", "value": False}, ["u3", None]),
    }
    for name, (segment_filter, expected) in cases.items():
        segment_id = add_segment(client, name=name, filter=segment_filter)
        response = client.post(
            "/users/export/segment", {"segment_id": segment_id, "fields_to_export": ["external_id"]}
        )
        job = wait_for_export(client, response.json()["object_prefix"])
        archive = zipfile.ZipFile(io.BytesIO(client.session.get(job["url"], timeout=30).content))
        found = [orjson.loads(line).get("external_id") for line in archive.read("0.json").splitlines()]
        assert sorted(found, key=str) == sorted(expected, key=str), name


# -- callbacks ----------------------------------------------------------------------------------


@pytest.fixture
def callback_receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(orjson.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/done", received
    server.shutdown()
    thread.join()


def test_callback_endpoint_is_called_when_the_export_is_done(
    client: EmulatorClient, callback_receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = callback_receiver
    seed_users(client)
    client.configure(export_delay_s=0)
    segment_id = add_segment(client)
    response = client.post(
        "/users/export/segment",
        {"segment_id": segment_id, "fields_to_export": ["external_id"], "callback_endpoint": url},
    )
    object_prefix = response.json()["object_prefix"]
    deadline = time.monotonic() + EXPORT_WAIT_S
    while not received and time.monotonic() < deadline:
        time.sleep(0.02)
    # Braze's callback body: success, plus the URL when the workspace has no S3 credentials.
    assert received == [{"success": True, "url": response.json()["url"]}]
    assert object_prefix


def test_callbacks_only_go_to_loopback_addresses(client: EmulatorClient) -> None:
    client.configure(export_delay_s=0)
    segment_id = add_segment(client)
    response = client.post(
        "/users/export/segment",
        {
            "segment_id": segment_id,
            "fields_to_export": ["external_id"],
            "callback_endpoint": "http://example.com/x",
        },
    )
    object_prefix = response.json()["object_prefix"]
    deadline = time.monotonic() + EXPORT_WAIT_S
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = next(
            job for job in client.admin("GET", "/exports")["exports"] if job["object_prefix"] == object_prefix
        )
        if job["callback"] is not None:
            break
        time.sleep(0.02)
    assert job["callback"] == {
        "url": "http://example.com/x",
        "status": "skipped: the emulator only calls loopback addresses",
    }


# -- /users/export/segment to S3 ----------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


def s3_client(endpoint: str) -> Any:
    return moto_client(endpoint, "s3")


@pytest.mark.parametrize("output_format", ["gzip", "zip"])
def test_segment_export_writes_json_lines_to_s3(
    client: EmulatorClient, moto_endpoint: str, output_format: str
) -> None:
    # Given an S3 export destination and users to export
    s3 = s3_client(moto_endpoint)
    bucket = f"exports-{output_format}"
    s3.create_bucket(Bucket=bucket)
    client.configure(
        export_delay_s=0.1,
        export_users_per_file=3,
        export_s3={"endpoint_url": moto_endpoint, "bucket": bucket, "path": "braze/"},
    )
    client.track(attributes=[{"external_id": f"u{index}", "n": index} for index in range(7)])
    segment_id = add_segment(client)
    # When the segment is exported
    response = client.post(
        "/users/export/segment",
        {
            "segment_id": segment_id,
            "fields_to_export": ["external_id", "custom_attributes"],
            "output_format": output_format,
        },
    )
    body = response.json()
    assert response.status_code == 201 and body["url"] is None
    job = wait_for_export(client, body["object_prefix"])
    # Then the files sit under <path>/segment-export/<segment_id>/<day done>/<object_prefix>/
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    prefix = f"braze/segment-export/{segment_id}/{day}/{body['object_prefix']}/"
    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"])
    suffix = ".gz" if output_format == "gzip" else ".zip"
    assert len(keys) == 3 and all(key.endswith(suffix) and not key.endswith(".json.gz") for key in keys)
    assert job["files"] == keys
    users = []
    for key in keys:
        content = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        if output_format == "gzip":
            text = gzip.decompress(content)
        else:
            archive = zipfile.ZipFile(io.BytesIO(content))
            text = b"".join(archive.read(name) for name in archive.namelist())
        users += [orjson.loads(line) for line in text.splitlines()]
    assert sorted(user["external_id"] for user in users) == [f"u{index}" for index in range(7)]
    assert {user["custom_attributes"]["n"] for user in users} == set(range(7))


def test_failed_s3_upload_is_recorded_on_the_export(client: EmulatorClient, moto_endpoint: str) -> None:
    client.configure(export_delay_s=0, export_s3={"endpoint_url": moto_endpoint, "bucket": "no-such-bucket"})
    segment_id = add_segment(client)
    response = client.post(
        "/users/export/segment", {"segment_id": segment_id, "fields_to_export": ["external_id"]}
    )
    job = wait_for_export(client, response.json()["object_prefix"])
    assert job["status"] == "failed" and "NoSuchBucket" in job["error"]
