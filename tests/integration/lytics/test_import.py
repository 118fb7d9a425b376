"""Lytics audiences through `cdpbridge run` into the emulator: three snapshots in a row end with
every user's lytics_segments equal to its memberships, data points equal to the membership changes
(the first snapshot counting per existing_users), a repeated snapshot writes nothing, and Lytics'
own delta shape ends in the same state."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from cdpbridge.integrations.lytics import EXAMPLE_MAPPING_PATH
from cdpbridge_local.cli import main

from ..emulator_admin import API_KEY, Braze

pytestmark = pytest.mark.integration

Memberships = dict[str, list[str]]

# Three consecutive snapshots of one feed: entries, exits, a user who left every audience
# (LY-2 in the second), users absent from a snapshot (LY-3 from the second, LY-2 from the third),
# a user coming back (LY-3), a new user (LY-4).
SNAPSHOTS: list[Memberships] = [
    {"LY-1": ["lytics_all", "lytics_new"], "LY-2": ["lytics_all"], "LY-3": ["high_value", "lytics_all"]},
    {"LY-1": ["lytics_all", "lytics_known"], "LY-2": [], "LY-4": ["lytics_all", "cart_abandoners"]},
    {"LY-1": ["lytics_known"], "LY-3": ["lytics_all"], "LY-4": ["cart_abandoners", "high_value", "vip"]},
]
USERS = ("LY-1", "LY-2", "LY-3", "LY-4")


def pairs(memberships: Mapping[str, list[str]]) -> set[tuple[str, str]]:
    return {(user, audience) for user, audiences in memberships.items() for audience in audiences}


def write_snapshot(path: Path, memberships: Memberships) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["external_id", "audiences"])
        for user, audiences in memberships.items():
            writer.writerow([user, "|".join(audiences)])
    return path


def write_pairs(path: Path, memberships: Memberships) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["external_id", "audience"])
        for user, audience in sorted(pairs(memberships)):
            writer.writerow([user, audience])
    return path


def write_delta(path: Path, before: Memberships, after: Memberships) -> Path:
    lines = []
    for user in sorted(set(before) | set(after)):
        old, new = set(before.get(user, [])), set(after.get(user, []))
        change: dict[str, list[str]] = {}
        if new - old:
            change["add"] = sorted(new - old)
        if old - new:
            change["remove"] = sorted(old - new)
        if change:
            lines.append(orjson.dumps({"external_id": user, "lytics_segments": change}))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


class Lytics:
    """`cdpbridge run` of Lytics files with one state file and one config."""

    def __init__(self, tmp_path: Path, braze: Braze, config: str, name: str = "audience_membership") -> None:
        self.tmp_path = tmp_path
        self.braze = braze
        self.config = tmp_path / f"{name}.yaml"
        self.config.write_text(config, encoding="utf-8")
        self.reports = tmp_path / "reports"

    def run(self, path: Path, *, exit_code: int = 0) -> dict[str, Any]:
        before = set(self.reports.rglob("*.json")) if self.reports.exists() else set()
        argv = [
            "run",
            str(path),
            "--config",
            str(self.config),
            "--state",
            str(self.tmp_path / "state.sqlite3"),
            "--report-dir",
            str(self.reports),
            "--braze-url",
            self.braze.url,
            "--api-key",
            API_KEY,
            "--quiet",
        ]
        assert main(argv) == exit_code
        (report_path,) = set(self.reports.rglob("*.json")) - before
        report: dict[str, Any] = orjson.loads(report_path.read_bytes())
        return report

    def segments(self) -> dict[str, set[str]]:
        held = {}
        for user in USERS:
            profile = self.braze.user(user)
            held[user] = set(profile["attributes"].get("lytics_segments") or []) if profile else set()
        return held


def config(*, existing_users: bool = True, **lytics: Any) -> str:
    """The example config with ``existing_users`` and other ``lytics`` keys changed."""
    document = yaml.safe_load(EXAMPLE_MAPPING_PATH.read_text(encoding="utf-8"))
    document["lytics"].update(existing_users=existing_users, **lytics)
    text: str = yaml.safe_dump(document)
    return text


def expected(memberships: Memberships) -> dict[str, set[str]]:
    return {user: set(memberships.get(user, [])) for user in USERS}


def test_three_snapshots_end_with_every_users_segments_equal_to_its_memberships(
    tmp_path: Path, braze: Braze
) -> None:
    lytics = Lytics(tmp_path, braze, config(existing_users=True))
    previous: Memberships = {}
    for day, memberships in enumerate(SNAPSHOTS, 1):
        points_before = braze.stats()["data_points"]

        # When the day's snapshot runs
        report = lytics.run(write_snapshot(tmp_path / f"audience_membership_2026-11-0{day}.csv", memberships))

        # Then Braze holds exactly the memberships, and paid one data point per change
        assert lytics.segments() == expected(memberships)
        changes = len(pairs(memberships) ^ pairs(previous))
        assert braze.stats()["data_points"] - points_before == changes
        assert report["data_points_sent"] == changes
        assert report["status"] == "completed" and report["rows_rejected"] == 0
        previous = memberships
    assert report["snapshot_members_absent"] == 2  # LY-2's lytics_all was removed with its empty row

    # And the last snapshot again, under another file name, writes nothing
    stats_before = braze.stats()
    again = lytics.run(write_snapshot(tmp_path / "audience_membership_2026-11-04.csv", SNAPSHOTS[-1]))
    assert braze.stats()["requests"] == stats_before["requests"]
    assert braze.stats()["data_points"] == stats_before["data_points"]
    assert (again["data_points_sent"], again["users_written"]) == (0, 0)


def test_without_existing_users_the_first_snapshot_only_records(tmp_path: Path, braze: Braze) -> None:
    lytics = Lytics(tmp_path, braze, config(existing_users=False))

    # When the first snapshot runs, nothing is sent
    requests_before = braze.stats()["requests"]
    first = lytics.run(write_snapshot(tmp_path / "audience_membership_2026-11-01.csv", SNAPSHOTS[0]))
    assert braze.stats()["requests"] == requests_before
    assert first["data_points_sent"] == 0
    assert lytics.segments() == expected({})

    # Then the next snapshots send only entries and exits
    held: dict[str, set[str]] = expected({})
    previous = SNAPSHOTS[0]
    for day, memberships in enumerate(SNAPSHOTS[1:], 2):
        points_before = braze.stats()["data_points"]
        lytics.run(write_snapshot(tmp_path / f"audience_membership_2026-11-0{day}.csv", memberships))
        for user, audience in pairs(memberships) - pairs(previous):
            held[user].add(audience)
        for user, audience in pairs(previous) - pairs(memberships):
            held[user].discard(audience)
        assert lytics.segments() == held
        assert braze.stats()["data_points"] - points_before == len(pairs(memberships) ^ pairs(previous))
        previous = memberships
    # LY-1 entered lytics_known after the first snapshot: the only membership Braze ends with for it
    assert held["LY-1"] == {"lytics_known"}


def test_one_row_per_user_and_audience_ends_in_the_same_state(tmp_path: Path, braze: Braze) -> None:
    lytics = Lytics(tmp_path, braze, config(audience_column="audience"))
    previous: Memberships = {}
    for day, memberships in enumerate(SNAPSHOTS, 1):
        points_before = braze.stats()["data_points"]
        lytics.run(write_pairs(tmp_path / f"pairs_2026-11-0{day}.csv", memberships))
        assert lytics.segments() == expected(memberships)
        assert braze.stats()["data_points"] - points_before == len(pairs(memberships) ^ pairs(previous))
        previous = memberships


def test_the_delta_shape_gives_the_same_end_state(tmp_path: Path, braze: Braze) -> None:
    delta_config = (
        "version: 1\nintegration: lytics\nsource: {format: jsonl}\n"
        "identifier: {column: external_id, as: external_id}\nlytics: {mode: delta}\n"
    )
    lytics = Lytics(tmp_path, braze, delta_config, name="lytics_delta")
    previous: Memberships = {}
    for day, memberships in enumerate(SNAPSHOTS, 1):
        points_before = braze.stats()["data_points"]
        report = lytics.run(write_delta(tmp_path / f"delta_{day}.jsonl", previous, memberships))
        assert lytics.segments() == expected(memberships)
        assert braze.stats()["data_points"] - points_before == len(pairs(memberships) ^ pairs(previous))
        assert report["rows_rejected"] == 0
        previous = memberships

    # And a delta sent twice changes nothing the second time
    points_before = braze.stats()["data_points"]
    lytics.run(write_delta(tmp_path / "delta_again.jsonl", SNAPSHOTS[1], SNAPSHOTS[2]))
    assert braze.stats()["data_points"] == points_before


def test_a_user_over_the_array_maximum_is_reported_with_the_audiences_not_kept(
    tmp_path: Path, braze: Braze
) -> None:
    lytics = Lytics(tmp_path, braze, config(array_maximum=3))
    report = lytics.run(
        write_snapshot(tmp_path / "big.csv", {"LY-1": ["a", "b", "c", "d", "e"], "LY-2": ["a"]})
    )
    assert lytics.segments()["LY-1"] == {"a", "b", "c"}
    assert lytics.segments()["LY-2"] == {"a"}
    assert report["rejects_by_reason"] == {"over the array maximum": 1}
    rejects = Path(report["rejects_file"]).read_text(encoding="utf-8")
    assert "not kept: d, e" in rejects and "audiences" in rejects


def test_a_row_whose_audiences_cannot_be_read_keeps_the_users_memberships(
    tmp_path: Path, braze: Braze
) -> None:
    lytics = Lytics(tmp_path, braze, config())
    lytics.run(write_snapshot(tmp_path / "day1.csv", {"LY-1": ["a", "b"], "LY-2": ["a"]}))

    # When the next snapshot has an unreadable audiences cell for LY-1 and drops LY-2
    path = tmp_path / "day2.csv"
    path.write_text('external_id,audiences\nLY-1,"[""a"", "\n', encoding="utf-8")
    report = lytics.run(path)

    # Then LY-1 keeps its audiences, the row is reported, and LY-2 left its audience
    assert lytics.segments()["LY-1"] == {"a", "b"}
    assert lytics.segments()["LY-2"] == set()
    assert report["rejects_by_reason"] == {"invalid audiences": 1}
    assert report["snapshot_members_absent"] == 1


def test_a_first_snapshot_that_fails_leaves_the_next_one_first(tmp_path: Path, braze: Braze) -> None:
    lytics = Lytics(tmp_path, braze, config(existing_users=False))
    # Given a first file without the audiences column: the run fails and sends nothing
    bad = tmp_path / "bad.csv"
    bad.write_text("external_id,segments\nLY-1,a\n", encoding="utf-8")
    failed = lytics.run(bad, exit_code=1)
    assert failed["status"] == "failed" and "no column 'audiences'" in failed["failure"]
    # When a good snapshot follows, it is the feed's first: recorded, nothing sent
    requests_before = braze.stats()["requests"]
    lytics.run(write_snapshot(tmp_path / "good.csv", SNAPSHOTS[0]))
    assert braze.stats()["requests"] == requests_before
