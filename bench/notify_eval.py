"""Notify send-time evaluation: a simulated workspace whose users' engagement hours are known.

Each simulated user has a true share of activity per local hour, one curve for weekdays and one for
weekends: a morning and an evening peak around their sub-segment's peaks, sharper or flatter, plus a
floor. A year of engagement events is drawn from those curves (most users sparse, some noise at
random hours, some users whose habits moved in the last three months, machine opens on delivery of
monthly campaigns for mail clients that prefetch). Sending at local hour h earns a user the share
pi(h) / max pi of their best possible engagement, so a policy's figure is the mean over users of
that share (1.0 would be every user at their true best hour of the whole day).

Policies on the send date, inside the program's window (08:00-21:00 local, 15-minute slots):
fixed 10:00; random slots (the exact expectation); Braze's Intelligent Timing rule (each user's
single most engaged hour of day when they have >= 5 events, else the workspace's most popular
hour, both inside the window); ours (the planner); and the oracle (each user's true best hour).

The first setting goes the full way: an opt-in export CSV (hashed e-mails, sends, machine opens that
the export cannot flag) is written and read back through the opt-in reader and the planner's join.
The other settings vary the generator (sparsity, noise, sub-segment strength, user spread, peak
sharpness) and feed the model the same events in memory; the spread over settings is reported, the
model's hyperparameters are fitted on each setting's data alone.

    .venv/bin/python bench/notify_eval.py [--users 100000] [--settings all|base] [--json out.json]

Planning CPU (process time of fitting and planning, not of the simulation) is reported per million
users, scaled from the users planned.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from harness import write_json

from cdpbridge.integrations.notify.hashing import email_sha256
from cdpbridge.integrations.notify.model import GroupKey
from cdpbridge.integrations.notify.observations import EngagementKind, Observation
from cdpbridge.integrations.notify.optin import OPTIN_COLUMNS, load_optin_history
from cdpbridge.integrations.notify.planner import PlanInputs, PlanReport, PlanUser, join_history, plan
from cdpbridge.integrations.notify.program import ProgramConfig
from cdpbridge.records import RowIssue

WEEKDAY_SEND = date(2026, 12, 8)  # a Tuesday
WEEKEND_SEND = date(2026, 12, 12)  # a Saturday
NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
WINDOW = ("08:00", "21:00")
ZONES = (
    ("America/New_York", 0.28),
    ("America/Chicago", 0.10),
    ("America/Los_Angeles", 0.14),
    ("Europe/London", 0.14),
    ("Europe/Berlin", 0.16),
    ("Asia/Kolkata", 0.06),
    ("Asia/Kathmandu", 0.02),
    ("Australia/Sydney", 0.06),
    ("America/Sao_Paulo", 0.04),
)
SEGMENTS = (("active", 1.0, 0.6), ("inactive", 0.25, 0.4))  # name, activity factor, share of users
SUB_SEGMENTS = ("low", "mid", "high", "vip")
KINDS = (
    (EngagementKind.EMAIL_OPEN, 0.65),
    (EngagementKind.EMAIL_CLICK, 0.20),
    (EngagementKind.PURCHASE, 0.10),
    (EngagementKind.PUSH_OPEN, 0.05),
)
OPTIN_EVENT_TYPE = {
    EngagementKind.EMAIL_OPEN: "open",
    EngagementKind.EMAIL_CLICK: "click",
    EngagementKind.PURCHASE: "purchase",
    EngagementKind.PUSH_OPEN: "open",
}
IT_MIN_EVENTS = 5


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    mean_events: float = 8.0  # engagement events per active user per year (log-normal spread)
    noise: float = 0.15  # share of events at uniformly random hours
    segment_strength: float = 1.5  # sd (hours) of sub-segment peaks around the workspace's
    user_spread: float = 1.5  # sd (hours) of a user's peaks around their sub-segment's
    user_mix_spread: float = 0.2  # sd of a user's morning/evening balance around their sub-segment's
    sharpness: float = 2.5  # von Mises concentration of a peak (higher: narrower)
    weekend_shift: float = 1.5  # mean hours the weekend peaks come later than the weekday ones
    machine_share: float = 0.3  # users whose mail client opens every message on delivery
    drift_share: float = 0.1  # users whose peaks moved in the last 90 days
    seed: int = 17


SETTINGS = (
    Setting("base"),
    Setting("sparse", mean_events=3.0),
    Setting("dense", mean_events=25.0),
    Setting("noisy", noise=0.4),
    Setting("weak-segments", segment_strength=0.3),
    Setting("strong-segments", segment_strength=3.0),
    Setting("diffuse-users", user_spread=3.0, sharpness=1.5),
    Setting("homogeneous-users", user_spread=0.5, user_mix_spread=0.05),
    Setting("flat-days", sharpness=1.0),
    Setting("drifting", drift_share=0.4),
)


@dataclass(slots=True)
class SimUser:
    external_id: str
    email: str
    zone: str
    group: GroupKey
    # true activity shares per local hour: weekday, weekend (as of the send date)
    truth: tuple[list[float], list[float]]
    observations: list[Observation]
    machine_opens: list[tuple[int, str]]  # (occurred_at, campaign_id)
    sends: list[tuple[int, str]]  # (sent_at, campaign_id): every user got the monthly campaigns


def _curve(morning: float, evening: float, morning_weight: float, sharpness: float) -> list[float]:
    def bump(center: float) -> list[float]:
        values = [
            math.exp(sharpness * math.cos(2 * math.pi * (hour + 0.5 - center) / 24)) for hour in range(24)
        ]
        total = sum(values)
        return [value / total for value in values]

    first, second = bump(morning), bump(evening)
    mixed = [0.01 + morning_weight * a + (1 - morning_weight) * b for a, b in zip(first, second, strict=True)]
    total = sum(mixed)
    return [value / total for value in mixed]


def _user_curves(
    morning: float, evening: float, morning_weight: float, weekend_shift: float, sharpness: float
) -> tuple[list[float], list[float]]:
    """Weekday and weekend curves: at weekends the peaks come later and the evening weighs more."""
    return (
        _curve(morning, evening, morning_weight, sharpness),
        _curve(morning + weekend_shift, evening + weekend_shift * 0.5, 1 - morning_weight * 0.7, sharpness),
    )


def _draw_hour(rng: random.Random, shares: Sequence[float], noise: float) -> int:
    if rng.random() < noise:
        return rng.randrange(24)
    return rng.choices(range(24), weights=shares)[0]


def simulate(setting: Setting, users: int) -> list[SimUser]:
    rng = random.Random(setting.seed)
    zone_names = [name for name, _ in ZONES]
    zone_weights = [weight for _, weight in ZONES]
    zones = {name: ZoneInfo(name) for name in zone_names}
    # Workspace peaks: 8:30 and 20:00; each sub-segment moves them and weighs them its own way.
    groups: dict[GroupKey, tuple[float, float, float, float, float]] = {}
    for segment, _, _ in SEGMENTS:
        for sub in SUB_SEGMENTS:
            groups[GroupKey(segment, sub)] = (
                8.5 + rng.gauss(0, setting.segment_strength),
                20.0 + rng.gauss(0, setting.segment_strength),
                min(0.9, max(0.1, 0.5 + rng.gauss(0, 0.25 * min(1.0, setting.segment_strength)))),
                setting.weekend_shift + rng.gauss(0, 0.5 * setting.segment_strength),
                rng.uniform(0.5, 1.5),  # activity factor
            )
    now_s = int(NOW.timestamp())
    year_start = NOW - timedelta(days=365)
    drift_from = now_s - 90 * 86_400
    campaign_sends = [
        (
            datetime(year_start.year, year_start.month, 5, 15, tzinfo=UTC) + timedelta(days=30 * month),
            f"c{month}",
        )
        for month in range(1, 13)
    ]
    sigma = 1.0
    result: list[SimUser] = []
    for index in range(users):
        pick = rng.random()
        segment, segment_factor = ("active", 1.0) if pick < SEGMENTS[0][2] else ("inactive", SEGMENTS[1][1])
        sub = rng.choice(SUB_SEGMENTS)
        group = GroupKey(segment, sub)
        morning, evening, weight, shift, sub_factor = groups[group]
        sharp = setting.sharpness * math.exp(rng.gauss(0, 0.3))

        m = morning + rng.gauss(0, setting.user_spread)
        e = evening + rng.gauss(0, setting.user_spread)
        w = min(0.95, max(0.05, weight + rng.gauss(0, setting.user_mix_spread)))
        weekend_shift = shift + rng.gauss(0, 0.5)
        old = _user_curves(m, e, w, weekend_shift, sharp)
        drifted = rng.random() < setting.drift_share
        new = (
            _user_curves(m + rng.gauss(0, 3.0), e + rng.gauss(0, 3.0), w, weekend_shift, sharp)
            if drifted
            else old
        )
        zone_name = rng.choices(zone_names, weights=zone_weights)[0]
        zone = zones[zone_name]
        external_id = f"u{index:07d}"
        rate = (
            setting.mean_events * segment_factor * sub_factor * math.exp(rng.gauss(-sigma * sigma / 2, sigma))
        )
        count = _poisson(rng, rate)
        observations: list[Observation] = []
        for _ in range(count):
            day = year_start.date() + timedelta(days=rng.randrange(365))
            weekend = day.weekday() >= 5
            local_start = datetime(day.year, day.month, day.day, tzinfo=zone)
            recent = local_start.timestamp() >= drift_from
            curves = new if recent else old
            hour = _draw_hour(rng, curves[1 if weekend else 0], setting.noise)
            local = local_start + timedelta(hours=hour, minutes=rng.randrange(60))
            # Wall-clock arithmetic on an aware datetime: the local hour is what was drawn.
            occurred = local.astimezone(UTC)
            kind = rng.choices([k for k, _ in KINDS], weights=[p for _, p in KINDS])[0]
            observations.append(
                Observation(external_id, kind, int(occurred.timestamp()), day.weekday() * 24 + hour)
            )
        sends = [(int(sent.timestamp()), campaign) for sent, campaign in campaign_sends]
        machine: list[tuple[int, str]] = []
        if rng.random() < setting.machine_share:
            machine = [(sent + rng.randrange(1, 30), campaign) for sent, campaign in sends]
        result.append(
            SimUser(
                external_id,
                f"  User.{index}@Example.COM ",
                zone_name,
                group,
                new,
                observations,
                machine,
                sends,
            )
        )
    return result


def _poisson(rng: random.Random, mean: float) -> int:
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


# -- policies ---------------------------------------------------------------------------------------


def window_hours() -> list[int]:
    start = int(WINDOW[0][:2])
    end = int(WINDOW[1][:2])
    return list(range(start, end))


def engagement(user: SimUser, hour: int, weekend: bool) -> float:
    shares = user.truth[1 if weekend else 0]
    return shares[hour] / max(shares)


def intelligent_timing(users: Sequence[SimUser], hours: Sequence[int]) -> list[int]:
    """Each user's single most engaged hour of day (>= 5 events), else the workspace's most popular."""
    workspace = [0] * 24
    for user in users:
        for observation in user.observations:
            workspace[observation.hour_of_week % 24] += 1
    popular = max(hours, key=lambda hour: (workspace[hour], -hour))
    chosen = []
    for user in users:
        if len(user.observations) < IT_MIN_EVENTS:
            chosen.append(popular)
            continue
        counts = [0] * 24
        for observation in user.observations:
            counts[observation.hour_of_week % 24] += 1
        chosen.append(max(hours, key=lambda hour: (counts[hour], -hour)))
    return chosen


def sub_segment_oracle(users: Sequence[SimUser], hours: Sequence[int], weekend: bool) -> float:
    by_group: dict[GroupKey, list[float]] = {}
    for user in users:
        totals = by_group.setdefault(user.group, [0.0] * 24)
        for hour in hours:
            totals[hour] += engagement(user, hour, weekend)
    return sum(max(totals[hour] for hour in hours) for totals in by_group.values()) / len(users)


def program(send_date: date) -> ProgramConfig:
    return ProgramConfig.model_validate(
        {
            "program": "bench",
            "campaign_id": "campaign",
            "segment_id": "segment",
            "send_date": send_date,
            "window": {"start": WINDOW[0], "end": WINDOW[1]},
            "default_time_zone": "America/New_York",
        }
    )


def in_memory_inputs(users: Sequence[SimUser]) -> PlanInputs:
    return PlanInputs(
        users=[PlanUser(user.external_id, None, user.zone) for user in users],
        zones={user.external_id: user.zone for user in users},
        groups={user.external_id: user.group for user in users},
        histories={user.external_id: user.observations for user in users if user.observations},
        report=PlanReport(),
    )


def write_optin_export(users: Sequence[SimUser], path: Path) -> int:
    """The opt-in export of the simulated year: engagement in local time, sends and machine opens in Z.

    Every user got the monthly campaigns, so every user is in the export with their groups."""
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as output:
        writer = csv.writer(output, lineterminator="\n")
        writer.writerow(OPTIN_COLUMNS)
        for user in users:
            digest = email_sha256(user.email)
            zone = ZoneInfo(user.zone)
            segment, sub = user.group.segment, user.group.sub_segment
            for observation in user.observations:
                local = datetime.fromtimestamp(observation.occurred_at, zone)
                writer.writerow(
                    (digest, segment, sub, OPTIN_EVENT_TYPE[observation.kind], local.isoformat(), "")
                )
                rows += 1
            for sent_at, campaign in user.sends:
                sent = datetime.fromtimestamp(sent_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                writer.writerow((digest, segment, sub, "send", sent, campaign))
            for occurred_at, campaign in user.machine_opens:
                opened = datetime.fromtimestamp(occurred_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                writer.writerow((digest, segment, sub, "open", opened, campaign))
            rows += len(user.sends) + len(user.machine_opens)
    return rows


@dataclass(slots=True)
class Figures:
    fixed_10: float
    random: float
    intelligent_timing: float
    ours: float
    oracle: float
    # Every user at their sub-segment's truly best hour: the most that group knowledge alone gives.
    sub_segment_oracle: float

    def ratios(self) -> dict[str, float]:
        return {
            "ours_vs_intelligent_timing": round(self.ours / self.intelligent_timing, 3),
            "ours_vs_oracle": round(self.ours / self.oracle, 3),
        }


def evaluate(
    users: Sequence[SimUser], inputs: PlanInputs, send_date: date
) -> tuple[Figures, dict[str, Any], float]:
    weekend = send_date.weekday() >= 5
    hours = window_hours()
    started = time.process_time()
    planned = plan(program(send_date), inputs, NOW)
    cpu = time.process_time() - started
    ours_hour = {row.external_id: int(row.local_time[11:13]) for row in planned.rows}
    it_hours = intelligent_timing(users, hours)
    count = len(users)
    figures = Figures(
        fixed_10=sum(engagement(user, 10, weekend) for user in users) / count,
        random=sum(sum(engagement(user, hour, weekend) for hour in hours) / len(hours) for user in users)
        / count,
        intelligent_timing=sum(
            engagement(user, hour, weekend) for user, hour in zip(users, it_hours, strict=True)
        )
        / count,
        ours=sum(engagement(user, ours_hour[user.external_id], weekend) for user in users) / count,
        oracle=sum(max(engagement(user, hour, weekend) for hour in hours) for user in users) / count,
        sub_segment_oracle=sub_segment_oracle(users, hours, weekend),
    )
    hyper = planned.model.hyperparameters
    fitted = {
        "half_life_days": hyper.half_life_days if math.isfinite(hyper.half_life_days) else "inf",
        "user_strength": round(hyper.user_strength, 2),
        "sub_segment_strength": round(hyper.sub_segment_strength, 1),
        "segment_strength": round(hyper.segment_strength, 1),
        "day_strength": round(hyper.day_strength, 1),
        "hour_kernel": list(hyper.hour_kernel),
        "cross_day_type_weight": hyper.cross_day_type_weight,
        "by_basis": planned.report.by_basis,
    }
    return figures, fitted, cpu


def _rounded(figures: Figures) -> dict[str, float]:
    return {key: round(value, 4) for key, value in asdict(figures).items()}


def run_setting(setting: Setting, users_count: int, *, through_csv: bool) -> dict[str, Any]:
    started = time.monotonic()
    users = simulate(setting, users_count)
    simulated_s = time.monotonic() - started
    result: dict[str, Any] = {"setting": asdict(setting), "simulate_s": round(simulated_s, 1)}
    result["events"] = sum(len(user.observations) for user in users)
    result["users_with_5_or_more"] = sum(1 for user in users if len(user.observations) >= IT_MIN_EVENTS)
    if through_csv:
        with tempfile.TemporaryDirectory(prefix="notify-eval-") as directory:
            path = Path(directory) / "optin.csv"
            result["optin_rows"] = write_optin_export(users, path)
            issues: list[RowIssue] = []
            read_started = time.process_time()
            history = load_optin_history([str(path)], issues.append)
            result["optin_read_cpu_s"] = round(time.process_time() - read_started, 2)
            result["optin_rejects"] = len(issues)
            segment_users = [
                PlanUser(user.external_id, email_sha256(user.email), user.zone) for user in users
            ]
            inputs = join_history(program(WEEKDAY_SEND), segment_users, optin=history)
        kept = sum(len(observations) for observations in inputs.histories.values())
        result["machine_opens_written"] = sum(len(user.machine_opens) for user in users)
        result["engagement_kept_after_machine_open_filter"] = kept
    else:
        inputs = in_memory_inputs(users)
    weekday, fitted, cpu = evaluate(users, inputs, WEEKDAY_SEND)
    result["weekday"] = {**_rounded(weekday), **weekday.ratios()}
    result["fitted"] = fitted
    result["plan_cpu_s"] = round(cpu, 2)
    result["plan_cpu_s_per_million"] = round(cpu * 1_000_000 / users_count, 1)
    weekend, _, _ = evaluate(users, inputs, WEEKEND_SEND)
    result["weekend"] = {**_rounded(weekend), **weekend.ratios()}
    return result


def million_plan_cpu(setting: Setting, users_count: int, target: int) -> dict[str, Any]:
    """Plans ``target`` users (the simulated users repeated under new ids; their histories shared, not
    copied) and returns the process time of fitting and planning them."""
    users = simulate(setting, users_count)
    copies = -(-target // users_count)
    plan_users: list[PlanUser] = []
    zones: dict[str, str] = {}
    groups: dict[str, GroupKey] = {}
    histories: dict[str, list[Observation]] = {}
    for copy in range(copies):
        for user in users:
            if len(plan_users) >= target:
                break
            external_id = f"{user.external_id}-{copy}"
            plan_users.append(PlanUser(external_id, None, user.zone))
            zones[external_id] = user.zone
            groups[external_id] = user.group
            if user.observations:
                histories[external_id] = user.observations
    inputs = PlanInputs(plan_users, zones, groups, histories, PlanReport())
    started = time.process_time()
    planned = plan(program(WEEKDAY_SEND), inputs, NOW)
    cpu = time.process_time() - started
    return {
        "users": len(planned.rows),
        "events": sum(len(history) for history in histories.values()),
        "plan_cpu_s": round(cpu, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--settings", default="all", help="all, or comma-separated names")
    parser.add_argument(
        "--plan-users", type=int, default=1_000_000, help="users planned for the CPU figure (0: skip)"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    names = [setting.name for setting in SETTINGS]
    chosen = (
        SETTINGS
        if args.settings == "all"
        else tuple(s for s in SETTINGS if s.name in args.settings.split(","))
    )
    if not chosen:
        parser.error(f"unknown settings; known: {', '.join(names)}")
    results = []
    for index, setting in enumerate(chosen):
        print(f"-- {setting.name}", file=sys.stderr, flush=True)
        outcome = run_setting(setting, args.users, through_csv=index == 0)
        results.append(outcome)
        day = outcome["weekday"]
        print(
            f"{setting.name:16} fixed10 {day['fixed_10']:.3f}  random {day['random']:.3f}  "
            f"IT {day['intelligent_timing']:.3f}  ours {day['ours']:.3f}  oracle {day['oracle']:.3f}  "
            f"sub-segment oracle {day['sub_segment_oracle']:.3f}  "
            f"ours/IT {day['ours_vs_intelligent_timing']:.3f}  ours/oracle {day['ours_vs_oracle']:.3f}  "
            f"weekend ours/IT {outcome['weekend']['ours_vs_intelligent_timing']:.3f} "
            f"ours/oracle {outcome['weekend']['ours_vs_oracle']:.3f}  "
            f"plan CPU {outcome['plan_cpu_s']:.1f} s  fitted {outcome['fitted']}",
            flush=True,
        )
    million = None
    if args.plan_users:
        print(f"-- planning {args.plan_users:,} users", file=sys.stderr, flush=True)
        million = million_plan_cpu(chosen[0], args.users, args.plan_users)
        print(
            f"planned {million['users']:,} users ({million['events']:,} events) "
            f"in {million['plan_cpu_s']} CPU-s"
        )
    base = results[0]
    versus_it = [r[day]["ours_vs_intelligent_timing"] for r in results for day in ("weekday", "weekend")]
    versus_oracle = [r[day]["ours_vs_oracle"] for r in results for day in ("weekday", "weekend")]
    summary = {
        "users": args.users,
        "window": list(WINDOW),
        **{
            key: base["weekday"][key]
            for key in ("fixed_10", "random", "intelligent_timing", "ours", "oracle")
        },
        "ours_vs_intelligent_timing": base["weekday"]["ours_vs_intelligent_timing"],
        "ours_vs_oracle": base["weekday"]["ours_vs_oracle"],
        "spread": {
            "settings": len(results),
            "ours_vs_intelligent_timing_min": min(versus_it),
            "ours_vs_intelligent_timing_median": statistics.median(versus_it),
            "ours_vs_intelligent_timing_max": max(versus_it),
            "ours_vs_oracle_min": min(versus_oracle),
            "ours_vs_oracle_median": statistics.median(versus_oracle),
            "ours_vs_oracle_max": max(versus_oracle),
        },
        "plan_cpu_s_per_million": (
            round(million["plan_cpu_s"] * 1_000_000 / million["users"], 1)
            if million
            else max(r["plan_cpu_s_per_million"] for r in results)
        ),
        "plan_measured": million or "scaled from the settings' runs",
        "settings": results,
    }
    write_json(args.json, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
