"""Braze REST client: instance endpoints, settings, API keys, rate limiting, users.track batching."""

from cdpbridge.braze.client import BrazeClient
from cdpbridge.braze.errors import (
    BrazeError,
    BrazePermanentError,
    BrazeRequestError,
    BrazeResponseError,
    BrazeUnavailableError,
    ExportInProgress,
)
from cdpbridge.braze.instances import INSTANCE_HOSTS, UnknownBrazeInstanceError, rest_endpoint
from cdpbridge.braze.keys import (
    ApiKeyProvider,
    ApiKeyUnavailableError,
    SecretsManagerKeyProvider,
    StaticKeyProvider,
    key_provider_from_settings,
)
from cdpbridge.braze.models import (
    BrazeAck,
    CampaignDetails,
    CampaignSummary,
    CohortChange,
    CohortUpdateResult,
    DeleteUsersResult,
    DispatchResult,
    ExportIdsResult,
    NewAlias,
    NewAliasesResult,
    ScheduleResult,
    SegmentExportStarted,
    SegmentSummary,
    TriggerSchedule,
    UserAlias,
)
from cdpbridge.braze.settings import FAMILIES, BrazeSettings, RateLimit, RetryPolicy
from cdpbridge.braze.stats import FamilyStats
from cdpbridge.braze.track import (
    ObjectError,
    TrackCap,
    TrackOutcome,
    TrackRequest,
    TrackRequestBuilder,
)

__all__ = [
    "FAMILIES",
    "INSTANCE_HOSTS",
    "ApiKeyProvider",
    "ApiKeyUnavailableError",
    "BrazeAck",
    "BrazeClient",
    "BrazeError",
    "BrazePermanentError",
    "BrazeRequestError",
    "BrazeResponseError",
    "BrazeSettings",
    "BrazeUnavailableError",
    "CampaignDetails",
    "CampaignSummary",
    "CohortChange",
    "CohortUpdateResult",
    "DeleteUsersResult",
    "DispatchResult",
    "ExportIdsResult",
    "ExportInProgress",
    "FamilyStats",
    "NewAlias",
    "NewAliasesResult",
    "ObjectError",
    "RateLimit",
    "RetryPolicy",
    "ScheduleResult",
    "SecretsManagerKeyProvider",
    "SegmentExportStarted",
    "SegmentSummary",
    "StaticKeyProvider",
    "TrackCap",
    "TrackOutcome",
    "TrackRequest",
    "TrackRequestBuilder",
    "TriggerSchedule",
    "UnknownBrazeInstanceError",
    "UserAlias",
    "key_provider_from_settings",
    "rest_endpoint",
]
