"""The Braze REST client: one pool of keep-alive connections, rate limited, retrying, thread-safe."""

from __future__ import annotations

import http.client
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import certifi
import orjson
import urllib3
import urllib3.exceptions
from aws_lambda_powertools import Logger
from pydantic import BaseModel, ValidationError
from urllib3.util import Retry, parse_url

from cdpbridge.braze.backoff import backoff_delay
from cdpbridge.braze.errors import (
    BrazePermanentError,
    BrazeRequestError,
    BrazeResponseError,
    BrazeUnavailableError,
    ExportInProgress,
)
from cdpbridge.braze.keys import ApiKeyProvider, as_key_provider
from cdpbridge.braze.models import (
    BrazeAck,
    CampaignDetails,
    CampaignSummary,
    CohortChange,
    CohortUpdateResult,
    DeleteUsersResult,
    DispatchResult,
    ExportIdsResult,
    IdentifyResult,
    NewAlias,
    NewAliasesResult,
    RequestsSent,
    ScheduleResult,
    SegmentExportStarted,
    SegmentSummary,
    SendIdResult,
    TriggerSchedule,
    UserAlias,
)
from cdpbridge.braze.ratelimit import RateLimiter, RateLimitHeaders
from cdpbridge.braze.settings import (
    CAMPAIGNS_BROADCAST,
    CAMPAIGNS_TRIGGER,
    COHORTS,
    LISTS,
    SUBSCRIPTION,
    USERS_EXPORT,
    USERS_OTHER,
    USERS_TRACK,
    BrazeSettings,
)
from cdpbridge.braze.stats import ClientStats, FamilyStats
from cdpbridge.braze.track import TRACK_KINDS, AdaptiveTrackCap, ObjectError, TrackOutcome, TrackRequest

logger = Logger(child=True)

USER_AGENT = "braze-cdp-bridge"

# Braze's per-call limits that the client enforces before sending.
EXPORT_IDS_MAX = 50
TRIGGER_RECIPIENTS_MAX = 50
COHORT_IDS_MAX = 1000
DELETE_USERS_MAX = 50
NEW_ALIASES_MAX = 50
IDENTIFY_MAX = 50
MERGES_MAX = 50
SUBSCRIPTION_IDS_MAX = 50
TRIGGER_PROPERTIES_MAX_BYTES = 50 * 1024
SEND_ID_MAX_LENGTH = 64
# Which profile an e-mail or phone names when several share it: Braze's documented example.
DEFAULT_PRIORITIZATION: tuple[str, ...] = ("identified", "most_recently_updated")
_EMAIL_AND_PHONE = "Either an email address or a phone number should be provided, but not both."
LIST_PAGE_SIZE = 100

