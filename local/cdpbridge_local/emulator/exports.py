"""User exports: POST /users/export/ids and /users/export/segment.

Profiles are rendered the way Braze exports them (fields without a value are left out). A segment
export runs in the background: after ``export_delay_s`` its JSON lines go either to S3 as
``<path>/segment-export/<segment_id>/<YYYY-MM-dd>/<object_prefix>/<random>.gz`` (or ``.zip``), the
date being the day the export completes and ``object_prefix`` ``<uuid>-<unix seconds>``, or into a
zip the emulator serves itself at ``/_exports/<export_id>.zip``. The callback gets
``{"success": true}`` (plus ``url`` without S3 credentials).
"""

from __future__ import annotations

import asyncio
import gzip
import io
import ipaddress
import logging
import time
import uuid
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import boto3
import orjson

from cdpbridge_local.emulator.config import ExportS3
from cdpbridge_local.emulator.errors import ApiError, BadRequest
from cdpbridge_local.emulator.state import Profile, UserStore
from cdpbridge_local.emulator.validation import format_time, is_email, parse_alias
from cdpbridge_local.emulator.workspace import SegmentDefinition

logger = logging.getLogger(__name__)

MAX_IDENTIFIERS_PER_EXPORT = 50
MAX_CUSTOM_ATTRIBUTES_TO_EXPORT = 500
CALLBACK_TIMEOUT_S = 5.0
_STANDARD_EXPORT_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "dob",
    "home_city",
    "country",
    "language",
    "time_zone",
    "gender",
    "bio",
    "image_url",
    "push_tokens",
)
# Every field name Braze accepts in fields_to_export; those the emulator never fills are left out
# of the output just as Braze leaves out fields without a value.
EXPORT_FIELDS = frozenset(
    {
        *_STANDARD_EXPORT_FIELDS,
        "external_id",
        "braze_id",
        "user_aliases",
        "created_at",
        "custom_attributes",
        "custom_events",
        "purchases",
        "total_revenue",
        "email_subscribe",
        "push_subscribe",
        "subscription_groups",
        "last_coordinates",
        "random_bucket",
        "apps",
        "attributed_campaign",
        "attributed_source",
        "attributed_adgroup",
        "attributed_ad",
        "campaigns_received",
        "canvases_received",
        "cards_clicked",
        "devices",
        "email_opted_in_at",
        "email_unsubscribed_at",
        "push_opted_in_at",
        "push_unsubscribed_at",
        "uninstalled_at",
        "twitter",
        "facebook",
    }
)


def _summaries(records: Iterable[dict[str, Any]], name_key: str) -> list[dict[str, Any]]:
    by_name: dict[str, dict[str, Any]] = {}
    for record in records:
        name = record[name_key]
        summary = by_name.get(name)
        if summary is None:
            by_name[name] = {"name": name, "first": record["time"], "last": record["time"], "count": 1}
        else:
            summary["first"] = min(summary["first"], record["time"])
            summary["last"] = max(summary["last"], record["time"])
            summary["count"] += 1
    return list(by_name.values())


def render_profile(
    profile: Profile, fields: frozenset[str] | None, custom_attribute_names: list[str] | None
) -> dict[str, Any]:
    """One exported user. ``fields`` None means every field; custom attribute names narrow
    ``custom_attributes`` (and include it even when ``fields`` does not name it)."""

    def wanted(name: str) -> bool:
        return fields is None or name in fields

    user: dict[str, Any] = {}
    if wanted("created_at"):
        user["created_at"] = profile.created_at
    if wanted("external_id") and profile.external_id is not None:
        user["external_id"] = profile.external_id
    if wanted("user_aliases") and profile.aliases:
        user["user_aliases"] = [{"alias_name": name, "alias_label": label} for label, name in profile.aliases]
    if wanted("braze_id"):
        user["braze_id"] = profile.braze_id
    if wanted("random_bucket"):
        user["random_bucket"] = int(profile.braze_id[:8], 16) % 10_000
    for name in _STANDARD_EXPORT_FIELDS:
        if wanted(name) and profile.standard.get(name) is not None:
            user[name] = profile.standard[name]
    if wanted("last_coordinates") and profile.standard.get("current_location") is not None:
        location = profile.standard["current_location"]
        user["last_coordinates"] = [location["longitude"], location["latitude"]]
    for name in ("email_subscribe", "push_subscribe"):
        if wanted(name) and name in profile.subscriptions:
            user[name] = profile.subscriptions[name]
    if wanted("subscription_groups") and profile.subscription_groups:
        user["subscription_groups"] = [
            {"id": group_id, "subscription_state": state}
            for group_id, state in profile.subscription_groups.items()
        ]
    if custom_attribute_names is not None and not (fields is not None and "custom_attributes" in fields):
        selected = {name: profile.custom[name] for name in custom_attribute_names if name in profile.custom}
        if selected:
            user["custom_attributes"] = selected
    elif wanted("custom_attributes") and profile.custom:
        user["custom_attributes"] = dict(profile.custom)
    if wanted("custom_events") and profile.events:
        user["custom_events"] = _summaries(profile.events, "name")
    if wanted("purchases") and profile.purchases:
        user["purchases"] = _summaries(profile.purchases, "product_id")
    if wanted("total_revenue") and profile.purchases:
        user["total_revenue"] = round(sum(p["price"] * p["quantity"] for p in profile.purchases), 2)
    return user


