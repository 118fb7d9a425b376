"""The engagement profile store on SQLite and DynamoDB: record, read, bound, re-record, concurrent merge."""

from cdpbridge.engagement import (
    ENGAGEMENT_PROFILE_TABLE,
    DynamoDbEngagementStore,
    EngagementKind,
    Observation,
    hour_of_week,
)
from cdpbridge.state import Backoff
from cdpbridge.state.tables import create_table


def obs(at: int, kind: EngagementKind = EngagementKind.EMAIL_OPEN, hour: int = 10) -> Observation:
    return Observation(at, hour, kind, at)


def test_recorded_observations_come_back_as_profiles(make_store):
    store = make_store()
    store.record({"u1": [obs(1), obs(2, EngagementKind.PURCHASE, 30)], "u2": [obs(3)]})
    store.record({"u1": [obs(4, EngagementKind.EMAIL_CLICK)]})
    profiles = store.profiles(["u1", "u2", "nobody"])
    assert set(profiles) == {"u1", "u2"}
    assert profiles["u1"].by_kind == {"email_open": 1, "purchase": 1, "email_click": 1}
    assert profiles["u1"].by_hour_of_week["purchase"][30] == 1
    assert profiles["u2"].total == 1


def test_recording_the_same_events_again_adds_nothing(make_store):
    store = make_store()
    batch = {"u1": [obs(1), obs(2)]}
    store.record(batch)
    store.record(batch)
    assert store.profiles(["u1"])["u1"].total == 2


def test_each_user_keeps_only_the_newest_observations(make_store):
    store = make_store(max_observations=16)
    store.record({"u1": [obs(at) for at in range(10)]})
    store.record({"u1": [obs(at) for at in range(10, 30)]})
    kept = store.profiles(["u1"])["u1"].observations
    assert [o.occurred_at for o in kept] == list(range(29, 13, -1))


def test_two_writers_of_one_user_both_keep_their_observations(make_store):
    first, second = make_store(), make_store()
    first.record({"u1": [obs(1)]})
    # The second store read nothing yet: its write must merge with the first one's, not replace it
    second.record({"u1": [obs(2)], "u2": [obs(3)]})
    first.record({"u1": [obs(4)]})
    assert [o.occurred_at for o in first.profiles(["u1"])["u1"].observations] == [4, 2, 1]


def test_a_dynamodb_write_that_loses_a_race_merges_into_the_winners(dynamodb_client):
    create_table(dynamodb_client, ENGAGEMENT_PROFILE_TABLE, "engagement-race")
    store = DynamoDbEngagementStore(
        "engagement-race", client=dynamodb_client, backoff=Backoff(sleep=lambda _: None)
    )
    rival = DynamoDbEngagementStore("engagement-race", client=dynamodb_client)
    store.record({"u1": [obs(1)]})
    raced = []

    def rival_writes_first(**_):
        # Between the store's read and its conditional put, another writer adds an observation.
        if not raced:
            raced.append(True)
            rival.record({"u1": [obs(2)]})

    dynamodb_client.meta.events.register("before-call.dynamodb.PutItem", rival_writes_first)
    try:
        store.record({"u1": [obs(3)]})
    finally:
        dynamodb_client.meta.events.unregister("before-call.dynamodb.PutItem", rival_writes_first)
    assert [o.occurred_at for o in store.profiles(["u1"])["u1"].observations] == [3, 2, 1]


def test_the_users_zone_places_their_unzoned_observations_and_is_kept(make_store):
    store = make_store()
    # A purchase without time zone, then an open that shows the user is in Tokyo
    store.record({"u1": [Observation(1_796_630_400, 0, EngagementKind.PURCHASE, 1, zone_known=False)]})
    store.record({"u1": [obs(1_796_630_500)]}, zones={"u1": "Asia/Tokyo"})
    store.record({"u1": [obs(1_796_630_600)]})  # no zone this time: the one kept stays
    profile = store.profiles(["u1"])["u1"]
    assert profile.time_zone == "Asia/Tokyo"
    tokyo, utc = hour_of_week(1_796_630_400, "Asia/Tokyo"), hour_of_week(1_796_630_400, None)
    assert tokyo != utc
    assert profile.by_hour_of_week["purchase"][tokyo] == 1
