"""The Notify evaluation: its simulator, its baselines and the opt-in round trip, on a small workspace."""

from __future__ import annotations

from notify_eval import (
    WEEKDAY_SEND,
    Setting,
    engagement,
    in_memory_inputs,
    intelligent_timing,
    run_setting,
    simulate,
    window_hours,
)


def test_simulated_users_have_curves_histories_and_groups() -> None:
    users = simulate(Setting("test", mean_events=6.0), 300)
    assert len({user.external_id for user in users}) == 300
    for user in users:
        for curve in user.truth:
            assert abs(sum(curve) - 1.0) < 1e-9
        assert all(0 <= o.hour_of_week < 168 for o in user.observations)
    assert any(not user.observations for user in users)  # some users have no history at all
    assert any(user.machine_opens for user in users)
    assert simulate(Setting("test", mean_events=6.0), 300)[7].observations == users[7].observations


def test_intelligent_timing_rule() -> None:
    users = simulate(Setting("test", mean_events=10.0), 200)
    hours = window_hours()
    chosen = intelligent_timing(users, hours)
    sparse = {hour for user, hour in zip(users, chosen, strict=True) if len(user.observations) < 5}
    assert len(sparse) == 1  # everyone under five events gets the workspace's hour
    dense = next(user for user in users if len(user.observations) >= 5)
    counts = [0] * 24
    for observation in dense.observations:
        counts[observation.hour_of_week % 24] += 1
    assert counts[chosen[users.index(dense)]] == max(counts[hour] for hour in hours)


def test_a_setting_through_the_opt_in_export_orders_the_policies() -> None:
    result = run_setting(Setting("test"), 1500, through_csv=True)
    assert result["optin_rejects"] == 0
    # Every machine open written was recognised and left out.
    assert result["engagement_kept_after_machine_open_filter"] == result["events"]
    for day in ("weekday", "weekend"):
        figures = result[day]
        assert figures["oracle"] >= max(figures["ours"], figures["intelligent_timing"], figures["fixed_10"])
        assert figures["oracle"] >= figures["sub_segment_oracle"]
        assert figures["ours"] > figures["random"]
    assert sum(result["fitted"]["by_basis"].values()) == 1500


def test_engagement_is_a_share_of_the_best_hour() -> None:
    user = simulate(Setting("test"), 1)[0]
    assert max(engagement(user, hour, False) for hour in range(24)) == 1.0
    assert in_memory_inputs([user]).zones[user.external_id] == user.zone
    assert WEEKDAY_SEND.weekday() == 1
