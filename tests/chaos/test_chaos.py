"""The chaos suite, small size: every integration's traffic through the local stack while Braze
fails in every way, the function is killed and messages come twice; Braze must end exactly as the
input files say (docs/operations.md, "Failure guarantees"). The large size: bench/chaos.py."""

from __future__ import annotations

import pytest

from cdpbridge_local.chaos import SCENARIOS, SMALL, run_chaos

pytestmark = pytest.mark.chaos


def test_every_integration_survives_faults_kills_and_duplicate_deliveries(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given every scenario's traffic, landed while the emulator, the workers and the queues misbehave
    report = run_chaos(SMALL, SCENARIOS)
    with capsys.disabled():
        print("\n" + report.summary())
    # Then nothing differs from the state the input files call for
    assert report.mismatches == []
    # And the run did meet what it claims to survive (the seed makes these counts repeatable)
    assert {"status_429", "status_502_html", "drop_connection", "apply_then_drop", "slow"} <= set(
        report.faults
    )
    assert {"status_500", "status_503"} & set(report.faults)
    assert report.kills.get("mid_request", 0) > 0
    assert report.kills.get("after_apply", 0) > 0
    assert any(point.startswith("checkpoint_") for point in report.kills)
    assert report.duplicates_delivered.get("s3_notification", 0) > 0
    assert sum(report.window_hits.values()) > 0
    assert report.rows_rejected > 0
    # And every integration's traffic went through (the exports write no rows of their own)
    assert {row["scenario"] for row in report.scenarios if row["rows"] > 0} == {
        scenario.name for scenario in SCENARIOS if not scenario.name.endswith("-export")
    }
