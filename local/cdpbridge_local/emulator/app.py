"""The aiohttp application: Braze's REST endpoints, the admin API under /_emulator, and exports.

Every Braze endpoint goes through the same gate, in this order: latency, injected fault (a faulted
request is never applied), authentication, rate limit, then the endpoint itself.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import orjson
import pydantic
from aiohttp import web

from cdpbridge_local.emulator import identity, subscriptions
from cdpbridge_local.emulator.cohorts import CohortLock, PartnerDefinition
from cdpbridge_local.emulator.core import CallerStage, Emulator, UnansweredRequest
from cdpbridge_local.emulator.errors import ApiError, BadRequest
from cdpbridge_local.emulator.exports import export_by_ids, parse_segment_export
from cdpbridge_local.emulator.faults import FaultKind
from cdpbridge_local.emulator.messaging import (
    CAMPAIGN,
    CANVAS,
    SEND_ID_MAX_LENGTH,
    TriggerKind,
    parse_schedule,
    parse_trigger,
    record_dispatch,
    reschedule,
)
from cdpbridge_local.emulator.ratelimit import RateLimitDecision
from cdpbridge_local.emulator.track import process_track
from cdpbridge_local.emulator.validation import Identifier, is_email
from cdpbridge_local.emulator.workspace import (
    ApiKeyDefinition,
    CampaignDefinition,
    CanvasDefinition,
    SegmentDefinition,
    SubscriptionGroupDefinition,
)

EMULATOR_KEY: web.AppKey[Emulator] = web.AppKey("emulator", Emulator)
# Large enough for 75 objects carrying 100 KB nested objects each.
MAX_REQUEST_BYTES = 64 * 1024 * 1024
LIST_PAGE_SIZE = 100
ADMIN_PAGE_SIZE_MAX = 1000

BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)

JsonBody = dict[str, Any]
EndpointResult = tuple[int, JsonBody]
EndpointHandler = Callable[[web.Request, Emulator], Awaitable[EndpointResult]]


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


PARSE_ERROR = "Error while parsing request body. Please check your syntax."


async def read_json(request: web.Request) -> Any:
    """The JSON body; 415 without a JSON Content-Type, Braze's parse error for a malformed body."""
    if request.content_type != "application/json":
        raise ApiError(415, "Unsupported Media Type: the Content-Type must be application/json")
    raw = await request.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, PARSE_ERROR, body={"error": PARSE_ERROR}) from None


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    family: str
    # None: the endpoint authenticates in its body (partner cohort import).
    permission: str | None
    handler: EndpointHandler


def _bearer_key(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return key.strip()


def _drop_connection(request: web.Request) -> web.Response:
    # Closing the transport first makes aiohttp's attempt to write the response fail quietly, so
    # the client sees the connection closed without a status line.
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=500)


def _fault_response(kind: FaultKind, limit: RateLimitDecision) -> web.Response:
    headers = limit.headers()
    if kind is FaultKind.STATUS_429:
        headers["X-RateLimit-Remaining"] = "0"
        return json_response(429, {"message": "API rate limit exceeded"}, headers)
    if kind is FaultKind.STATUS_500:
        return json_response(500, {"message": "Internal Server Error"}, headers)
    if kind is FaultKind.STATUS_503:
        return json_response(503, {"message": "Service Unavailable"}, headers)
    return web.Response(status=502, text=BAD_GATEWAY_HTML, content_type="text/html", headers=headers)


