"""POST /users/track, as Braze documents it (users/track, user attributes object, event object,
purchase object, API limits and data points pages).

- Current workspaces take at most 75 objects **combined** across attributes, events and purchases
  per request (75 per array only on legacy limits; 50 combined on some contracts); more is a 400
  "Max Input Length Exceeded". The client halves its cap for the rest of the run and resends the
  batch in two, never failing its rows; the run report names the cap given and the one it was
  lowered to. (gap row 1)
- Array attributes hold 25 elements by default, configurable up to 500; an array over the maximum
  is truncated, not refused, keeping the newest elements; adding an element already present moves
  it to the end. (rows 2, 3)
- Arrays of objects take ``$add``, ``$remove`` and ``$update`` (items named by
  ``$identifier_key``/``$identifier_value``, ``$new_object`` merged with ``_merge_objects``), have no
  item limit but a 100 KB size limit; an update that would exceed it is dropped with a success.
  (row 4)
- Nested custom attribute keys: at most 255 characters, no spaces, no "." or "$"; strings at most
  255; an invalid ``$time`` or a null drops every nested update of the request, not the object.
  (row 5)
- ``country`` is mapped best-effort from a name ("Australia" -> "AU"), otherwise set to null, with
  no error; an invalid ``time_zone`` is ignored without an error. (row 6)
- Setting ``email_subscribe`` on one user sets it for every user with the same e-mail. (row 7)
- Several profiles with one e-mail: the most recently updated one **with an external_id** is the
  one an e-mail identifier names. (row 8)
- Event property names ``time`` and ``event_name`` are reserved; string property values at most
  255 characters. (row 9)
- A purchase of ``quantity`` X counts as X purchases; purchase properties at most 50 KB. (row 10)
- Push tokens are not counted as data points; newer contracts are not billed on data points. (row 11)
- ``attributes_processed`` / ``events_processed`` / ``purchases_processed`` appear only for the
  arrays the request carried. (row 12)
- A malformed body is a 400 with ``error`` "Error while parsing request body. Please check your
  syntax."; a body without a JSON Content-Type is a 415. (row 13)
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cdpbridge.braze import AdaptiveTrackCap, TrackCap, TrackRequest, TrackRequestBuilder
from cdpbridge.mapping import load_mapping
from cdpbridge.state import SqliteCheckpointStore, SqliteFieldStateStore, SqliteSendLedger
from cdpbridge.sync.artifacts import LocalArtifactStore
from cdpbridge.sync.engine import EngineOptions
from cdpbridge.sync.job import JobRequest, JobServices, run_part
from tests.contract.conftest import BrazeClientFactory
from tests.unit.emulator.conftest import EmulatorClient

EVENT = {"external_id": "u1", "name": "seen", "time": "2026-01-01T00:00:00Z"}
PURCHASE = {"external_id": "u1", "product_id": "p", "currency": "USD", "price": 2.5, "time": "2026-01-01"}


def attributes(count: int) -> list[dict[str, Any]]:
    return [{"external_id": f"u{n}", "n": n} for n in range(count)]


def request_of(count: int) -> TrackRequest:
    builder = TrackRequestBuilder(TrackCap(limit=1000))
    for n in range(count):
        builder.add("attributes", {"external_id": f"u{n}", "n": n}, n)
    request = builder.flush()
    assert request is not None
    return request


# -- row 1: the object cap ------------------------------------------------------------------------


def test_75_objects_combined_is_the_default_cap(emulator: EmulatorClient) -> None:
    events = [{**EVENT, "external_id": f"u{n}"} for n in range(25)]
    assert emulator.track(attributes=attributes(50), events=events).status_code == 201
    refused = emulator.track(attributes=attributes(50), events=[*events, EVENT])
    assert refused.status_code == 400 and refused.json()["message"] == "Max Input Length Exceeded"


def test_legacy_per_array_cap_is_a_setting(emulator: EmulatorClient) -> None:
    emulator.configure(track_cap={"mode": "per_array", "limit": 75})
    events = [{**EVENT, "external_id": f"u{n}"} for n in range(75)]
    assert emulator.track(attributes=attributes(75), events=events).status_code == 201


def test_client_default_cap_is_75_combined(braze: BrazeClientFactory) -> None:
    client = braze()
    assert client.settings.track_cap == TrackCap(mode="total", limit=75)


def test_max_input_length_halves_the_run_cap_and_resends_in_two(
    emulator: EmulatorClient, braze: BrazeClientFactory
) -> None:
    # Given a workspace on 50 combined and a run cap of 75
    emulator.configure(track_cap={"mode": "total", "limit": 50})
    client = braze()
    run_cap = AdaptiveTrackCap(client.settings.track_cap)
    # When a full request of 75 goes out
    outcome = client.track(request_of(75), run_cap)
    # Then no row fails: the cap is 38 for the rest of the run and the batch went again in two
    assert outcome.status == "accepted" and outcome.errors == [] and outcome.unsent == []
    assert (run_cap.limit, run_cap.lowered, run_cap.lowered_to) == (38, 1, 38)
    assert emulator.admin("GET", "/users", params={"count": 1}) == {"count": 75}
    # And another run starts again from the configured cap
    assert AdaptiveTrackCap(client.settings.track_cap).lowered_to is None


def test_max_input_length_on_a_single_object_is_not_a_loop(
    emulator: EmulatorClient, braze: BrazeClientFactory
) -> None:
    emulator.configure(track_cap={"mode": "total", "limit": 1})
    two_arrays = TrackRequest(attributes=[{"external_id": "u1"}], events=[EVENT])
    two_arrays.refs["attributes"].append("a")
    two_arrays.refs["events"].append("e")
    outcome = braze().track(two_arrays)
    assert outcome.status == "accepted" and outcome.requests == 3


# -- rows 2 and 3: scalar arrays --------------------------------------------------------------------


def test_arrays_over_the_maximum_are_truncated_keeping_the_newest(emulator: EmulatorClient) -> None:
    response = emulator.track(attributes=[{"external_id": "u1", "tags": [f"t{n}" for n in range(30)]}])
    assert response.status_code == 201 and "errors" not in response.json()
    assert emulator.user("u1")["custom_attributes"]["tags"] == [f"t{n}" for n in range(5, 30)]
    # An add over the maximum drops the oldest
    emulator.track(attributes=[{"external_id": "u1", "tags": {"add": ["new"]}}])
    assert emulator.user("u1")["custom_attributes"]["tags"] == [*(f"t{n}" for n in range(6, 30)), "new"]


def test_array_maximum_goes_up_to_500(emulator: EmulatorClient) -> None:
    emulator.configure(array_max_length=500)
    emulator.track(attributes=[{"external_id": "u1", "tags": list(range(600))}])
    assert emulator.user("u1")["custom_attributes"]["tags"] == list(range(100, 600))
    assert emulator.admin_response("PUT", "/config", {"array_max_length": 501}).status_code == 400


def test_add_of_an_existing_element_moves_it_to_the_end(emulator: EmulatorClient) -> None:
    emulator.track(attributes=[{"external_id": "u1", "tags": ["a", "b", "c"]}])
    emulator.track(attributes=[{"external_id": "u1", "tags": {"add": ["a"]}}])
    assert emulator.user("u1")["custom_attributes"]["tags"] == ["b", "c", "a"]
    # ... so it is the one that survives truncation
    emulator.configure(array_max_length=3)
    emulator.track(attributes=[{"external_id": "u1", "tags": {"add": ["d"]}}])
    assert emulator.user("u1")["custom_attributes"]["tags"] == ["c", "a", "d"]


# -- row 4: arrays of objects -----------------------------------------------------------------------


def test_arrays_of_objects_take_add_remove_and_update(emulator: EmulatorClient) -> None:
    pets = [{"id": n, "type": "dog", "name": f"p{n}"} for n in range(30)]
    # No item limit: 30 objects stay although the array maximum is 25
    assert emulator.track(attributes=[{"external_id": "u1", "pets": pets}]).status_code == 201
    response = emulator.track(
        attributes=[
            {
                "external_id": "u1",
                "_merge_objects": True,
                "pets": {
                    "$add": [{"id": 99, "type": "cat", "name": "new"}],
                    "$remove": [{"$identifier_key": "id", "$identifier_value": 0}],
                    "$update": [
                        {"$identifier_key": "id", "$identifier_value": 1, "$new_object": {"name": "renamed"}}
                    ],
                },
            }
        ]
    )
    assert response.status_code == 201 and "errors" not in response.json()
    held = emulator.user("u1")["custom_attributes"]["pets"]
    assert [pet["id"] for pet in held] == [*range(1, 30), 99]
    assert held[0] == {"id": 1, "type": "dog", "name": "renamed"}


def test_update_that_would_exceed_100kb_is_dropped_with_a_success(emulator: EmulatorClient) -> None:
    emulator.configure(object_array_max_bytes=1000)
    emulator.track(attributes=[{"external_id": "u1", "pets": [{"id": 1}]}])
    big = [{"id": n, "text": "x" * 200} for n in range(10)]
    response = emulator.track(attributes=[{"external_id": "u1", "pets": {"$add": big}}])
    assert response.status_code == 201 and "errors" not in response.json()
    assert emulator.user("u1")["custom_attributes"]["pets"] == [{"id": 1}]
    assert emulator.stats()["object_array_updates_dropped"] == 1


# -- row 5: nested custom attributes ----------------------------------------------------------------


def test_nested_keys_refuse_spaces_periods_and_dollars(emulator: EmulatorClient) -> None:
    for key in ("a b", "a.b", "a$b"):
        response = emulator.track(attributes=[{"external_id": "u1", "o": {key: 1}}])
        assert response.status_code == 400, key
    response = emulator.track(attributes=[{"external_id": "u1", "o": {"k": "v" * 256}}])
    assert "a string over 255" in response.json()["errors"][0]["type"]


def test_invalid_time_or_null_drops_every_nested_update_of_the_request(emulator: EmulatorClient) -> None:
    response = emulator.track(
        attributes=[
            {"external_id": "u1", "plan": "gold", "o": {"when": {"$time": "not a date"}}},
            {"external_id": "u2", "plan": "silver", "song": {"title": "x"}},
            {"external_id": "u3", "o": {"gone": None}, "n": 1},
        ]
    )
    # Not refused: every object is processed, only the nested updates are dropped
    assert response.status_code == 201 and response.json()["attributes_processed"] == 3
    assert emulator.user("u1")["custom_attributes"] == {"plan": "gold"}
    assert emulator.user("u2")["custom_attributes"] == {"plan": "silver"}
    assert emulator.user("u3")["custom_attributes"] == {"n": 1}
    assert emulator.stats()["nested_updates_dropped"] == 1


# -- row 6: country and time zone -------------------------------------------------------------------


def test_country_names_are_mapped_and_unknown_ones_become_null(emulator: EmulatorClient) -> None:
    emulator.track(attributes=[{"external_id": "u1", "country": "Australia"}])
    assert emulator.user("u1")["standard_attributes"]["country"] == "AU"
    response = emulator.track(attributes=[{"external_id": "u1", "country": "Atlantis"}])
    assert response.status_code == 201 and "errors" not in response.json()
    assert "country" not in emulator.user("u1")["standard_attributes"]


def test_invalid_time_zones_are_ignored_without_an_error(emulator: EmulatorClient) -> None:
    emulator.track(attributes=[{"external_id": "u1", "time_zone": "Europe/Paris"}])
    response = emulator.track(attributes=[{"external_id": "u1", "time_zone": "Mars/Olympus", "n": 1}])
    assert response.status_code == 201 and "errors" not in response.json()
    user = emulator.user("u1")
    assert user["standard_attributes"]["time_zone"] == "Europe/Paris" and user["custom_attributes"] == {
        "n": 1
    }


# -- rows 7 and 8: e-mail -----------------------------------------------------------------------------


def test_email_subscribe_applies_to_every_profile_with_the_address(emulator: EmulatorClient) -> None:
    emulator.track(
        attributes=[
            {"external_id": "u1", "email": "ada@example.com"},
            {"external_id": "u2", "email": "ADA@example.com"},
            {"external_id": "u3", "email": "bob@example.com"},
        ]
    )
    emulator.track(attributes=[{"external_id": "u1", "email_subscribe": "unsubscribed"}])
    states = {uid: emulator.user(uid)["email_subscribe"] for uid in ("u1", "u2", "u3")}
    assert states == {"u1": "unsubscribed", "u2": "unsubscribed", "u3": None}


def test_email_identifier_names_the_latest_profile_with_an_external_id(emulator: EmulatorClient) -> None:
    emulator.track(attributes=[{"external_id": "known", "email": "ada@example.com"}])
    emulator.post("/users/alias/new", {"user_aliases": [{"alias_name": "anon", "alias_label": "web"}]})
    emulator.track(
        attributes=[{"user_alias": {"alias_name": "anon", "alias_label": "web"}, "email": "ada@example.com"}]
    )
    # The alias-only profile was updated last, but the one with an external_id wins
    emulator.track(attributes=[{"email": "ada@example.com", "plan": "gold"}])
    assert emulator.user("known")["custom_attributes"] == {"plan": "gold"}


# -- rows 9 and 10: events and purchases -------------------------------------------------------------


def test_reserved_event_property_names_and_long_strings_are_refused(emulator: EmulatorClient) -> None:
    emulator.track(attributes=[{"external_id": "u1"}])
    for properties in ({"time": "x"}, {"event_name": "x"}, {"p": "v" * 256}):
        response = emulator.track(events=[{**EVENT, "properties": properties}])
        assert response.status_code == 400, properties


def test_a_purchase_quantity_counts_as_that_many_purchases(emulator: EmulatorClient) -> None:
    emulator.track(purchases=[{**PURCHASE, "quantity": 3}])
    assert len(emulator.user("u1")["purchases"]) == 3


def test_purchase_properties_are_limited_to_50kb(emulator: EmulatorClient) -> None:
    properties = {f"p{n}": "x" * 200 for n in range(300)}  # about 63 KB: fine for an event
    assert emulator.track(events=[{**EVENT, "properties": properties}]).status_code == 201
    refused = emulator.track(purchases=[{**PURCHASE, "properties": properties}])
    assert refused.status_code == 400 and "51200 bytes" in refused.json()["errors"][0]["type"]


# -- rows 11 and 12: data points and the success body ------------------------------------------------


def test_push_tokens_are_not_data_points(emulator: EmulatorClient) -> None:
    tokens = [{"app_id": "app", "token": "t1"}]
    emulator.track(attributes=[{"external_id": "u1", "push_tokens": tokens, "first_name": "Ada"}])
    assert emulator.stats()["data_points"] == 1


def test_newer_contracts_are_not_billed_on_data_points(emulator: EmulatorClient) -> None:
    emulator.configure(bills_data_points=False)
    emulator.track(attributes=[{"external_id": "u1", "first_name": "Ada"}])
    stats = emulator.stats()
    assert (stats["data_points"], stats["data_points_billed"]) == (1, 0)


def test_processed_counts_only_for_the_arrays_sent(emulator: EmulatorClient) -> None:
    body = emulator.track(attributes=[{"external_id": "u1"}]).json()
    assert body == {"message": "success", "attributes_processed": 1}
    body = emulator.track(events=[EVENT], purchases=[PURCHASE]).json()
    assert body == {"message": "success", "events_processed": 1, "purchases_processed": 1}


# -- row 13: malformed bodies -------------------------------------------------------------------------


def test_malformed_body_is_braze_parse_error_and_non_json_is_415(emulator: EmulatorClient) -> None:
    headers = {"Authorization": "Bearer local-dev-key", "Content-Type": "application/json"}
    response = emulator.session.post(f"{emulator.url}/users/track", data=b"{nope", headers=headers)
    assert response.status_code == 400
    assert response.json() == {"error": "Error while parsing request body. Please check your syntax."}
    headers["Content-Type"] = "text/plain"
    response = emulator.session.post(f"{emulator.url}/users/track", data=b"{}", headers=headers)
    assert response.status_code == 415


def test_the_run_report_says_which_cap_was_used_and_that_it_was_lowered(
    emulator: EmulatorClient, braze: BrazeClientFactory, tmp_path: Path
) -> None:
    # Given a workspace on 50 combined and a file of 120 users
    emulator.configure(track_cap={"mode": "total", "limit": 50})
    source = tmp_path / "users.csv"
    source.write_text("id,tier\n" + "".join(f"u{n},gold\n" for n in range(120)))
    client = braze()
    state = tmp_path / "state.sqlite3"
    services = JobServices(
        client=client,
        field_state=SqliteFieldStateStore(state),
        ledger=SqliteSendLedger(state),
        checkpoints=SqliteCheckpointStore(state),
        artifacts=LocalArtifactStore(tmp_path / "reports"),
        options=EngineOptions(workspace="w", in_flight=1, track_cap=client.settings.track_cap),
        reports_prefix="",
    )
    request = JobRequest("generic", str(source), "v1", "run1", datetime.now(UTC), load_mapping(MAPPING))
    # When it runs
    outcome = run_part(request, services)
    # Then every row reached Braze, and the report names the cap and the lowered one
    assert outcome.report is not None
    report = outcome.report
    assert report["track_cap"] == {"mode": "total", "limit": 75}
    assert report["track_cap_lowered_to"] == 38
    assert report["rows_rejected"] == 0 and report["objects_rejected_by_braze"] == 0
    assert emulator.admin("GET", "/users", params={"count": 1}) == {"count": 120}


MAPPING = """\
version: 1
integration: generic
source: {format: csv}
identifier: {column: id, as: external_id}
fields:
  - {column: tier, attribute: tier, type: string}
"""


def test_monthly_active_user_contracts_have_an_hourly_limit_besides_the_burst_limit(
    emulator: EmulatorClient,
) -> None:
    emulator.configure(
        track_cap={"mode": "total", "limit": 50},
        rate_limits={"users.track.hourly": {"limit": 2, "window_s": 3600}},
    )
    assert emulator.track(attributes=attributes(50)).status_code == 201
    assert emulator.track(attributes=attributes(1)).status_code == 201
    limited = emulator.track(attributes=attributes(1))
    assert limited.status_code == 429 and limited.headers["X-RateLimit-Limit"] == "2"