def _fields_to_export(body: dict[str, Any], required: bool) -> frozenset[str] | None:
    raw = body.get("fields_to_export")
    if raw is None:
        if required:
            raise BadRequest("'fields_to_export' is required")
        return None
    if not isinstance(raw, list) or not raw or not all(isinstance(name, str) for name in raw):
        raise BadRequest("'fields_to_export' must be a non-empty array of field names")
    unknown = sorted(set(raw) - EXPORT_FIELDS)
    if unknown:
        raise BadRequest(f"'fields_to_export' has unknown fields {unknown}")
    return frozenset(raw)


def _custom_attributes_to_export(body: dict[str, Any]) -> list[str] | None:
    raw = body.get("custom_attributes_to_export")
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(name, str) and name for name in raw):
        raise BadRequest("'custom_attributes_to_export' must be an array of attribute names")
    if len(raw) > MAX_CUSTOM_ATTRIBUTES_TO_EXPORT:
        limit = MAX_CUSTOM_ATTRIBUTES_TO_EXPORT
        raise BadRequest(f"'custom_attributes_to_export' names {len(raw)} attributes, the limit is {limit}")
    return list(raw)


def export_by_ids(body: Any, store: UserStore, fields_required: bool = True) -> dict[str, Any]:
    """POST /users/export/ids: profiles of up to 50 identifiers; ``invalid_user_ids`` lists every
    identifier that matched nobody (aliases as their alias_name)."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object")
    allowed = {
        "external_ids",
        "user_aliases",
        "device_id",
        "braze_id",
        "email_address",
        "phone",
        "fields_to_export",
    }
    unknown = body.keys() - allowed
    if unknown:
        raise BadRequest(f"unknown fields {sorted(unknown)}")
    fields = _fields_to_export(body, required=fields_required)
    external_ids = body.get("external_ids") or []
    aliases = body.get("user_aliases") or []
    if not isinstance(external_ids, list) or not all(isinstance(item, str) and item for item in external_ids):
        raise BadRequest("'external_ids' must be an array of non-empty strings")
    if not isinstance(aliases, list):
        raise BadRequest("'user_aliases' must be an array of alias objects")
    parsed_aliases = []
    for alias in aliases:
        parsed = parse_alias(alias)
        if parsed is None:
            raise BadRequest("'user_aliases' must hold {'alias_name', 'alias_label'} objects")
        parsed_aliases.append(parsed)
    singles = {name: body.get(name) for name in ("braze_id", "email_address", "phone", "device_id")}
    for name, value in singles.items():
        if value is not None and (not isinstance(value, str) or not value):
            raise BadRequest(f"'{name}' must be a non-empty string")
    if singles["email_address"] is not None and not is_email(singles["email_address"]):
        raise BadRequest("'email_address' is not a valid email address")
    count = len(external_ids) + len(parsed_aliases) + sum(value is not None for value in singles.values())
    if count == 0:
        raise BadRequest(
            "name at least one user: external_ids, user_aliases, braze_id, email_address or phone"
        )
    if count > MAX_IDENTIFIERS_PER_EXPORT:
        raise BadRequest(f"{count} identifiers in one request, the limit is {MAX_IDENTIFIERS_PER_EXPORT}")

    found: dict[str, Profile] = {}
    invalid_user_ids: list[str] = []
    for external_id in external_ids:
        profile = store.by_external_id.get(external_id)
        if profile is None:
            invalid_user_ids.append(external_id)
        else:
            found.setdefault(profile.braze_id, profile)
    for alias in parsed_aliases:
        profile = store.by_alias.get(alias)
        if profile is None:
            invalid_user_ids.append(alias[1])
        else:
            found.setdefault(profile.braze_id, profile)
    if singles["braze_id"] is not None:
        profile = store.by_braze_id.get(singles["braze_id"])
        if profile is None:
            invalid_user_ids.append(singles["braze_id"])
        else:
            found.setdefault(profile.braze_id, profile)
    # An address may belong to several profiles; Braze exports them all.
    no_devices: dict[str, list[Profile]] = {}
    for name, index, key in (
        ("email_address", store.by_email, (singles["email_address"] or "").lower()),
        ("phone", store.by_phone, singles["phone"] or ""),
        ("device_id", no_devices, singles["device_id"] or ""),
    ):
        holders = index.get(key, [])
        asked = singles[name]
        if isinstance(asked, str) and not holders:
            invalid_user_ids.append(asked)
        for profile in holders:
            found.setdefault(profile.braze_id, profile)
    response: dict[str, Any] = {
        "users": [render_profile(profile, fields, None) for profile in found.values()]
    }
    if invalid_user_ids:
        response["invalid_user_ids"] = invalid_user_ids
    response["message"] = "success"
    return response


@dataclass(slots=True)
class SegmentExportRequest:
    segment_id: str
    fields: frozenset[str]
    custom_attribute_names: list[str] | None
    callback_endpoint: str | None
    output_format: str


def parse_segment_export(
    body: Any, segments: dict[str, SegmentDefinition], s3: ExportS3 | None
) -> SegmentExportRequest:
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object")
    allowed = {
        "segment_id",
        "fields_to_export",
        "custom_attributes_to_export",
        "callback_endpoint",
        "output_format",
    }
    unknown = body.keys() - allowed
    if unknown:
        raise BadRequest(f"unknown fields {sorted(unknown)}")
    segment_id = body.get("segment_id")
    if not isinstance(segment_id, str) or not segment_id:
        raise BadRequest("'segment_id' is required")
    if segment_id not in segments:
        raise BadRequest(f"Invalid segment_id: no segment '{segment_id[:64]}'")
    fields = _fields_to_export(body, required=True)
    assert fields is not None
    callback = body.get("callback_endpoint")
    if callback is not None and (
        not isinstance(callback, str) or urlsplit(callback).scheme not in ("http", "https")
    ):
        raise BadRequest("'callback_endpoint' must be an http(s) URL")
    output_format = body.get("output_format", "zip")
    if output_format not in ("zip", "gzip"):
        raise BadRequest("'output_format' must be 'zip' or 'gzip'")
    if output_format == "gzip" and s3 is None:
        raise BadRequest("'output_format' gzip needs S3 export credentials in the workspace")
    return SegmentExportRequest(
        segment_id=segment_id,
        fields=fields,
        custom_attribute_names=_custom_attributes_to_export(body),
        callback_endpoint=callback,
        output_format=output_format,
    )


@dataclass(slots=True)
class ExportJob:
    export_id: str
    segment_id: str
    object_prefix: str
    output_format: str
    requested_at: str
    url: str | None
    status: str = "running"
    user_count: int = 0
    files: list[str] = field(default_factory=list)
    callback: dict[str, Any] | None = None
    error: str | None = None

    def view(self) -> dict[str, Any]:
        return {
            "export_id": self.export_id,
            "segment_id": self.segment_id,
            "object_prefix": self.object_prefix,
            "output_format": self.output_format,
            "requested_at": self.requested_at,
            "status": self.status,
            "url": self.url,
            "user_count": self.user_count,
            "files": list(self.files),
            "callback": self.callback,
            "error": self.error,
        }


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _chunks(lines: list[bytes], size: int) -> list[list[bytes]]:
    return [lines[start : start + size] for start in range(0, len(lines), size)] or [[]]


def _joined(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def _zip_of(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries:
            archive.writestr(name, content)
    return buffer.getvalue()


def _upload(s3: ExportS3, objects: list[tuple[str, bytes]]) -> None:
    # Dummy credentials: the destination is always a local S3 (moto) given by endpoint_url. A session
    # of its own per upload, because boto3's default session is not safe across executor threads.
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=s3.endpoint_url,
        region_name=s3.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # nosec B106 # noqa: S106 - a local moto endpoint, not a secret
    )
    for key, content in objects:
        client.put_object(Bucket=s3.bucket, Key=key, Body=content)


class ExportManager:
    """Segment exports: one at a time per segment, finished in the background."""

    def __init__(self) -> None:
        # Braze's text for a second export of a running segment is undocumented: configurable.
        self.in_progress_message: str | None = "An export of this segment is already in progress"
        self.jobs: dict[str, ExportJob] = {}
        self.archives: dict[str, bytes] = {}
        self._running_segments: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def clear(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        self.jobs.clear()
        self.archives.clear()
        self._running_segments.clear()

    def start(
        self,
        request: SegmentExportRequest,
        *,
        members: list[Profile],
        base_url: str,
        s3: ExportS3 | None,
        delay_s: float,
        users_per_file: int,
    ) -> ExportJob:
        if request.segment_id in self._running_segments:
            message = self.in_progress_message
            raise ApiError(429, message or "", body={"message": message} if message is not None else {})
        export_id = uuid.uuid4().hex
        job = ExportJob(
            export_id=export_id,
            segment_id=request.segment_id,
            object_prefix=f"{uuid.uuid4()}-{int(time.time())}",
            output_format=request.output_format,
            requested_at=format_time(datetime.now(UTC)),
            url=None if s3 is not None else f"{base_url}/_exports/{export_id}.zip",
        )
        self.jobs[export_id] = job
        self._running_segments.add(request.segment_id)
        task = asyncio.get_running_loop().create_task(
            self._run(
                job, request, members=list(members), s3=s3, delay_s=delay_s, users_per_file=users_per_file
            )
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _run(
        self,
        job: ExportJob,
        request: SegmentExportRequest,
        *,
        members: list[Profile],
        s3: ExportS3 | None,
        delay_s: float,
        users_per_file: int,
    ) -> None:
        try:
            await asyncio.sleep(delay_s)
            # Rendered on the event loop, where profiles are changed, then packed off it.
            lines = [
                orjson.dumps(render_profile(profile, request.fields, request.custom_attribute_names))
                for profile in members
            ]
            job.user_count = len(lines)
            chunks = _chunks(lines, users_per_file)
            loop = asyncio.get_running_loop()
            if s3 is not None:
                objects = await loop.run_in_executor(None, self._s3_objects, job, s3, chunks)
                await loop.run_in_executor(None, _upload, s3, objects)
                job.files = [key for key, _ in objects]
            else:
                entries = [(f"{index}.json", _joined(chunk)) for index, chunk in enumerate(chunks)]
                self.archives[job.export_id] = await loop.run_in_executor(None, _zip_of, entries)
                job.files = [name for name, _ in entries]
            job.status = "done"
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the job records any failure instead of losing it in a task
            logger.warning("segment export failed", extra={"export_id": job.export_id, "error": repr(error)})
            job.status = "failed"
            job.error = repr(error)
        finally:
            self._running_segments.discard(job.segment_id)
        if request.callback_endpoint is not None:
            job.callback = await self._call_back(job, request.callback_endpoint)

    @staticmethod
    def _s3_objects(job: ExportJob, s3: ExportS3, chunks: list[list[bytes]]) -> list[tuple[str, bytes]]:
        # The date in the key is the day the export completes, not the day it was asked for.
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        prefix = "/".join(
            part
            for part in (s3.path.strip("/"), "segment-export", job.segment_id, day, job.object_prefix)
            if part
        )
        # Braze names each file with a random string; the emulator's sort in the order written.
        if job.output_format == "gzip":
            return [
                (f"{prefix}/{index:05d}-{uuid.uuid4().hex[:12]}.gz", gzip.compress(_joined(chunk)))
                for index, chunk in enumerate(chunks)
            ]
        return [
            (
                f"{prefix}/{index:05d}-{uuid.uuid4().hex[:12]}.zip",
                _zip_of([(f"{index}.json", _joined(chunk))]),
            )
            for index, chunk in enumerate(chunks)
        ]

    @staticmethod
    async def _call_back(job: ExportJob, url: str) -> dict[str, Any]:
        if not is_loopback_url(url):
            return {"url": url, "status": "skipped: the emulator only calls loopback addresses"}
        payload: dict[str, Any] = {"success": job.status == "done"}
        if job.url is not None:
            payload["url"] = job.url
        try:
            timeout = aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT_S)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(url, json=payload) as response,
            ):
                return {"url": url, "status": response.status}
        except (aiohttp.ClientError, TimeoutError) as error:
            return {"url": url, "status": f"failed: {error!r}"}

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
