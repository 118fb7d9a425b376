"""POST /partners/<partner>/cohorts and /partners/<partner>/cohorts/users (cohort import), as
Braze documents them for partners.

- ``created_at`` is required on the cohort, in ISO 8601. (gap row 19)
- Segment's connection check posts ``cohort_changes: []`` for a cohort that does not exist and
  expects a 2xx. (row 19)
- A bad partner key is a 401 "Invalid Partner API key"; a bad Data Import Key a 401 "Invalid client
  secret". (row 19)
- Rate limit: 250,000 requests an hour. (row 14)
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.contract.conftest import BrazeClientFactory
from tests.unit.emulator.conftest import EmulatorClient

AUTH = {"partner_api_key": "partner-key", "client_secret": "import-key"}


@pytest.fixture
def partner(emulator: EmulatorClient) -> EmulatorClient:
    emulator.admin(
        "POST",
        "/partners",
        {"partner": "segment", "partner_api_key": "partner-key", "data_import_key": "import-key"},
    )
    return emulator


def post(emulator: EmulatorClient, path: str, body: dict[str, Any]) -> Any:
    return emulator.session.post(f"{emulator.url}/partners/segment{path}", json=body, timeout=30)


def test_created_at_is_required_in_iso_8601(partner: EmulatorClient, braze: BrazeClientFactory) -> None:
    body = {**AUTH, "cohort_id": "c1", "name": "Buyers"}
    assert post(partner, "/cohorts", body).status_code == 400
    assert post(partner, "/cohorts", {**body, "created_at": "last week"}).status_code == 400
    assert post(partner, "/cohorts", {**body, "created_at": "2026-12-01T10:00:00Z"}).status_code == 201
    # The client always sends it
    assert braze().cohort_upsert("segment", "partner-key", "import-key", "c2", "Others").message == "success"


def test_connection_check_with_empty_changes_for_an_unknown_cohort_is_2xx(
    partner: EmulatorClient, braze: BrazeClientFactory
) -> None:
    response = post(partner, "/cohorts/users", {**AUTH, "cohort_id": "never-made", "cohort_changes": []})
    assert 200 <= response.status_code < 300
    assert braze().cohort_update_users("segment", "partner-key", "import-key", "never-made", []).requests == 0


def test_401_texts_name_the_key_that_is_wrong(partner: EmulatorClient) -> None:
    body = {"cohort_id": "c1", "name": "x", "created_at": "2026-12-01T10:00:00Z"}
    wrong_partner = post(
        partner, "/cohorts", {**body, "partner_api_key": "nope", "client_secret": "import-key"}
    )
    assert wrong_partner.status_code == 401 and wrong_partner.json()["message"] == "Invalid Partner API key"
    wrong_secret = post(
        partner, "/cohorts", {**body, "partner_api_key": "partner-key", "client_secret": "nope"}
    )
    assert wrong_secret.status_code == 401 and wrong_secret.json()["message"] == "Invalid client secret"


def test_cohort_import_limit_is_250000_an_hour(partner: EmulatorClient, braze: BrazeClientFactory) -> None:
    response = post(partner, "/cohorts/users", {**AUTH, "cohort_id": "c1", "cohort_changes": []})
    assert response.headers["X-RateLimit-Limit"] == "250000"
    assert braze().settings.rate_limit("cohorts").window_s == 3600