async def _notice_closed_connections() -> None:
    """Lets the loop read what arrived meanwhile: a connection whose peer died (a killed client)
    is marked closing only once its read callback ran, one loop iteration after the selector saw
    it, and the callback is queued behind this task's own wake-up; hence two iterations."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def _answer_lost(
    request: web.Request,
    emulator: Emulator,
    endpoint: Endpoint,
    failure: FaultKind | None,
    *,
    applied: bool,
) -> str | None:
    """Why the answer of a request just handled never reaches its caller (None: it will).

    A request that was applied (even partly) and goes unanswered is kept in the stats, with its
    body, so a test can tell exactly which writes a client may have sent twice.
    """
    cause: str | None = None
    await _notice_closed_connections()
    if failure is FaultKind.APPLY_THEN_DROP:
        emulator.stats.faults[failure.value] += 1
        cause = failure.value
    else:
        hook = emulator.caller_hook
        if hook is not None and hook(CallerStage.APPLIED, endpoint.name):
            cause = "caller_gone"
        elif request.transport is None or request.transport.is_closing():
            cause = "client_gone"  # e.g. the client's read timeout ran out while we worked
    if cause is None:
        return None
    if applied:
        raw = await request.read()  # the handler read it already: aiohttp keeps the bytes
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        emulator.stats.unanswered.append(UnansweredRequest(endpoint.name, cause, body))
    return f"applied_unanswered_{cause}" if applied else f"unanswered_{cause}"


def braze_route(
    emulator: Emulator, endpoint: Endpoint
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        config = emulator.config
        if config.latency_ms:
            await asyncio.sleep(config.latency_ms / 1000.0)
        decision = emulator.faults.decide()
        if decision.delay_s:
            emulator.stats.faults["slow"] += 1
            await asyncio.sleep(decision.delay_s)
        # Looked up per request: a reset replaces the stats object.
        record = emulator.stats.record
        transport = request.transport
        if transport is None or transport.is_closing():
            # The client gave up while we were slow: like Braze, nothing is applied or counted
            # against the rate limit for a request nobody is waiting for.
            record(endpoint.name, "abandoned")
            return web.Response(status=499)
        # apply_then_drop acts once the request is applied (see _answer_lost) and is counted there.
        if decision.failure is not None and decision.failure is not FaultKind.APPLY_THEN_DROP:
            emulator.stats.faults[decision.failure.value] += 1
            if decision.failure is FaultKind.DROP_CONNECTION:
                record(endpoint.name, "dropped")
                return _drop_connection(request)
            response = _fault_response(
                decision.failure, emulator.limiter.check(endpoint.family, consume=False)
            )
            record(endpoint.name, str(response.status))
            return response

        if endpoint.permission is not None:
            key = _bearer_key(request)
            permissions = emulator.workspace.api_keys.get(key) if key is not None else None
            if permissions is None or endpoint.permission not in permissions:
                headers = emulator.limiter.check(endpoint.family, consume=False).headers()
                if permissions is None:
                    record(endpoint.name, "401")
                    return json_response(401, {"message": "Invalid API key"}, headers)
                record(endpoint.name, "403")
                return json_response(
                    403,
                    {"message": f"The API key does not have the permission '{endpoint.permission}'"},
                    headers,
                )

        limit = emulator.limiter.check(endpoint.family)
        headers = limit.headers()
        if not limit.allowed:
            emulator.stats.rate_limited[endpoint.family] += 1
            record(endpoint.name, "429")
            return json_response(429, {"message": "API rate limit exceeded"}, headers)
        hook = emulator.caller_hook
        if hook is not None and hook(CallerStage.RECEIVED, endpoint.name):
            record(endpoint.name, "caller_gone")
            return _drop_connection(request)
        await _notice_closed_connections()
        if request.transport is None or request.transport.is_closing():
            # The client died while the request waited (e.g. its process was killed meanwhile).
            record(endpoint.name, "abandoned")
            return web.Response(status=499)
        try:
            status, body = await endpoint.handler(request, emulator)
        except ApiError as error:
            status = error.status
            body = error.body if error.body is not None else {"message": error.message}
            if error.headers is not None:
                headers = error.headers
        lost = await _answer_lost(request, emulator, endpoint, decision.failure, applied=status < 400)
        if lost is not None:
            record(endpoint.name, lost)
            return _drop_connection(request)
        if decision.queued and 200 <= status < 300:
            emulator.stats.faults["queued_202"] += 1
            status, body = 202, {"message": "queued"}
        record(endpoint.name, str(status))
        return json_response(status, body, headers)

    return handle


# -- Braze endpoints ----------------------------------------------------------------------------


async def users_track(request: web.Request, emulator: Emulator) -> EndpointResult:
    payload = await read_json(request)
    hourly = emulator.limiter.check("users.track.hourly")
    if not hourly.allowed:
        emulator.stats.rate_limited["users.track.hourly"] += 1
        raise ApiError(429, "API rate limit exceeded", headers=hourly.headers())
    outcome = process_track(
        payload, emulator.store, emulator.config.track_cap, emulator.rules, datetime.now(UTC)
    )
    if outcome.errors:
        stats = emulator.stats
        for error in outcome.errors:
            stats.object_errors[error.get("input_array", "request")] += 1
            stats.error_types[error["type"]] += 1
    return outcome.status, outcome.body


async def users_export_ids(request: web.Request, emulator: Emulator) -> EndpointResult:
    body = await read_json(request)
    return 201, export_by_ids(body, emulator.store, emulator.config.export_ids_fields_required)


async def users_export_segment(request: web.Request, emulator: Emulator) -> EndpointResult:
    config = emulator.config
    export_request = parse_segment_export(
        await read_json(request), emulator.workspace.segments, config.export_s3
    )
    segment = emulator.workspace.segments[export_request.segment_id]
    members = emulator.workspace.segment_members(segment, emulator.store.profiles())
    job = emulator.exports.start(
        export_request,
        members=members,
        base_url=f"{request.scheme}://{request.host}",
        s3=config.export_s3,
        delay_s=config.export_delay_s,
        users_per_file=config.export_users_per_file,
    )
    return 201, {"message": "success", "object_prefix": job.object_prefix, "url": job.url}


def _page_of(request: web.Request) -> int:
    raw = request.query.get("page", "0")
    if not raw.isdigit():
        raise BadRequest("'page' must be a non-negative integer")
    return int(raw)


def _descending(request: web.Request) -> bool:
    direction = request.query.get("sort_direction", "asc")
    if direction not in ("asc", "desc"):
        raise BadRequest("'sort_direction' must be 'asc' or 'desc'")
    return direction == "desc"


def _paged(items: list[Any], request: web.Request) -> list[Any]:
    if _descending(request):
        items = items[::-1]
    start = _page_of(request) * LIST_PAGE_SIZE
    return items[start : start + LIST_PAGE_SIZE]


async def segments_list(request: web.Request, emulator: Emulator) -> EndpointResult:
    workspace = emulator.workspace
    segments = [workspace.segment_listing(segment) for segment in workspace.segments.values()]
    return 200, {"segments": _paged(segments, request), "message": "success"}


async def campaigns_list(request: web.Request, emulator: Emulator) -> EndpointResult:
    workspace = emulator.workspace
    campaigns = [workspace.campaign_listing(campaign) for campaign in workspace.campaigns.values()]
    return 200, {"campaigns": _paged(campaigns, request), "message": "success"}


async def campaigns_details(request: web.Request, emulator: Emulator) -> EndpointResult:
    campaign_id = request.query.get("campaign_id")
    if not campaign_id:
        raise BadRequest("'campaign_id' is required")
    campaign = emulator.workspace.campaigns.get(campaign_id)
    if campaign is None:
        # Braze answers an unknown campaign with a 400, not a 404.
        raise BadRequest(f"Invalid campaign_id: no campaign '{campaign_id[:64]}'")
    return 200, emulator.workspace.campaign_details(campaign)


def _broadcast_limit(emulator: Emulator, body: Any) -> None:
    """A broadcast counts against a per-minute family of its own as well."""
    if isinstance(body, dict) and body.get("broadcast") is True:
        decision = emulator.limiter.check("campaigns.trigger.broadcast")
        if not decision.allowed:
            emulator.stats.rate_limited["campaigns.trigger.broadcast"] += 1
            raise ApiError(429, "API rate limit exceeded", headers=decision.headers())


async def _trigger(request: web.Request, emulator: Emulator, kind: TriggerKind) -> EndpointResult:
    body = await read_json(request)
    targets = emulator.workspace.campaigns if kind is CAMPAIGN else emulator.workspace.canvases
    trigger = parse_trigger(
        body,
        targets,
        emulator.rules,
        kind=kind,
        properties_max_bytes=emulator.config.trigger_properties_max_bytes,
    )
    if "schedule" in body:
        raise BadRequest("unknown fields ['schedule']")
    _broadcast_limit(emulator, body)
    dispatch = record_dispatch(trigger, emulator.store)
    emulator.dispatches.append(dispatch)
    response: JsonBody = {"dispatch_id": dispatch["dispatch_id"], "message": "success"}
    if kind is CANVAS:
        status = emulator.workspace.canvases[trigger.target_id].status
        if status != "active":
            response["notice"] = f"The Canvas is {status}: no message will be sent until it is active."
    return 201, response


async def campaigns_trigger_send(request: web.Request, emulator: Emulator) -> EndpointResult:
    return await _trigger(request, emulator, CAMPAIGN)


async def canvas_trigger_send(request: web.Request, emulator: Emulator) -> EndpointResult:
    return await _trigger(request, emulator, CANVAS)


async def campaigns_trigger_schedule(request: web.Request, emulator: Emulator) -> EndpointResult:
    body = await read_json(request)
    trigger = parse_trigger(
        body,
        emulator.workspace.campaigns,
        emulator.rules,
        properties_max_bytes=emulator.config.trigger_properties_max_bytes,
    )
    schedule = parse_schedule(body.get("schedule"), datetime.now(UTC))
    _broadcast_limit(emulator, body)
    dispatch = record_dispatch(trigger, emulator.store, schedule)
    emulator.dispatches.append(dispatch)
    return 201, {
        "dispatch_id": dispatch["dispatch_id"],
        "schedule_id": dispatch["schedule_id"],
        "message": "success",
    }


def _scheduled_dispatch(emulator: Emulator, body: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object")
    unknown = body.keys() - allowed
    if unknown:
        raise BadRequest(f"unknown fields {sorted(unknown)}")
    campaign_id = body.get("campaign_id")
    schedule_id = body.get("schedule_id")
    if (
        not isinstance(campaign_id, str)
        or not campaign_id
        or not isinstance(schedule_id, str)
        or not schedule_id
    ):
        raise BadRequest("'campaign_id' and 'schedule_id' are required")
    for dispatch in emulator.dispatches:
        if (
            dispatch.get("schedule_id") == schedule_id
            and dispatch.get("campaign_id") == campaign_id
            and dispatch["status"] == "scheduled"
        ):
            return dispatch
    raise BadRequest(f"Invalid schedule_id: no pending schedule '{schedule_id[:64]}' of this campaign")


async def campaigns_schedule_update(request: web.Request, emulator: Emulator) -> EndpointResult:
    body = await read_json(request)
    dispatch = _scheduled_dispatch(emulator, body, {"campaign_id", "schedule_id", "schedule"})
    reschedule(dispatch, parse_schedule(body.get("schedule"), datetime.now(UTC)), emulator.store)
    return 200, {"message": "success"}


async def campaigns_schedule_delete(request: web.Request, emulator: Emulator) -> EndpointResult:
    dispatch = _scheduled_dispatch(emulator, await read_json(request), {"campaign_id", "schedule_id"})
    dispatch["status"] = "cancelled"
    return 200, {"message": "success"}


async def sends_id_create(request: web.Request, emulator: Emulator) -> EndpointResult:
    body = await read_json(request)
    if not isinstance(body, dict) or not body.keys() <= {"campaign_id", "send_id"}:
        raise BadRequest("the body takes 'campaign_id' and an optional 'send_id'")
    campaign_id = body.get("campaign_id")
    if not isinstance(campaign_id, str) or campaign_id not in emulator.workspace.campaigns:
        raise BadRequest("Invalid campaign_id")
    send_id = body.get("send_id", uuid.uuid4().hex)
    if (
        not isinstance(send_id, str)
        or not send_id
        or len(send_id) > SEND_ID_MAX_LENGTH
        or not send_id.isascii()
    ):
        raise BadRequest(f"'send_id' must be 1-{SEND_ID_MAX_LENGTH} ASCII characters")
    day = datetime.now(UTC).date().isoformat()
    created = emulator.send_ids.setdefault((campaign_id, day), [])
    limit = emulator.config.custom_send_ids_per_campaign_per_day
    if len(created) >= limit:
        # Documented as a limit of send identifiers a day per campaign.
        tomorrow = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), time.min, UTC)
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(tomorrow.timestamp())),
        }
        raise ApiError(429, f"at most {limit} send identifiers a day per campaign", headers=headers)
    created.append(send_id)
    return 201, {"message": "success", "send_id": send_id}


async def partner_cohorts(request: web.Request, emulator: Emulator) -> EndpointResult:
    emulator.cohorts.upsert(request.match_info["partner"], await read_json(request))
    return 201, {"message": "success"}


async def partner_cohort_users(request: web.Request, emulator: Emulator) -> EndpointResult:
    emulator.cohorts.change_members(request.match_info["partner"], await read_json(request), emulator.store)
    return 201, {"message": "success"}


async def users_delete(request: web.Request, emulator: Emulator) -> EndpointResult:
    return 202, identity.delete_users(await read_json(request), emulator.store)


async def users_alias_new(request: web.Request, emulator: Emulator) -> EndpointResult:
    return 201, identity.new_aliases(await read_json(request), emulator.store)


async def users_alias_update(request: web.Request, emulator: Emulator) -> EndpointResult:
    return 202, identity.update_aliases(await read_json(request), emulator.store)


async def users_identify(request: web.Request, emulator: Emulator) -> EndpointResult:
    return 201, identity.identify(await read_json(request), emulator.store)


async def users_merge(request: web.Request, emulator: Emulator) -> EndpointResult:
    return 202, identity.merge(await read_json(request), emulator.store)


async def subscription_status_set(request: web.Request, emulator: Emulator) -> EndpointResult:
    changes = subscriptions.parse_v1(await read_json(request), emulator.workspace.subscription_groups)
    subscriptions.apply(changes, emulator.store)
    return 201, {"message": "success"}


async def subscription_status_set_v2(request: web.Request, emulator: Emulator) -> EndpointResult:
    changes = subscriptions.parse_v2(await read_json(request), emulator.workspace.subscription_groups)
    subscriptions.apply(changes, emulator.store)
    return 201, {"message": "success"}


def _endpoint(name: str, family: str, handler: EndpointHandler) -> Endpoint:
    """An endpoint whose permission is named like the endpoint itself."""
    return Endpoint(name, family, name, handler)


ENDPOINTS: tuple[tuple[str, str, Endpoint], ...] = (
    ("POST", "/users/track", _endpoint("users.track", "users.track", users_track)),
    # /users/export/ids has a family of its own; /users/export/segment is in the shared hourly pool.
    ("POST", "/users/export/ids", _endpoint("users.export.ids", "users.export", users_export_ids)),
    ("POST", "/users/export/segment", _endpoint("users.export.segment", "lists", users_export_segment)),
    ("GET", "/segments/list", _endpoint("segments.list", "lists", segments_list)),
    ("GET", "/campaigns/list", _endpoint("campaigns.list", "lists", campaigns_list)),
    ("GET", "/campaigns/details", _endpoint("campaigns.details", "lists", campaigns_details)),
    (
        "POST",
        "/campaigns/trigger/send",
        _endpoint("campaigns.trigger.send", "campaigns.trigger", campaigns_trigger_send),
    ),
    (
        "POST",
        "/campaigns/trigger/schedule/create",
        _endpoint("campaigns.trigger.schedule.create", "campaigns.trigger", campaigns_trigger_schedule),
    ),
    (
        "POST",
        "/campaigns/trigger/schedule/update",
        _endpoint("campaigns.trigger.schedule.update", "campaigns.trigger", campaigns_schedule_update),
    ),
    (
        "POST",
        "/campaigns/trigger/schedule/delete",
        _endpoint("campaigns.trigger.schedule.delete", "campaigns.trigger", campaigns_schedule_delete),
    ),
    (
        "POST",
        "/canvas/trigger/send",
        _endpoint("canvas.trigger.send", "campaigns.trigger", canvas_trigger_send),
    ),
    ("POST", "/sends/id/create", _endpoint("sends.id.create", "lists", sends_id_create)),
    ("POST", "/partners/{partner}/cohorts", Endpoint("cohorts", "cohorts", None, partner_cohorts)),
    (
        "POST",
        "/partners/{partner}/cohorts/users",
        Endpoint("cohorts.users", "cohorts", None, partner_cohort_users),
    ),
    ("POST", "/users/delete", _endpoint("users.delete", "users.other", users_delete)),
    ("POST", "/users/alias/new", _endpoint("users.alias.new", "users.other", users_alias_new)),
    ("POST", "/users/alias/update", _endpoint("users.alias.update", "users.other", users_alias_update)),
    ("POST", "/users/identify", _endpoint("users.identify", "users.other", users_identify)),
    ("POST", "/users/merge", _endpoint("users.merge", "users.other", users_merge)),
    (
        "POST",
        "/subscription/status/set",
        _endpoint("subscription.status.set", "subscription", subscription_status_set),
    ),
    (
        "POST",
        "/v2/subscription/status/set",
        Endpoint(
            "subscription.status.set.v2",
            "subscription",
            "subscription.status.set",
            subscription_status_set_v2,
        ),
    ),
)


# -- admin API ----------------------------------------------------------------------------------


def _emulator(request: web.Request) -> Emulator:
    return request.app[EMULATOR_KEY]


def _invalid(error: pydantic.ValidationError) -> web.Response:
    details = error.errors(include_url=False, include_context=False, include_input=False)
    return json_response(400, {"message": "invalid admin request", "errors": details})


async def _admin_json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise web.HTTPBadRequest(
            body=orjson.dumps({"message": f"Malformed JSON: {error}"}), content_type="application/json"
        ) from None


async def admin_reset(request: web.Request) -> web.Response:
    body = await _admin_json(request)
    include_config = isinstance(body, dict) and body.get("config") is True
    _emulator(request).reset(include_config=include_config)
    return json_response(200, {"message": "reset", "config_reset": include_config})


async def admin_get_config(request: web.Request) -> web.Response:
    return json_response(200, _emulator(request).config.model_dump(mode="json"))


async def admin_put_config(request: web.Request) -> web.Response:
    emulator = _emulator(request)
    body = await _admin_json(request)
    if not isinstance(body, dict):
        return json_response(400, {"message": "the config must be a JSON object"})
    try:
        config = emulator.config.merged_with(body)
    except pydantic.ValidationError as error:
        return _invalid(error)
    emulator.configure(config)
    return json_response(200, config.model_dump(mode="json"))


async def admin_add_key(request: web.Request) -> web.Response:
    try:
        definition = ApiKeyDefinition.model_validate(await _admin_json(request))
    except pydantic.ValidationError as error:
        return _invalid(error)
    _emulator(request).workspace.add_key(definition)
    return json_response(201, {"key": definition.key, "permissions": sorted(definition.permissions)})


async def admin_users(request: web.Request) -> web.Response:
    store = _emulator(request).store
    if request.query.get("count") in ("1", "true"):
        return json_response(200, {"count": len(store)})
    page_raw = request.query.get("page", "0")
    per_page_raw = request.query.get("per_page", "100")
    if (
        not page_raw.isdigit()
        or not per_page_raw.isdigit()
        or not 1 <= int(per_page_raw) <= ADMIN_PAGE_SIZE_MAX
    ):
        return json_response(
            400, {"message": f"'page' must be >= 0 and 'per_page' between 1 and {ADMIN_PAGE_SIZE_MAX}"}
        )
    page, per_page = int(page_raw), int(per_page_raw)
    profiles = store.profiles()[page * per_page : (page + 1) * per_page]
    return json_response(
        200,
        {
            "users": [profile.to_admin_view() for profile in profiles],
            "page": page,
            "per_page": per_page,
            "total": len(store),
        },
    )


async def admin_user_by_alias(request: web.Request) -> web.Response:
    label = request.query.get("label", "")
    name = request.query.get("name", "")
    if not label or not name:
        return json_response(400, {"message": "'label' and 'name' are required"})
    profile = _emulator(request).store.by_alias.get((label, name))
    if profile is None:
        return json_response(404, {"message": "no user with that alias"})
    return json_response(200, profile.to_admin_view())


async def admin_user_by_email(request: web.Request) -> web.Response:
    email = request.query.get("email", "")
    if not is_email(email):
        return json_response(400, {"message": "'email' must be an email address"})
    profile = _emulator(request).store.find(Identifier("email", email.lower()))
    if profile is None:
        return json_response(404, {"message": "no user with that email"})
    return json_response(200, profile.to_admin_view())


async def admin_user(request: web.Request) -> web.Response:
    profile = _emulator(request).store.by_external_id.get(request.match_info["external_id"])
    if profile is None:
        return json_response(404, {"message": "no user with that external_id"})
    return json_response(200, profile.to_admin_view())


async def admin_stats(request: web.Request) -> web.Response:
    return json_response(200, _emulator(request).stats_view())


async def admin_unanswered(request: web.Request) -> web.Response:
    """The requests applied whose answer was lost, oldest first, with the bodies that were applied."""
    unanswered = _emulator(request).stats.unanswered
    return json_response(200, {"requests": [entry.to_view() for entry in unanswered]})


async def admin_add_segment(request: web.Request) -> web.Response:
    try:
        definition = SegmentDefinition.model_validate(await _admin_json(request))
    except pydantic.ValidationError as error:
        return _invalid(error)
    stored = _emulator(request).workspace.add_segment(definition)
    return json_response(201, stored.model_dump(mode="json"))


async def admin_segments(request: web.Request) -> web.Response:
    segments = _emulator(request).workspace.segments.values()
    return json_response(200, {"segments": [segment.model_dump(mode="json") for segment in segments]})


async def admin_add_campaign(request: web.Request) -> web.Response:
    try:
        definition = CampaignDefinition.model_validate(await _admin_json(request))
    except pydantic.ValidationError as error:
        return _invalid(error)
    return json_response(201, _emulator(request).workspace.add_campaign(definition))


async def admin_campaigns(request: web.Request) -> web.Response:
    return json_response(200, {"campaigns": list(_emulator(request).workspace.campaigns.values())})


async def admin_add_canvas(request: web.Request) -> web.Response:
    try:
        definition = CanvasDefinition.model_validate(await _admin_json(request))
    except pydantic.ValidationError as error:
        return _invalid(error)
    stored = _emulator(request).workspace.add_canvas(definition)
    return json_response(201, stored.model_dump(mode="json"))


async def admin_canvases(request: web.Request) -> web.Response:
    canvases = _emulator(request).workspace.canvases.values()
    return json_response(200, {"canvases": [canvas.model_dump(mode="json") for canvas in canvases]})


async def admin_add_subscription_group(request: web.Request) -> web.Response:
    try:
        definition = SubscriptionGroupDefinition.model_validate(await _admin_json(request))
    except pydantic.ValidationError as error:
        return _invalid(error)
    _emulator(request).workspace.add_subscription_group(definition)
    return json_response(201, definition.model_dump(mode="json"))


async def admin_subscription_groups(request: web.Request) -> web.Response:
    groups = _emulator(request).workspace.subscription_groups.values()
    return json_response(200, {"subscription_groups": [group.model_dump(mode="json") for group in groups]})


async def admin_dispatches(request: web.Request) -> web.Response:
    """Every message dispatch: campaign or Canvas, recipients, properties, when each is delivered.

    ``?campaign_id=`` or ``?canvas_id=`` narrows the list to one campaign or Canvas.
    """
    dispatches = _emulator(request).dispatches
    for key in ("campaign_id", "canvas_id"):
        wanted = request.query.get(key)
        if wanted is not None:
            dispatches = [dispatch for dispatch in dispatches if dispatch.get(key) == wanted]
    return json_response(200, {"dispatches": dispatches})


async def admin_exports(request: web.Request) -> web.Response:
    return json_response(200, {"exports": [job.view() for job in _emulator(request).exports.jobs.values()]})


async def admin_cohorts(request: web.Request) -> web.Response:
    emulator = _emulator(request)
    return json_response(200, {"cohorts": emulator.cohorts.admin_view(emulator.store)})


async def admin_lock_cohort(request: web.Request) -> web.Response:
    try:
        lock = CohortLock.model_validate(await _admin_json(request))
    except pydantic.ValidationError as error:
        return _invalid(error)
    cohort = _emulator(request).cohorts.lock(lock)
    return json_response(
        200, {"partner": cohort.partner, "cohort_id": cohort.cohort_id, "locked": cohort.locked}
    )


async def admin_add_partner(request: web.Request) -> web.Response:
    try:
        definition = PartnerDefinition.model_validate(await _admin_json(request))
    except pydantic.ValidationError as error:
        return _invalid(error)
    _emulator(request).cohorts.add_partner(definition)
    return json_response(201, {"partner": definition.partner})


async def export_archive(request: web.Request) -> web.Response:
    emulator = _emulator(request)
    export_id = request.match_info["export_id"]
    archive = emulator.exports.archives.get(export_id)
    if archive is None:
        # Like a pre-signed URL whose object is not written yet.
        status = 404 if export_id in emulator.exports.jobs else 403
        return web.Response(status=status, text="export not available")
    return web.Response(body=archive, content_type="application/zip")


def build_app(emulator: Emulator) -> web.Application:
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app[EMULATOR_KEY] = emulator
    for method, path, endpoint in ENDPOINTS:
        app.router.add_route(method, path, braze_route(emulator, endpoint))
    admin = "/_emulator"
    app.router.add_post(f"{admin}/reset", admin_reset)
    app.router.add_get(f"{admin}/config", admin_get_config)
    app.router.add_put(f"{admin}/config", admin_put_config)
    app.router.add_post(f"{admin}/keys", admin_add_key)
    app.router.add_get(f"{admin}/users", admin_users)
    app.router.add_get(f"{admin}/users/by-alias", admin_user_by_alias)
    app.router.add_get(f"{admin}/users/by-email", admin_user_by_email)
    app.router.add_get(f"{admin}/users/{{external_id}}", admin_user)
    app.router.add_get(f"{admin}/stats", admin_stats)
    app.router.add_get(f"{admin}/unanswered", admin_unanswered)
    app.router.add_post(f"{admin}/segments", admin_add_segment)
    app.router.add_get(f"{admin}/segments", admin_segments)
    app.router.add_post(f"{admin}/campaigns", admin_add_campaign)
    app.router.add_get(f"{admin}/campaigns", admin_campaigns)
    app.router.add_get(f"{admin}/dispatches", admin_dispatches)
    app.router.add_post(f"{admin}/canvases", admin_add_canvas)
    app.router.add_get(f"{admin}/canvases", admin_canvases)
    app.router.add_post(f"{admin}/subscription-groups", admin_add_subscription_group)
    app.router.add_get(f"{admin}/subscription-groups", admin_subscription_groups)
    app.router.add_get(f"{admin}/exports", admin_exports)
    app.router.add_get(f"{admin}/cohorts", admin_cohorts)
    app.router.add_put(f"{admin}/cohorts/lock", admin_lock_cohort)
    app.router.add_post(f"{admin}/partners", admin_add_partner)
    app.router.add_get("/_exports/{export_id}.zip", export_archive)

    async def close_exports(_: web.Application) -> None:
        await emulator.exports.close()

    app.on_shutdown.append(close_exports)
    return app
