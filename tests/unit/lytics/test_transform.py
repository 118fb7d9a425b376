"""Lytics records into MEMBERS writes: snapshot rows, (user, audience) rows, deltas, bad records."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cdpbridge.integrations.lytics import EXAMPLE_DELTA_MAPPING_PATH, EXAMPLE_DELTA_PATH, EXAMPLE_MAPPING_PATH
from cdpbridge.integrations.lytics.transform import LyticsTransformer, default_feed, parse_audiences
from cdpbridge.mapping import MappingConfigError, load_mapping, parse_mapping
from cdpbridge.records import RowPosition, SourceRow
from cdpbridge.updates import MemberChange, UserUpdate, WriteMode

POSITION = RowPosition("audience_membership_2026-11-03.csv", 4, 0)


def transformer(**lytics: Any) -> LyticsTransformer:
    document = {
        "version": 1,
        "integration": "lytics",
        "identifier": {"column": "external_id", "as": "external_id"},
        "lytics": {"feed": "members", **lytics},
    }
    return LyticsTransformer(parse_mapping(document))


def change(update: UserUpdate) -> MemberChange:
    write = update.attributes["lytics_segments"]
    assert write.mode is WriteMode.MEMBERS
    assert isinstance(write.value, MemberChange)
    return write.value


def test_a_snapshot_row_is_the_users_complete_membership() -> None:
    update = transformer().map_row(SourceRow(POSITION, {"external_id": "LY-1", "audiences": "a| b ||a|c"}))
    assert update.identifier == {"external_id": "LY-1"} and not update.issues
    assert change(update) == MemberChange("members", add=("a", "b", "c"), complete=True, limit=25)


def test_an_empty_audiences_cell_means_the_user_left_every_audience() -> None:
    update = transformer().map_row(SourceRow(POSITION, {"external_id": "LY-1", "audiences": ""}))
    assert change(update) == MemberChange("members", complete=True, limit=25)


def test_a_json_array_cell_and_a_json_source_list_are_read_as_they_are() -> None:
    assert parse_audiences('["a", "b"]', "|").members == ("a", "b")
    assert parse_audiences(["a", " ", "b"], "|").members == ("a", "b")


def test_one_row_per_user_and_audience_adds_one_member_without_removing_the_others() -> None:
    update = transformer(audience_column="audience").map_row(
        SourceRow(POSITION, {"external_id": "LY-1", "audience": "vip"})
    )
    assert change(update) == MemberChange("members", add=("vip",), limit=25)


def test_a_delta_record_is_lytics_add_and_remove() -> None:
    row = {"external_id": "LY-1", "lytics_segments": {"add": ["a"], "remove": ["b"]}}
    update = transformer(mode="delta").map_row(SourceRow(POSITION, row))
    assert change(update) == MemberChange("members", add=("a",), remove=("b",), limit=25)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"external_id": "LY-1", "lytics_segments": ["a"]}, "invalid change"),
        ({"external_id": "LY-1", "lytics_segments": {"add": "a", "drop": ["b"]}}, "invalid change"),
        ({"external_id": "LY-1"}, "invalid change"),
        ({"external_id": "LY-1", "lytics_segments": {"add": [1]}}, "invalid audience"),
    ],
)
def test_a_bad_delta_record_is_rejected_naming_the_field(row: dict[str, Any], reason: str) -> None:
    update = transformer(mode="delta").map_row(SourceRow(POSITION, row))
    assert update.rejected
    assert (update.issues[0].column, update.issues[0].reason) == ("lytics_segments", reason)


def test_a_row_without_identifier_is_rejected_and_a_bad_slug_is_reported() -> None:
    missing = transformer().map_row(SourceRow(POSITION, {"external_id": "", "audiences": "a"}))
    assert missing.rejected and missing.issues[0].reason == "missing identifier"
    long_slug = "x" * 300
    partly = transformer().map_row(
        SourceRow(POSITION, {"external_id": "LY-1", "audiences": f"a|{long_slug}"})
    )
    # The usable audience is still added; the user is not treated as complete (nothing removed)
    assert not partly.rejected
    assert change(partly) == MemberChange("members", add=("a",), limit=25)
    assert [issue.reason for issue in partly.issues] == ["invalid audience"]


def test_the_header_check_names_the_missing_audiences_column() -> None:
    check = transformer().check_columns(["external_id", "segments"])
    assert [str(error) for error in check.errors] == [
        "lytics.audiences_column: the file has no column 'audiences'"
    ]
    assert transformer().check_columns(["external_id", "audiences"]).errors == ()


def test_the_feed_is_the_inbound_folder_else_the_config_name() -> None:
    assert default_feed("s3://drop/inbound/lytics/audience_membership/x_2026-11-03.csv", "lytics") == (
        "audience_membership"
    )
    assert default_feed("s3://drop/inbound/lytics/x.csv", "lytics") == "lytics"
    assert default_feed("/tmp/x.csv", "my feed") == "my_feed"
    assert default_feed("/tmp/x.csv", None) == "default"
    configured = transformer().for_source("s3://drop/inbound/lytics/other/x.csv", None)
    assert configured.feed == "members"
    unnamed = LyticsTransformer(load_mapping(EXAMPLE_MAPPING_PATH).model_copy(update={"lytics": None}))
    assert unnamed.for_source("s3://drop/inbound/lytics/weekly/x.csv", None).snapshot_scope == "lytics/weekly"


def test_a_first_snapshot_without_existing_users_only_records() -> None:
    recording = transformer(existing_users=False).recording_only()
    update = recording.map_row(SourceRow(POSITION, {"external_id": "LY-1", "audiences": "a"}))
    assert change(update).record_only
    absent = recording.absent_members(POSITION, "external_id:LY-1", {"external_id": "LY-1"}, ("b",))
    assert change(absent) == MemberChange("members", remove=("b",), record_only=True)


def test_the_lytics_section_is_refused_for_other_integrations_and_checks_its_keys() -> None:
    base = {"version": 1, "identifier": {"column": "id"}}
    with pytest.raises(MappingConfigError, match="lytics: only applies to integration: lytics"):
        parse_mapping({**base, "lytics": {}})
    with pytest.raises(MappingConfigError, match="feed 'a/b'"):
        parse_mapping({**base, "integration": "lytics", "lytics": {"feed": "a/b"}})
    with pytest.raises(MappingConfigError, match=r"lytics\.mode"):
        parse_mapping({**base, "integration": "lytics", "lytics": {"mode": "full"}})


def test_the_example_delta_file_maps_with_the_example_delta_config() -> None:
    config = load_mapping(EXAMPLE_DELTA_MAPPING_PATH)
    rows = [orjson.loads(line) for line in EXAMPLE_DELTA_PATH.read_text(encoding="utf-8").splitlines()]
    updates = [LyticsTransformer(config).map_row(SourceRow(POSITION, row)) for row in rows]
    assert not any(update.issues for update in updates)
    assert change(updates[-1]) == MemberChange(
        "audience_membership", add=("lytics_all",), remove=("lytics_new",), limit=25
    )