# 423 is the cohort endpoints' "locked": the cohort is being processed, later works.
_RETRYABLE_4XX = frozenset({408, 423, 429})
_NOT_RETRYABLE_5XX = frozenset({501, 505})
# No answer in time: connecting or waiting for (part of) the answer.
_TIMEOUTS: tuple[type[BaseException], ...] = (urllib3.exceptions.TimeoutError, TimeoutError)
# Everything that means "the connection broke": refused, reset, closed before or during the answer,
# a TLS failure, a body that does not decode.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.SSLError,
    urllib3.exceptions.DecodeError,
    urllib3.exceptions.MaxRetryError,
    http.client.HTTPException,  # RemoteDisconnected, IncompleteRead, BadStatusLine...
    ConnectionError,
)
_TRANSPORT_ERRORS = _CONNECTION_ERRORS + _TIMEOUTS
# Retries and redirects are ours: urllib3's would bypass the rate limiter and the stats (and Braze's
# REST API does not redirect). Retry objects are immutable, so one serves every call.
_NO_RETRIES = Retry(total=False, redirect=False)
_DEFAULT_HEADERS = {
    "User-Agent": USER_AGENT,
    "Accept": "application/json",
    "Accept-Encoding": "gzip, deflate",
}
_JSON_ONLY = {**_DEFAULT_HEADERS, "Content-Type": "application/json"}
_PARTNER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
# Braze documents the words of the 400 over the per-request object cap.
_MAX_INPUT_LENGTH = re.compile(r"max(imum)? input length", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Reply:
    """A final answer: a 2xx, or a refusal that retrying cannot change."""

    status: int
    payload: Any  # decoded JSON, or None when the body was not JSON
    message: str
    errors: list[Any]
    attempts: int
    # How long Braze took to answer the final attempt, and how long the attempts were held by the
    # rate limiter before being sent: the window of requests in flight tells the two apart.
    answer_s: float | None = None
    held_s: float = 0.0

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class BrazeClient:
    """Calls Braze's REST API. One instance is meant to be shared by every thread of a process.

    ``pool`` stands in for the connections ``new_pool`` would open to ``settings.base_url`` (a test or
    benchmark transport); the client closes only a pool it made itself.
    """

    def __init__(
        self,
        settings: BrazeSettings,
        api_key: ApiKeyProvider | str,
        pool: urllib3.HTTPConnectionPool | None = None,
        *,
        rate_limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.settings = settings
        self._keys = as_key_provider(api_key)
        # Calls name a path on the pool's host; a REST endpoint behind a path prefix keeps its prefix.
        self._path_prefix = parse_url(settings.base_url).path or ""
        self._timeout = urllib3.Timeout(connect=settings.connect_timeout_s, read=settings.timeout_s)
        self._retry = settings.retry
        self._limiter = rate_limiter or RateLimiter(settings.rate_limits)
        self._clock = clock
        self._sleep = sleep
        self._uniform = uniform
        self._stats = ClientStats()
        self._owns_pool = pool is None
        self._pool = pool if pool is not None else new_pool(settings)
        # (key, headers): swapped as one tuple so a thread never pairs a key with another key's header.
        self._auth: tuple[str, dict[str, str]] = ("", {})
        self._track_cap = AdaptiveTrackCap(settings.track_cap)

    # -- lifecycle and stats ------------------------------------------------------------------------

    def close(self) -> None:
        if self._owns_pool:
            self._pool.close()

    def __enter__(self) -> BrazeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def snapshot(self) -> dict[str, FamilyStats]:
        """Counters per endpoint family (requests, retries, 429s, 5xx, connection errors, ...)."""
        return self._stats.snapshot()

    def total_stats(self) -> FamilyStats:
        return self._stats.total()

    @property
    def rate_limiter(self) -> RateLimiter:
        return self._limiter

    # -- users.track --------------------------------------------------------------------------------

    @property
    def track_cap(self) -> AdaptiveTrackCap:
        """The cap ``track`` uses when the caller passes none (lowered like any other)."""
        return self._track_cap

    def track(self, request: TrackRequest, cap: AdaptiveTrackCap | None = None) -> TrackOutcome:
        """Sends one users.track request. HTTP outcomes never raise; they are in the TrackOutcome.

        A request larger than ``cap`` (a run's cap, lowered earlier) goes out in pieces that fit. A
        400 "Max Input Length Exceeded" lowers the cap to half the refused request for the rest of
        the run and sends the request again in two halves: it never fails the objects.
        """
        if not request.object_count():
            raise BrazeRequestError("a users.track request needs at least one object")
        cap = cap or self._track_cap
        return self._send_pieces(self._fitting(request, cap), cap)

    @staticmethod
    def _fitting(request: TrackRequest, cap: AdaptiveTrackCap) -> list[TrackRequest]:
        if request.cap_units(cap.mode) <= cap.limit:
            return [request]
        return request.split(cap.limit, cap.mode)

    def _send_pieces(self, pieces: list[TrackRequest], cap: AdaptiveTrackCap) -> TrackOutcome:
        outcomes: list[tuple[TrackRequest, TrackOutcome]] = []
        for number, piece in enumerate(pieces):
            outcome = self._track_piece(piece, cap)
            outcomes.append((piece, outcome))
            if not outcome.processed and (
                outcome.status == "retries_exhausted" or outcome.http_status in (401, 403)
            ):
                # Braze is unavailable or refuses the key: the later pieces would fare alike.
                return _combined(outcomes, pieces[number + 1 :])
        return _combined(outcomes, [])

    def _track_piece(self, request: TrackRequest, cap: AdaptiveTrackCap) -> TrackOutcome:
        try:
            reply = self._execute(USERS_TRACK, "POST", "/users/track", body=request.to_body())
        except BrazeUnavailableError as error:
            return TrackOutcome(
                status="retries_exhausted",
                http_status=error.last_status,
                message=error.message,
                errors=[],
                attempts=error.attempts,
                queued=False,
            )
        if reply.status == 400 and request.object_count() > 1 and _MAX_INPUT_LENGTH.search(reply.message):
            refused_units = request.cap_units(cap.mode)
            lowered_to = cap.lower(refused_units)
            self._stats.add(USERS_TRACK, "cap_lowered")
            logger.warning(
                "Braze refused the request size: cap lowered for the rest of the run",
                extra={"refused_objects": refused_units, "cap": lowered_to, "mode": cap.mode},
            )
            pieces = [piece for half in request.halves() for piece in self._fitting(half, cap)]
            outcome = self._send_pieces(pieces, cap)
            outcome.attempts += reply.attempts
            outcome.requests += 1
            return outcome
        object_errors = _map_track_errors(request, reply.errors)
        if not reply.ok:
            return TrackOutcome(
                status="permanent_failure",
                http_status=reply.status,
                message=reply.message,
                errors=object_errors,
                attempts=reply.attempts,
                queued=False,
                answer_s=reply.answer_s,
                held_s=reply.held_s,
            )
        queued = reply.status == 202 or reply.message.lower() == "queued"
        return TrackOutcome(
            status="partial" if object_errors else "accepted",
            http_status=reply.status,
            message=reply.message,
            errors=object_errors,
            attempts=reply.attempts,
            queued=queued,
            answer_s=reply.answer_s,
            held_s=reply.held_s,
        )

    # -- exports ------------------------------------------------------------------------------------

    def export_ids(
        self,
        *,
        external_ids: Sequence[str] = (),
        user_aliases: Sequence[UserAlias | Mapping[str, Any]] = (),
        braze_ids: Sequence[str] = (),
        emails: Sequence[str] = (),
        phones: Sequence[str] = (),
        fields_to_export: Sequence[str] | None = None,
    ) -> ExportIdsResult:
        """Profiles of up to 50 identifiers in all.

        Braze takes up to 50 external_ids and user_aliases in one request but only one braze_id,
        email or phone, so each of those costs a request of its own (each counts against the
        users.export rate limit).
        """
        total = len(external_ids) + len(user_aliases) + len(braze_ids) + len(emails) + len(phones)
        if total == 0:
            raise BrazeRequestError("export_ids needs at least one identifier")
        if total > EXPORT_IDS_MAX:
            raise BrazeRequestError(
                f"export_ids takes at most {EXPORT_IDS_MAX} identifiers a call, got {total};"
                " use export_ids_chunked"
            )
        if not fields_to_export:
            # Required for workspaces created after August 2024 (and it keeps the call cheap).
            raise BrazeRequestError("export_ids needs fields_to_export")
        common: dict[str, Any] = {}
        if fields_to_export is not None:
            common["fields_to_export"] = list(fields_to_export)
        bodies: list[dict[str, Any]] = []
        if external_ids or user_aliases:
            body = dict(common)
            if external_ids:
                body["external_ids"] = [str(value) for value in external_ids]
            if user_aliases:
                body["user_aliases"] = [_alias_dict(alias) for alias in user_aliases]
            bodies.append(body)
        for member, values in (("braze_id", braze_ids), ("email_address", emails), ("phone", phones)):
            bodies.extend({**common, member: str(value)} for value in values)
        users: list[dict[str, Any]] = []
        invalid: list[str] = []
        message = ""
        for body in bodies:
            reply = self._call(USERS_EXPORT, "POST", "/users/export/ids", body)
            page = _parse(ExportIdsResult, reply, "/users/export/ids")
            users.extend(page.users)
            invalid.extend(page.invalid_user_ids)
            message = page.message
        return ExportIdsResult(message=message, users=users, invalid_user_ids=invalid, requests=len(bodies))

    def export_ids_chunked(
        self,
        *,
        external_ids: Sequence[str] = (),
        user_aliases: Sequence[UserAlias | Mapping[str, Any]] = (),
        braze_ids: Sequence[str] = (),
        emails: Sequence[str] = (),
        phones: Sequence[str] = (),
        fields_to_export: Sequence[str] | None = None,
    ) -> Iterator[ExportIdsResult]:
        """export_ids over any number of identifiers, one result per call of at most 50."""
        tagged: list[tuple[str, Any]] = [
            *(("external_ids", value) for value in external_ids),
            *(("user_aliases", value) for value in user_aliases),
            *(("braze_ids", value) for value in braze_ids),
            *(("emails", value) for value in emails),
            *(("phones", value) for value in phones),
        ]
        for start in range(0, len(tagged), EXPORT_IDS_MAX):
            groups: dict[str, list[Any]] = {}
            for name, value in tagged[start : start + EXPORT_IDS_MAX]:
                groups.setdefault(name, []).append(value)
            yield self.export_ids(fields_to_export=fields_to_export, **groups)

    def export_segment(
        self,
        segment_id: str,
        fields_to_export: Sequence[str],
        *,
        custom_attributes_to_export: Sequence[str] | None = None,
        callback_endpoint: str | None = None,
        output_format: str = "gzip",
    ) -> SegmentExportStarted:
        """Starts a segment export; raises ExportInProgress while another export of it is running."""
        if not segment_id:
            raise BrazeRequestError("export_segment needs a segment_id")
        if not fields_to_export:
            raise BrazeRequestError("export_segment needs at least one field in fields_to_export")
        if output_format not in ("gzip", "zip"):
            raise BrazeRequestError(f"output_format must be 'gzip' or 'zip', not {output_format!r}")
        body: dict[str, Any] = {
            "segment_id": segment_id,
            "fields_to_export": list(fields_to_export),
            "output_format": output_format,
        }
        if custom_attributes_to_export is not None:
            body["custom_attributes_to_export"] = list(custom_attributes_to_export)
        if callback_endpoint is not None:
            body["callback_endpoint"] = callback_endpoint
        path = "/users/export/segment"
        # In the shared hourly pool, not in /users/export/ids' family.
        reply = self._execute(
            LISTS,
            "POST",
            path,
            body=orjson.dumps(body),
            final_429=_export_already_running,
        )
        if reply.status == 429:
            raise ExportInProgress(segment_id, reply.message)
        return _parse(SegmentExportStarted, self._raise_unless_ok(reply, path), path)

    # -- lists and details --------------------------------------------------------------------------

    def list_segments(self) -> Iterator[SegmentSummary]:
        """Every segment, page after page."""
        for item in self._pages("/segments/list", "segments", {}):
            yield _validate_item(SegmentSummary, item, "/segments/list")

    def list_campaigns(self, *, include_archived: bool = False) -> Iterator[CampaignSummary]:
        """Every campaign, page after page."""
        params = {"include_archived": "true" if include_archived else "false"}
        for item in self._pages("/campaigns/list", "campaigns", params):
            yield _validate_item(CampaignSummary, item, "/campaigns/list")

    def campaign_details(self, campaign_id: str) -> CampaignDetails:
        if not campaign_id:
            raise BrazeRequestError("campaign_details needs a campaign_id")
        path = "/campaigns/details"
        reply = self._call(LISTS, "GET", path, None, params={"campaign_id": campaign_id})
        return _parse(CampaignDetails, reply, path)

    def _pages(self, path: str, member: str, params: Mapping[str, str]) -> Iterator[Any]:
        page = 0
        previous_first: Any = None
        while True:
            reply = self._call(LISTS, "GET", path, None, params={**params, "page": str(page)})
            payload = reply.payload
            items = payload.get(member) if isinstance(payload, dict) else None
            if not isinstance(items, list):
                raise BrazeResponseError(path, reply.status, f"expected a list in {member!r}")
            if not items:
                return
            # A server that ignores `page` would otherwise be read forever.
            if page > 0 and items[0] == previous_first:
                raise BrazeResponseError(path, reply.status, f"page {page} repeats the previous page")
            previous_first = items[0]
            yield from items
            if len(items) < LIST_PAGE_SIZE:
                return
            page += 1

    # -- sending ------------------------------------------------------------------------------------

    def trigger_send(
        self,
        campaign_id: str,
        *,
        recipients: Sequence[Mapping[str, Any]] | None = None,
        broadcast: bool = False,
        trigger_properties: Mapping[str, Any] | None = None,
        send_id: str | None = None,
        audience: Mapping[str, Any] | None = None,
        attachments: Sequence[Mapping[str, str]] | None = None,
    ) -> DispatchResult:
        """/campaigns/trigger/send; at most 50 recipients, or a broadcast without recipients.

        A recipient named by ``email`` needs a ``prioritization``; ``attachments`` are
        ``{file_name, url}`` objects.
        """
        body = _trigger_body(
            campaign_id,
            recipients=recipients,
            broadcast=broadcast,
            trigger_properties=trigger_properties,
            send_id=send_id,
            audience=audience,
        )
        if attachments:
            body["attachments"] = [dict(attachment) for attachment in attachments]
        path = "/campaigns/trigger/send"
        family = CAMPAIGNS_BROADCAST if broadcast else CAMPAIGNS_TRIGGER
        return _parse(DispatchResult, self._call(family, "POST", path, body), path)

    def canvas_trigger_send(
        self,
        canvas_id: str,
        *,
        recipients: Sequence[Mapping[str, Any]] | None = None,
        broadcast: bool = False,
        context: Mapping[str, Any] | None = None,
        audience: Mapping[str, Any] | None = None,
    ) -> DispatchResult:
        """/canvas/trigger/send; recipients carry ``context`` instead of trigger properties.

        ``notice`` on the result says when the Canvas is paused or archived (still a success).
        """
        body = _trigger_body(
            canvas_id,
            recipients=recipients,
            broadcast=broadcast,
            trigger_properties=context,
            send_id=None,
            audience=audience,
            id_key="canvas_id",
            properties_key="context",
        )
        path = "/canvas/trigger/send"
        family = CAMPAIGNS_BROADCAST if broadcast else CAMPAIGNS_TRIGGER
        return _parse(DispatchResult, self._call(family, "POST", path, body), path)

    def schedule_trigger(
        self,
        campaign_id: str,
        *,
        schedule: TriggerSchedule | Mapping[str, Any],
        recipients: Sequence[Mapping[str, Any]] | None = None,
        broadcast: bool = False,
        trigger_properties: Mapping[str, Any] | None = None,
        send_id: str | None = None,
        audience: Mapping[str, Any] | None = None,
    ) -> ScheduleResult:
        """/campaigns/trigger/schedule/create; ``schedule`` is {time, in_local_time, at_optimal_time}."""
        body = _trigger_body(
            campaign_id,
            recipients=recipients,
            broadcast=broadcast,
            trigger_properties=trigger_properties,
            send_id=send_id,
            audience=audience,
        )
        body["schedule"] = _schedule_body(schedule)
        path = "/campaigns/trigger/schedule/create"
        family = CAMPAIGNS_BROADCAST if broadcast else CAMPAIGNS_TRIGGER
        return _parse(ScheduleResult, self._call(family, "POST", path, body), path)

    def update_schedule(
        self, campaign_id: str, schedule_id: str, schedule: TriggerSchedule | Mapping[str, Any]
    ) -> BrazeAck:
        """/campaigns/trigger/schedule/update: a new time for a pending scheduled send."""
        if not campaign_id or not schedule_id:
            raise BrazeRequestError("update_schedule needs a campaign_id and a schedule_id")
        body = {"campaign_id": campaign_id, "schedule_id": schedule_id, "schedule": _schedule_body(schedule)}
        path = "/campaigns/trigger/schedule/update"
        return _parse(BrazeAck, self._call(CAMPAIGNS_TRIGGER, "POST", path, body), path)

    def delete_schedule(self, campaign_id: str, schedule_id: str) -> BrazeAck:
        """/campaigns/trigger/schedule/delete: cancels a pending scheduled send."""
        if not campaign_id or not schedule_id:
            raise BrazeRequestError("delete_schedule needs a campaign_id and a schedule_id")
        body = {"campaign_id": campaign_id, "schedule_id": schedule_id}
        path = "/campaigns/trigger/schedule/delete"
        return _parse(BrazeAck, self._call(CAMPAIGNS_TRIGGER, "POST", path, body), path)

    def create_send_id(self, campaign_id: str, send_id: str | None = None) -> SendIdResult:
        """/sends/id/create: a send identifier to track a campaign's sends (100 a day per campaign)."""
        if not campaign_id:
            raise BrazeRequestError("create_send_id needs a campaign_id")
        body: dict[str, str] = {"campaign_id": campaign_id}
        if send_id is not None:
            _check_send_id(send_id)
            body["send_id"] = send_id
        path = "/sends/id/create"
        return _parse(SendIdResult, self._call(LISTS, "POST", path, body), path)

    # -- subscriptions ------------------------------------------------------------------------------

    def subscription_status_set(
        self,
        subscription_group_id: str,
        subscription_state: str,
        *,
        external_ids: Sequence[str] = (),
        emails: Sequence[str] = (),
        phones: Sequence[str] = (),
    ) -> RequestsSent:
        """/subscription/status/set for one group, 50 users a request.

        E-mail addresses and phone numbers never go in the same request (Braze refuses it):
        external ids go with whichever is given.
        """
        _check_subscription(subscription_group_id, subscription_state, emails, phones)
        path = "/subscription/status/set"
        requests_sent = 0
        for batch in _subscription_batches(external_ids, emails, phones):
            body: dict[str, Any] = {
                "subscription_group_id": subscription_group_id,
                "subscription_state": subscription_state,
                **{
                    member: values
                    for member, values in zip(("external_id", "email", "phone"), batch, strict=True)
                    if values
                },
            }
            self._call(SUBSCRIPTION, "POST", path, body)
            requests_sent += 1
        return RequestsSent(requests=requests_sent)

    def subscription_status_set_v2(self, groups: Sequence[Mapping[str, Any]]) -> RequestsSent:
        """/v2/subscription/status/set: several groups in one request, each
        ``{subscription_group_id, subscription_state, external_ids?, emails? | phones?}``."""
        if not groups:
            raise BrazeRequestError("subscription_status_set_v2 needs at least one group")
        entries = []
        for group in groups:
            _check_subscription(
                str(group.get("subscription_group_id") or ""),
                str(group.get("subscription_state") or ""),
                group.get("emails") or (),
                group.get("phones") or (),
            )
            for name in ("external_ids", "emails", "phones"):
                if len(group.get(name) or ()) > SUBSCRIPTION_IDS_MAX:
                    raise BrazeRequestError(f"at most {SUBSCRIPTION_IDS_MAX} {name} per group")
            entries.append(dict(group))
        path = "/v2/subscription/status/set"
        self._call(SUBSCRIPTION, "POST", path, {"subscription_groups": entries})
        return RequestsSent(requests=1)

    # -- cohorts ------------------------------------------------------------------------------------

    def cohort_upsert(
        self,
        partner: str,
        partner_api_key: str,
        client_secret: str,
        cohort_id: str,
        name: str,
        *,
        created_at: datetime | None = None,
    ) -> BrazeAck:
        """Creates the cohort or renames it."""
        path = f"/partners/{_partner_segment(partner)}/cohorts"
        if not cohort_id or not name:
            raise BrazeRequestError("cohort_upsert needs a cohort_id and a name")
        body = {
            "partner_api_key": partner_api_key,
            "client_secret": client_secret,
            "cohort_id": cohort_id,
            "name": name,
            "created_at": (created_at or datetime.now(UTC)).isoformat(),
        }
        return _parse(BrazeAck, self._call(COHORTS, "POST", path, body, authorize=False), path)

    def cohort_update_users(
        self,
        partner: str,
        partner_api_key: str,
        client_secret: str,
        cohort_id: str,
        changes: Iterable[CohortChange | Mapping[str, Any]],
    ) -> CohortUpdateResult:
        """Sends membership deltas in order, at most 1,000 ids a request (the latest change wins)."""
        path = f"/partners/{_partner_segment(partner)}/cohorts/users"
        if not cohort_id:
            raise BrazeRequestError("cohort_update_users needs a cohort_id")
        requests_sent = 0
        ids_sent = 0
        for batch, id_count in _cohort_batches(changes):
            body = {
                "partner_api_key": partner_api_key,
                "client_secret": client_secret,
                "cohort_id": cohort_id,
                "cohort_changes": batch,
            }
            self._raise_unless_ok(self._call(COHORTS, "POST", path, body, authorize=False), path)
            requests_sent += 1
            ids_sent += id_count
        return CohortUpdateResult(requests=requests_sent, ids_sent=ids_sent)

    # -- user management ----------------------------------------------------------------------------

    def delete_users(
        self,
        *,
        external_ids: Sequence[str] = (),
        user_aliases: Sequence[UserAlias | Mapping[str, Any]] = (),
        braze_ids: Sequence[str] = (),
        emails: Sequence[str] = (),
        phones: Sequence[str] = (),
        prioritization: Sequence[str] = DEFAULT_PRIORITIZATION,
    ) -> DeleteUsersResult:
        """Deletes profiles, 50 identifiers a request and one kind of identifier per request (Braze
        refuses mixed kinds). E-mail addresses and phone numbers go with ``prioritization``, which
        picks the profile when several share one. ``deleted`` counts the deletions Braze queued."""
        kinds: list[tuple[str, list[Any]]] = [
            ("external_ids", [str(value) for value in external_ids]),
            ("user_aliases", [_alias_dict(value) for value in user_aliases]),
            ("braze_ids", [str(value) for value in braze_ids]),
            (
                "email_addresses",
                [{"email": value, "prioritization": list(prioritization)} for value in emails],
            ),
            ("phone_numbers", [{"phone": value, "prioritization": list(prioritization)} for value in phones]),
        ]
        if not any(values for _, values in kinds):
            raise BrazeRequestError("delete_users needs at least one identifier")
        deleted = 0
        requests_sent = 0
        path = "/users/delete"
        for name, values in kinds:
            for start in range(0, len(values), DELETE_USERS_MAX):
                body = {name: values[start : start + DELETE_USERS_MAX]}
                reply = self._raise_unless_ok(self._call(USERS_OTHER, "POST", path, body), path)
                requests_sent += 1
                count = reply.payload.get("deleted") if isinstance(reply.payload, dict) else None
                deleted += count if isinstance(count, int) else 0
        return DeleteUsersResult(deleted=deleted, requests=requests_sent)

    def identify_users(
        self,
        *,
        aliases: Sequence[tuple[str, UserAlias | Mapping[str, Any]]] = (),
        emails: Sequence[tuple[str, str]] = (),
        phones: Sequence[tuple[str, str]] = (),
        prioritization: Sequence[str] = DEFAULT_PRIORITIZATION,
    ) -> IdentifyResult:
        """/users/identify: anonymous profiles (alias-, e-mail- or phone-only) become known under an
        external_id, given as (external_id, alias | email | phone) pairs; 50 a request."""
        entries: list[tuple[str, dict[str, Any]]] = [
            *(
                ("aliases_to_identify", {"external_id": eid, "user_alias": _alias_dict(alias)})
                for eid, alias in aliases
            ),
            *(
                (
                    "emails_to_identify",
                    {"external_id": eid, "email": email, "prioritization": list(prioritization)},
                )
                for eid, email in emails
            ),
            *(
                (
                    "phone_numbers_to_identify",
                    {"external_id": eid, "phone": phone, "prioritization": list(prioritization)},
                )
                for eid, phone in phones
            ),
        ]
        if not entries:
            raise BrazeRequestError("identify_users needs at least one alias, email or phone")
        if any(not entry["external_id"] for _, entry in entries):
            raise BrazeRequestError("every identification needs an external_id")
        processed = 0
        requests_sent = 0
        path = "/users/identify"
        for start in range(0, len(entries), IDENTIFY_MAX):
            body: dict[str, list[dict[str, Any]]] = {}
            for name, entry in entries[start : start + IDENTIFY_MAX]:
                body.setdefault(name, []).append(entry)
            reply = self._call(USERS_OTHER, "POST", path, body)
            requests_sent += 1
            count = reply.payload.get("aliases_processed") if isinstance(reply.payload, dict) else None
            processed += count if isinstance(count, int) else 0
        return IdentifyResult(aliases_processed=processed, requests=requests_sent)

    def merge_users(self, merges: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> RequestsSent:
        """/users/merge: (identifier_to_merge, identifier_to_keep) pairs, each ``{"external_id": ...}``,
        ``{"user_alias": {...}}`` or an email/phone with prioritization; 50 a request."""
        if not merges:
            raise BrazeRequestError("merge_users needs at least one merge")
        updates = [
            {"identifier_to_merge": dict(to_merge), "identifier_to_keep": dict(to_keep)}
            for to_merge, to_keep in merges
        ]
        path = "/users/merge"
        requests_sent = 0
        for start in range(0, len(updates), MERGES_MAX):
            self._call(USERS_OTHER, "POST", path, {"merge_updates": updates[start : start + MERGES_MAX]})
            requests_sent += 1
        return RequestsSent(requests=requests_sent)

    def update_aliases(self, updates: Sequence[tuple[str, str, str]]) -> RequestsSent:
        """/users/alias/update: (alias_label, old_alias_name, new_alias_name) triples, 50 a request."""
        if not updates:
            raise BrazeRequestError("update_aliases needs at least one alias update")
        entries = []
        for label, old_name, new_name in updates:
            if not (label and old_name and new_name):
                raise BrazeRequestError("an alias update needs a label, an old name and a new name")
            entries.append({"alias_label": label, "old_alias_name": old_name, "new_alias_name": new_name})
        path = "/users/alias/update"
        requests_sent = 0
        for start in range(0, len(entries), NEW_ALIASES_MAX):
            self._call(USERS_OTHER, "POST", path, {"alias_updates": entries[start : start + NEW_ALIASES_MAX]})
            requests_sent += 1
        return RequestsSent(requests=requests_sent)

    def new_aliases(self, aliases: Iterable[NewAlias | Mapping[str, Any]]) -> NewAliasesResult:
        """Adds user aliases, 50 a request."""
        items: list[dict[str, Any]] = []
        for alias in aliases:
            try:
                typed = alias if isinstance(alias, NewAlias) else NewAlias.model_validate(alias)
            except ValidationError as error:
                raise BrazeRequestError(f"invalid alias #{len(items) + 1}: {_first_problem(error)}") from None
            items.append(typed.model_dump(exclude_none=True))
        if not items:
            raise BrazeRequestError("new_aliases needs at least one alias")
        processed = 0
        requests_sent = 0
        path = "/users/alias/new"
        for start in range(0, len(items), NEW_ALIASES_MAX):
            body = {"user_aliases": items[start : start + NEW_ALIASES_MAX]}
            reply = self._raise_unless_ok(self._call(USERS_OTHER, "POST", path, body), path)
            requests_sent += 1
            count = reply.payload.get("aliases_processed") if isinstance(reply.payload, dict) else None
            processed += count if isinstance(count, int) else len(body["user_aliases"])
        return NewAliasesResult(aliases_processed=processed, requests=requests_sent)

    # -- the request loop ---------------------------------------------------------------------------

    def _call(
        self,
        family: str,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        params: Mapping[str, str] | None = None,
        authorize: bool = True,
    ) -> _Reply:
        """A call whose only acceptable outcome is a 2xx; raises on anything else."""
        encoded = None if body is None else orjson.dumps(body)
        reply = self._execute(family, method, path, body=encoded, params=params, authorize=authorize)
        return self._raise_unless_ok(reply, path)

    @staticmethod
    def _raise_unless_ok(reply: _Reply, path: str) -> _Reply:
        if not reply.ok:
            raise BrazePermanentError(reply.status, reply.message, reply.errors, endpoint=path)
        return reply

    def _execute(
        self,
        family: str,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
        authorize: bool = True,
        final_429: Callable[[str, RateLimitHeaders], bool] | None = None,
    ) -> _Reply:
        """Sends until a final answer; raises BrazeUnavailableError when attempts or time run out."""
        policy = self._retry
        window = self._limiter.for_family(family)
        stats = self._stats
        target = self._path_prefix + path
        if params:
            target += "?" + urlencode(params)
        started = self._clock()
        attempt = 0
        max_attempts = policy.max_attempts
        key_refreshed = False
        last_status: int | None = None
        last_problem = "no attempt made"
        held_s = 0.0
        while True:
            attempt += 1
            before_acquire = self._clock()
            elapsed = before_acquire - started
            admitted = window.acquire(timeout_s=max(policy.max_elapsed_s - elapsed, 0.0))
            sent_at = self._clock()
            held_s += sent_at - before_acquire
            if not admitted:
                stats.add(family, "exhausted")
                raise BrazeUnavailableError(
                    path,
                    attempt - 1,
                    last_status,
                    f"{last_problem}; the rate limit wait outlasts the retry budget",
                )
            key = ""
            if authorize:
                key = self._keys.current()
                headers = self._auth_headers(key)
            else:
                headers = _DEFAULT_HEADERS if body is None else _JSON_ONLY
            stats.add(family, "requests")
            hint: float | None = None
            try:
                # The body is read before urlopen returns (preload_content), so the connection is back
                # in the pool, or closed and replaced on any error, before the answer is looked at.
                response = self._pool.urlopen(
                    method,
                    target,
                    body=body,
                    headers=headers,
                    retries=_NO_RETRIES,
                    redirect=False,
                    timeout=self._timeout,
                    preload_content=True,
                    decode_content=True,
                )
            except _TRANSPORT_ERRORS as error:
                last_status = None
                if _is_timeout(error):
                    stats.add(family, "timeouts")
                    last_problem = f"no answer within {self.settings.timeout_s:g}s"
                else:
                    stats.add(family, "connection_errors")
                    last_problem = f"connection failed ({type(error).__name__})"
            else:
                status = response.status
                content = response.data
                answer_s = self._clock() - sent_at
                wall_now = self._limiter.wall_clock()
                limits = RateLimitHeaders.parse(response.headers, wall_now=wall_now)
                window.observe(limits)
                payload, message, errors = _decode(status, response.headers, content)
                last_status = status
                if 200 <= status < 300:
                    if payload is not None or not content:
                        return _Reply(status, payload, message, errors, attempt, answer_s, held_s)
                    # A 2xx that is not JSON comes from something in between (a proxy, a captive
                    # portal), not from Braze: whether Braze processed the request is unknown.
                    stats.add(family, "server_errors")
                    last_problem = message
                elif status == 401 and authorize and not key_refreshed and self._refresh_key(family, key):
                    key_refreshed = True
                    max_attempts += 1  # the retry with the rotated key is free
                    logger.info("retrying with the rotated Braze API key", extra={"endpoint": path})
                    continue
                elif status == 429:
                    stats.add(family, "rate_limited")
                    if final_429 is not None and final_429(message, limits):
                        return _Reply(status, payload, message, errors, attempt, answer_s, held_s)
                    # Remaining > 0 means some other limit answered (not the window): do not stall
                    # the whole family, only this call.
                    if limits.remaining is None or limits.remaining == 0:
                        window.penalize(limits)
                    hint = limits.seconds_until_reset(wall_now)
                    if hint is None:
                        hint = limits.retry_after_s
                    last_problem = f"429 {message}".strip()
                elif status >= 500 and status not in _NOT_RETRYABLE_5XX:
                    stats.add(family, "server_errors")
                    hint = limits.retry_after_s
                    last_problem = message
                elif status in _RETRYABLE_4XX:
                    stats.add(family, "permanent_errors")
                    hint = limits.retry_after_s
                    last_problem = message
                else:
                    stats.add(family, "permanent_errors")
                    return self._refused(
                        path, _Reply(status, payload, message, errors, attempt, answer_s, held_s)
                    )
            if attempt >= max_attempts:
                stats.add(family, "exhausted")
                logger.warning(
                    "Braze call gave up: attempts used up",
                    extra={"endpoint": path, "attempts": attempt, "last_status": last_status},
                )
                raise BrazeUnavailableError(path, attempt, last_status, last_problem)
            delay = backoff_delay(policy, attempt, server_hint_s=hint, uniform=self._uniform)
            if self._clock() - started + delay > policy.max_elapsed_s:
                stats.add(family, "exhausted")
                logger.warning(
                    "Braze call gave up: retry budget used up",
                    extra={"endpoint": path, "attempts": attempt, "last_status": last_status},
                )
                raise BrazeUnavailableError(
                    path,
                    attempt,
                    last_status,
                    f"{last_problem}; retry budget of {policy.max_elapsed_s:g}s used up",
                )
            stats.add(family, "retries")
            logger.debug(
                "retrying Braze call",
                extra={
                    "endpoint": path,
                    "attempt": attempt,
                    "last_status": last_status,
                    "delay_s": round(delay, 3),
                },
            )
            self._sleep(delay)

    def _refresh_key(self, family: str, rejected_key: str) -> bool:
        """After a 401: True when the provider now holds a different key (it may have been rotated)."""
        if not self._keys.refresh_after_rejection(rejected_key):
            return False
        self._stats.add(family, "key_refreshes")
        return True

    @staticmethod
    def _refused(path: str, reply: _Reply) -> _Reply:
        # Braze's message can quote input values, so only the status is logged.
        logger.warning("Braze refused a request", extra={"endpoint": path, "status": reply.status})
        return reply

    def _auth_headers(self, key: str) -> dict[str, str]:
        cached_key, headers = self._auth
        if cached_key != key:
            # The pool's default headers apply only when a call passes none, so every set is complete.
            headers = {**_JSON_ONLY, "Authorization": f"Bearer {key}"}
            self._auth = (key, headers)
        return headers


def new_pool(settings: BrazeSettings) -> urllib3.HTTPConnectionPool:
    """Keep-alive connections to the REST endpoint's host, at most ``max_concurrency`` of them.

    More threads than connections wait for one (block) instead of opening throw-away connections.
    HTTPS is verified against certifi's CA bundle; no proxy or .netrc is looked up.

    urllib3 rather than requests on top of it: requests' per-call machinery (request preparation,
    settings and cookie merging, hooks, header parsing) was nearly half of the CPU of a users.track
    call, and the engine is CPU-bound.
    """
    url = parse_url(settings.base_url)
    timeout = urllib3.Timeout(connect=settings.connect_timeout_s, read=settings.timeout_s)
    host, port = url.host or "", url.port
    shared: dict[str, Any] = {
        "timeout": timeout,
        "maxsize": settings.max_concurrency,
        "block": True,
        "headers": _DEFAULT_HEADERS,
        "retries": _NO_RETRIES,
    }
    if url.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            host, port, cert_reqs="CERT_REQUIRED", ca_certs=certifi.where(), **shared
        )
    return urllib3.HTTPConnectionPool(host, port, **shared)


def _is_timeout(error: BaseException) -> bool:
    """Whether a transport failure was slowness (no answer in time) rather than a broken connection."""
    reason: BaseException | None = error
    if isinstance(error, urllib3.exceptions.MaxRetryError):
        reason = error.reason
    # NewConnectionError (refused, unresolvable) subclasses ConnectTimeoutError: it is not slowness.
    return isinstance(reason, _TIMEOUTS) and not isinstance(reason, urllib3.exceptions.NewConnectionError)


# -- response decoding ------------------------------------------------------------------------------


def _decode(status: int, headers: Mapping[str, str], content: bytes) -> tuple[Any, str, list[Any]]:
    """Body as (JSON or None, message, errors). Only a body declared JSON is parsed, and a parse
    failure is a message, never an exception: an HTML error page from a load balancer is expected.
    ``headers`` must look names up case-insensitively (urllib3's HTTPHeaderDict does)."""
    content_type = headers.get("Content-Type", "")
    if "json" in content_type.lower() and content:
        try:
            payload = orjson.loads(content)
        except orjson.JSONDecodeError:
            return None, f"HTTP {status} with a malformed JSON body ({len(content)} bytes)", []
        message = ""
        errors: list[Any] = []
        if isinstance(payload, dict):
            raw_message = payload.get("message")
            if not isinstance(raw_message, str):
                # Braze's parse error carries its text in "error".
                raw_message = payload.get("error")
            message = raw_message if isinstance(raw_message, str) else ""
            raw_errors = payload.get("errors")
            if isinstance(raw_errors, list):
                errors = raw_errors
            elif isinstance(raw_errors, str | dict):
                errors = [raw_errors]
        return payload, message or f"HTTP {status}", errors
    if not content:
        return None, f"HTTP {status} with an empty body", []
    kind = content_type.split(";", 1)[0].strip() or "untyped"
    snippet = ""
    if kind == "text/plain":
        snippet = ": " + content[:200].decode("utf-8", "replace").strip()
    return None, f"HTTP {status} with a non-JSON body ({kind}, {len(content)} bytes){snippet}", []


def _parse[ModelT: BaseModel](model: type[ModelT], reply: _Reply, path: str) -> ModelT:
    if not isinstance(reply.payload, dict):
        raise BrazeResponseError(path, reply.status, "expected a JSON object")
    try:
        return model.model_validate(reply.payload)
    except ValidationError as error:
        raise BrazeResponseError(path, reply.status, _first_problem(error)) from None


def _validate_item[ModelT: BaseModel](model: type[ModelT], item: Any, path: str) -> ModelT:
    try:
        return model.model_validate(item)
    except ValidationError as error:
        raise BrazeResponseError(path, 200, _first_problem(error)) from None


def _first_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{location}: {first['msg']}"


def _export_already_running(message: str, limits: RateLimitHeaders) -> bool:
    """Whether a 429 of /users/export/segment refuses a second export of a running segment.

    Braze documents the status, not the text: a 429 whose rate-limit window still has room is
    not a rate limit. Without the headers, any text but a rate-limit one counts.
    """
    if limits.remaining is not None:
        return limits.remaining > 0
    return "rate limit" not in message.lower()


def _all_refs(request: TrackRequest) -> list[object]:
    return [ref for kind in TRACK_KINDS for ref in request.refs[kind]]


def _combined(
    outcomes: list[tuple[TrackRequest, TrackOutcome]], not_sent: list[TrackRequest]
) -> TrackOutcome:
    """One outcome for the pieces of one request, each object accounted for once."""
    first = outcomes[0][1]
    if len(outcomes) == 1 and not not_sent:
        return first
    attempts = sum(outcome.attempts for _, outcome in outcomes)
    requests = sum(outcome.requests for _, outcome in outcomes)
    answers = [outcome.answer_s for _, outcome in outcomes if outcome.answer_s is not None]
    answer_s = max(answers) if answers else None
    held_s = sum(outcome.held_s for _, outcome in outcomes)
    if not any(outcome.processed for _, outcome in outcomes):
        # Nothing was processed: the whole request fares like its first piece.
        errors = [error for _, outcome in outcomes for error in outcome.errors]
        return TrackOutcome(
            first.status,
            first.http_status,
            first.message,
            errors,
            attempts,
            False,
            [],
            requests,
            answer_s,
            held_s,
        )
    errors = []
    unsent: list[object] = [ref for piece in not_sent for ref in _all_refs(piece)]
    for piece, outcome in outcomes:
        if outcome.processed:
            errors.extend(outcome.errors)
            unsent.extend(outcome.unsent)
        elif outcome.status == "retries_exhausted" or outcome.http_status in (401, 403):
            unsent.extend(_all_refs(piece))
        else:
            # Refused as a whole: every object of the piece is refused with Braze's reason.
            named = {id(error.ref) for error in outcome.errors}
            errors.extend(outcome.errors)
            for kind in TRACK_KINDS:
                errors.extend(
                    ObjectError(kind, index, ref, outcome.message)
                    for index, ref in enumerate(piece.refs[kind])
                    if id(ref) not in named
                )
    last = outcomes[-1][1]
    return TrackOutcome(
        "partial" if errors or unsent else "accepted",
        last.http_status,
        last.message,
        errors,
        attempts,
        any(outcome.queued for _, outcome in outcomes),
        unsent,
        requests,
        answer_s,
        held_s,
    )


def _map_track_errors(request: TrackRequest, errors: list[Any]) -> list[ObjectError]:
    """Ties Braze's errors to the objects (and their refs) they name.

    An error that names no valid object is charged to every object of the array it names, or of the
    whole request: claiming those objects were processed could silently lose a row.
    """
    mapped: list[ObjectError] = []
    for error in errors:
        if isinstance(error, dict):
            kind = error.get("input_array")
            index = error.get("index")
            error_type = error.get("type") or error.get("message") or "unspecified error"
        else:
            kind, index, error_type = None, None, str(error)
        error_type = str(error_type)
        if kind in TRACK_KINDS:
            objects = request.objects(kind)
            if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(objects):
                mapped.append(ObjectError(kind, index, request.refs[kind][index], error_type))
                continue
            kinds: Sequence[str] = (kind,)
        else:
            kinds = TRACK_KINDS
        for each in kinds:
            refs = request.refs[each]
            mapped.extend(ObjectError(each, position, ref, error_type) for position, ref in enumerate(refs))
    return mapped


# -- request bodies ---------------------------------------------------------------------------------


def _alias_dict(alias: UserAlias | Mapping[str, Any]) -> dict[str, str]:
    if isinstance(alias, UserAlias):
        return {"alias_name": alias.alias_name, "alias_label": alias.alias_label}
    try:
        typed = UserAlias.model_validate(dict(alias))
    except ValidationError as error:
        raise BrazeRequestError(f"invalid user alias: {_first_problem(error)}") from None
    return {"alias_name": typed.alias_name, "alias_label": typed.alias_label}


_RECIPIENT_IDENTIFIERS = ("external_user_id", "user_alias", "email")


def _trigger_body(
    target_id: str,
    *,
    recipients: Sequence[Mapping[str, Any]] | None,
    broadcast: bool,
    trigger_properties: Mapping[str, Any] | None,
    send_id: str | None,
    audience: Mapping[str, Any] | None,
    id_key: str = "campaign_id",
    properties_key: str = "trigger_properties",
) -> dict[str, Any]:
    if not target_id:
        raise BrazeRequestError(f"a {id_key} is required")
    body: dict[str, Any] = {id_key: target_id, "broadcast": broadcast}
    if recipients:
        if broadcast:
            raise BrazeRequestError("broadcast cannot be combined with recipients")
        if len(recipients) > TRIGGER_RECIPIENTS_MAX:
            raise BrazeRequestError(
                f"at most {TRIGGER_RECIPIENTS_MAX} recipients a call, got {len(recipients)}"
            )
        for number, recipient in enumerate(recipients, start=1):
            _check_recipient(number, recipient, properties_key)
        body["recipients"] = [dict(recipient) for recipient in recipients]
    elif not broadcast:
        raise BrazeRequestError("without recipients, broadcast must be true (it sends to the whole audience)")
    if trigger_properties is not None:
        _check_properties_size(trigger_properties, properties_key)
        body[properties_key] = dict(trigger_properties)
    if send_id is not None:
        _check_send_id(send_id)
        body["send_id"] = send_id
    if audience is not None:
        body["audience"] = dict(audience)
    return body


def _check_recipient(number: int, recipient: Mapping[str, Any], properties_key: str) -> None:
    named = [name for name in _RECIPIENT_IDENTIFIERS if recipient.get(name)]
    if len(named) != 1:
        raise BrazeRequestError(
            f"recipient #{number} must name exactly one of {', '.join(_RECIPIENT_IDENTIFIERS)}"
            f" (names {len(named)})"
        )
    if named[0] == "email" and not recipient.get("prioritization"):
        raise BrazeRequestError(f"recipient #{number} is named by email and needs a prioritization")
    if named[0] == "user_alias" and recipient.get("send_to_existing_only") is False:
        raise BrazeRequestError(
            f"recipient #{number}: send_to_existing_only false is not supported for aliases"
        )
    properties = recipient.get(properties_key)
    if isinstance(properties, Mapping):
        _check_properties_size(properties, f"recipient #{number} {properties_key}")


def _check_properties_size(properties: Mapping[str, Any], name: str) -> None:
    size = len(orjson.dumps(dict(properties)))
    if size > TRIGGER_PROPERTIES_MAX_BYTES:
        raise BrazeRequestError(f"{name} is {size} bytes, Braze takes at most {TRIGGER_PROPERTIES_MAX_BYTES}")


def _check_send_id(send_id: str) -> None:
    if not 0 < len(send_id) <= SEND_ID_MAX_LENGTH or not send_id.isascii():
        raise BrazeRequestError(f"a send_id is 1-{SEND_ID_MAX_LENGTH} ASCII characters")


def _schedule_body(schedule: TriggerSchedule | Mapping[str, Any]) -> dict[str, Any]:
    try:
        typed = (
            schedule if isinstance(schedule, TriggerSchedule) else TriggerSchedule.model_validate(schedule)
        )
    except ValidationError as error:
        raise BrazeRequestError(f"invalid schedule: {_first_problem(error)}") from None
    return typed.model_dump(mode="json")


def _check_subscription(group_id: str, state: str, emails: Sequence[str], phones: Sequence[str]) -> None:
    if not group_id:
        raise BrazeRequestError("a subscription_group_id is required")
    if state not in ("subscribed", "unsubscribed"):
        raise BrazeRequestError(f"subscription_state must be 'subscribed' or 'unsubscribed', not {state!r}")
    if emails and phones:
        raise BrazeRequestError(_EMAIL_AND_PHONE)


def _subscription_batches(
    external_ids: Sequence[str], emails: Sequence[str], phones: Sequence[str]
) -> Iterator[tuple[list[str], list[str], list[str]]]:
    """(external_ids, emails, phones) of at most SUBSCRIPTION_IDS_MAX each per request."""
    longest = max(len(external_ids), len(emails), len(phones))
    if longest == 0:
        raise BrazeRequestError("subscription_status_set needs at least one user")
    for start in range(0, longest, SUBSCRIPTION_IDS_MAX):
        stop = start + SUBSCRIPTION_IDS_MAX
        yield list(external_ids[start:stop]), list(emails[start:stop]), list(phones[start:stop])


def _partner_segment(partner: str) -> str:
    if not _PARTNER_NAME.match(partner):
        raise BrazeRequestError(f"invalid partner name {partner!r} (letters, digits, '.', '_', '-')")
    return partner


def _cohort_batches(
    changes: Iterable[CohortChange | Mapping[str, Any]],
) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """Splits changes, in order, into cohort_changes lists of at most COHORT_IDS_MAX ids (and their count)."""
    batch: list[dict[str, Any]] = []
    room = COHORT_IDS_MAX
    for number, change in enumerate(changes, start=1):
        try:
            typed = change if isinstance(change, CohortChange) else CohortChange.model_validate(change)
        except ValidationError as error:
            raise BrazeRequestError(f"invalid cohort change #{number}: {_first_problem(error)}") from None
        kind = typed.id_kind
        ids = [alias.model_dump() if isinstance(alias, UserAlias) else alias for alias in typed.ids()]
        while ids:
            taken, ids = ids[:room], ids[room:]
            batch.append({kind: taken, "should_remove": typed.should_remove})
            room -= len(taken)
            if room == 0:
                yield batch, COHORT_IDS_MAX
                batch, room = [], COHORT_IDS_MAX
    if batch:
        yield batch, COHORT_IDS_MAX - room
