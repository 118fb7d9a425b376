"""One chaos run: every scenario's traffic through the local stack while everything fails at once.

The emulator answers with 429s, 5xx, HTML 502s, dropped connections, slow answers and requests it
applies but never answers; the function's process is SIGKILLed in the middle of a request (before
Braze applied it) and after Braze applied one (before the function could record it); S3
notifications and SQS messages are delivered twice. Killed invocations fail as crashed Lambdas do
and their messages come back after the (shortened) visibility timeout. Every draw comes from a
random.Random seeded by the settings, so a run can be repeated.

Afterwards: Braze's profiles must equal the state expected from the input files exactly, events,
purchases and increments counted once each except for the requests Braze applied whose answer was
lost (the emulator keeps them: each adds its writes once more); no message sits in a dead-letter
queue; every rejected row is in a rejects file and every object not delivered in a retry file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import requests

from cdpbridge_local.chaos.checkpoint_proxy import CheckpointKillProxy
from cdpbridge_local.chaos.ledger import (
    ExpectedState,
    TrackObjects,
    compare,
    retry_file_objects,
    unanswered_objects,
)
from cdpbridge_local.chaos.scenarios import SCENARIOS, ChaosScenario, ImportTraffic
from cdpbridge_local.emulator.core import CallerStage
from cdpbridge_local.emulator.server import EmulatorServer
from cdpbridge_local.stack import LOCAL_API_KEY, LocalStack

TEMPLATE = Path(__file__).resolve().parents[3] / "template.yaml"
# Every rate-limit window of the families the functions use, shortened from Braze's (3 s to an
# hour) so that an injected 429's X-RateLimit-Reset costs at most a second.
_SHORT_WINDOWS = ("users.track", "users.export", "lists", "users.other")


@dataclass(frozen=True, slots=True)
class ChaosSettings:
    """The run's size, its seed and how often each fault strikes."""

    rows: int  # per import scenario
    seed: int = 19
    status_429: float = 0.10
    status_500: float = 0.01
    status_503: float = 0.01
    status_502_html: float = 0.01
    drop_connection: float = 0.01
    apply_then_drop: float = 0.01
    slow_p: float = 0.03
    slow_ms: float = 300.0
    kill_mid_request: float = 0.03
    kill_after_apply: float = 0.03
    kill_during_checkpoint: float = 0.3
    max_kills: int = 2  # per kill point
    duplicate_delivery: float = 0.4
    # Objects per users.track request: small, so that a small run makes many requests (each one a
    # draw of the faults and the kills).
    track_objects_per_request: int = 10
    # Above the function timeout, as the template keeps VisibilityTimeout above the functions':
    # a killed invocation's idempotency record is then expired when its message comes back.
    function_timeout_s: int = 8
    visibility_timeout_s: int = 9
    drain_timeout_s: float = 600.0

    def emulator_faults(self) -> dict[str, float]:
        return {
            "status_429": self.status_429,
            "status_500": self.status_500,
            "status_503": self.status_503,
            "status_502_html": self.status_502_html,
            "drop_connection": self.drop_connection,
            "apply_then_drop": self.apply_then_drop,
            "slow_p": self.slow_p,
            "slow_ms": self.slow_ms,
        }


SMALL = ChaosSettings(rows=300, max_kills=2)
# Full requests (75 objects) and a longer function timeout: a chunk of rows (1,500, sent one request
# at a time) must fit in one invocation's working time (timeout minus the 5 s deadline margin), as
# it does in Lambda; otherwise every delivery times out before its checkpoint.
LARGE = ChaosSettings(
    rows=3000,
    max_kills=4,
    track_objects_per_request=75,
    function_timeout_s=25,
    visibility_timeout_s=26,
    drain_timeout_s=1200.0,
)


class WorkerKiller:
    """SIGKILLs the function at the kill points, each with the settings' probability and at most
    ``max_kills`` times per point: in the middle of a request (the emulator's caller hook, before
    the request is applied), after Braze applied a request and before it is answered (the hook
    again), and during a checkpoint write (the DynamoDB proxy, before or after the write).

    At a request it first waits ``settle_s`` on the emulator's loop (no other answer leaves
    meanwhile), then until the function's DynamoDB calls in flight are done (``wait_idle``), so that
    answers already given are recorded in the send ledger: the kill then strikes exactly the
    request the emulator counts. After a kill, the invocation that follows it (the message again, or
    an asynchronous retry) is spared, so that no message or event is killed until it reaches its
    dead-letter queue or failure destination: the run must recover, not give up.
    """

    def __init__(
        self,
        stack: LocalStack,
        settings: ChaosSettings,
        *,
        wait_idle: Callable[[float], None] = lambda timeout_s: None,
        settle_s: float = 0.1,
    ) -> None:
        self._stack = stack
        self._wait_idle = wait_idle
        self._random = random.Random(f"{settings.seed}/kills")
        self._probability = {
            "mid_request": settings.kill_mid_request,
            "after_apply": settings.kill_after_apply,
            "checkpoint_before_write": settings.kill_during_checkpoint / 2,
            "checkpoint_after_write": settings.kill_during_checkpoint / 2,
            # The Currents function's commit (events marked routed, then the file's progress).
            "currents_commit_before_write": settings.kill_during_checkpoint / 2,
            "currents_commit_after_write": settings.kill_during_checkpoint / 2,
        }
        self._max_kills = settings.max_kills
        self._settle_s = settle_s
        # Kills are spared until the stack has recorded this many invocations.
        self._spared_until = 0
        self._lock = threading.Lock()
        self.kills: Counter[str] = Counter()

    def __call__(self, stage: CallerStage, endpoint: str) -> bool:
        """The emulator's caller hook."""
        point = "mid_request" if stage is CallerStage.RECEIVED else "after_apply"
        return self.strike(point, settle_s=self._settle_s)

    def strike(self, point: str, *, settle_s: float = 0.0) -> bool:
        """Kills the busy function with the point's probability; True when it did."""
        with self._lock:
            draw = self._random.random()
            if len(self._stack.invocations) < self._spared_until:
                return False
            if self.kills[point] >= self._max_kills or draw >= self._probability[point]:
                return False
            if settle_s:
                time.sleep(settle_s)  # on the emulator's loop: blocks it on purpose (see the class doc)
                self._wait_idle(2.0)
            if self._stack.kill_busy_worker() is None:
                return False
            self.kills[point] += 1
            # The killed invocation and the one after it are recorded before kills resume.
            self._spared_until = len(self._stack.invocations) + 2
            return True


@dataclass(slots=True)
class StackAccess:
    stack: LocalStack

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        assert self.stack.emulator is not None
        response = requests.request(
            method, f"{self.stack.emulator.url}/_emulator{path}", json=body, timeout=30
        )
        response.raise_for_status()
        return response.json()

    def keys(self, prefix: str) -> list[str]:
        s3 = self.stack.s3_client
        keys: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.stack.drop_bucket, Prefix=prefix
        ):
            keys += [item["Key"] for item in page.get("Contents", [])]
        return keys

    def read(self, key: str) -> bytes:
        body: bytes = self.stack.s3_client.get_object(Bucket=self.stack.drop_bucket, Key=key)["Body"].read()
        return body

    def profiles(self) -> dict[str, dict[str, Any]]:
        profiles: dict[str, dict[str, Any]] = {}
        page = 0
        while True:
            listing = self.admin("GET", f"/users?page={page}&per_page=1000")
            profiles.update({user["external_id"]: user for user in listing["users"]})
            if (page + 1) * 1000 >= listing["total"]:
                return profiles
            page += 1


@dataclass(slots=True)
class ChaosReport:
    """The figures of a run; ``mismatches`` must be empty."""

    seed: int
    rows: int
    rows_rejected: int
    faults: dict[str, int]
    kills: dict[str, int]
    duplicates_delivered: dict[str, int]
    window_hits: dict[str, int]
    window_duplicate_objects: int
    retry_file_objects: int
    dead_letters: dict[str, int]
    invocations: int
    seconds: float
    # By function: an invocation that outlived its timeout was ended as Lambda ends it.
    timed_out: dict[str, int] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)
    # Per scenario: rows, rows rejected, window hits and objects of its users, mismatches.
    scenarios: list[dict[str, Any]] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "rows": self.rows,
            "rows_rejected": self.rows_rejected,
            "faults": self.faults,
            "faults_total": sum(self.faults.values()),
            "kills": self.kills,
            "kills_total": sum(self.kills.values()),
            "duplicates_delivered": self.duplicates_delivered,
            "duplicates_delivered_total": sum(self.duplicates_delivered.values()),
            "window_hits": self.window_hits,
            "window_hits_total": sum(self.window_hits.values()),
            "window_duplicate_objects": self.window_duplicate_objects,
            "retry_file_objects": self.retry_file_objects,
            "dead_letters": self.dead_letters,
            "invocations": self.invocations,
            "timed_out": self.timed_out,
            "seconds": round(self.seconds, 1),
            "mismatches": len(self.mismatches),
            "per_scenario": self.scenarios,
        }

    def summary(self) -> str:
        figures = self.figures()
        lines = [f"chaos run (seed {self.seed}): {self.rows} rows ({self.rows_rejected} rejected on purpose)"]
        for name in ("faults", "kills", "duplicates_delivered", "window_hits", "dead_letters"):
            detail = ", ".join(f"{key} {value}" for key, value in sorted(figures[name].items())) or "none"
            total = figures.get(f"{name}_total", sum(figures[name].values()))
            lines.append(f"  {name.replace('_', ' ')}: {total} ({detail})")
        lines += [
            f"  objects applied twice in the window: {self.window_duplicate_objects}",
            f"  objects held in retry files: {self.retry_file_objects}",
            f"  invocations: {self.invocations} (timed out: {self.timed_out or 'none'}),"
            f" {self.seconds:.1f} s",
            f"  mismatches: {len(self.mismatches)}",
            *(f"    {mismatch}" for mismatch in self.mismatches[:20]),
        ]
        if self.scenarios:
            lines.append(
                f"  {'scenario':<20} {'rows':>6} {'rejected':>8} {'window hits':>11}"
                f" {'window objects':>14} {'mismatches':>10}"
            )
            lines += [
                f"  {row['scenario']:<20} {row['rows']:>6} {row['rows_rejected']:>8}"
                f" {row['window_hits']:>11} {row['window_duplicate_objects']:>14} {row['mismatches']:>10}"
                for row in self.scenarios
            ]
        return "\n".join(lines)


def _merge_settings(
    scenarios: Iterable[ChaosScenario],
) -> tuple[dict[str, str], dict[str, dict[str, str]], dict[str, str], dict[str, int]]:
    parameters: dict[str, str] = {}
    environment: dict[str, dict[str, str]] = {}
    secrets: dict[str, str] = {}
    timeouts: dict[str, int] = {}
    for scenario in scenarios:
        parameters |= scenario.template_parameters()
        secrets |= scenario.secret_values()
        timeouts |= scenario.function_timeouts()
        for function, variables in scenario.function_environment().items():
            environment.setdefault(function, {}).update(variables)
    return parameters, environment, secrets, timeouts


def _common_environment(settings: ChaosSettings) -> dict[str, str]:
    windows = {family: {"limit": 1000, "window_s": 1} for family in ("users.track",)}
    return {
        # Retries quick enough for a test; the read timeout well above the slow answers.
        "BRAZE_RETRY_BASE_DELAY_S": "0.05",
        "BRAZE_RETRY_MAX_DELAY_S": "1",
        "BRAZE_TIMEOUT_S": "5",
        "BRAZE_RATE_LIMITS": orjson.dumps(windows).decode(),
        # The least margin the settings allow: runs pause at checkpoints and continue.
        "DEADLINE_MARGIN_MS": "5000",
        "BRAZE_TRACK_CAP_LIMIT": str(settings.track_objects_per_request),
        # One request in flight: when a request reaches Braze, every earlier answer is in the send
        # ledger (written by the sending thread before it sends the next), so a kill at a request
        # strikes exactly the one request the emulator counts, however busy the machine is.
        "BRAZE_MAX_CONCURRENCY": "1",
    }


def _rejects_problems(
    access: StackAccess, scenario: str, integration: str, traffic: ImportTraffic
) -> list[str]:
    """Every rejected row of the traffic in a rejects file of its file's run, and no other."""
    found: set[tuple[str, int]] = set()
    reported: set[str] = set()
    inbound = f"/inbound/{integration}/"
    for key in access.keys(f"reports/{integration}/"):
        if not key.endswith(".json"):
            continue
        report = orjson.loads(access.read(key))
        source = str(report.get("source", ""))
        if inbound not in source:
            continue  # not a file's run (e.g. the Segment webhook relay's)
        name = source.split(inbound, 1)[1]
        reported.add(name)
        rejects = report.get("rejects_file")
        if rejects:
            rejects_key = str(rejects).split(f"s3://{access.stack.drop_bucket}/", 1)[1]
            text = access.read(rejects_key).decode("utf-8")
            found |= {(name, int(row["row"])) for row in csv.DictReader(io.StringIO(text))}
    problems = [f"{scenario}: no report for {name}" for name, _ in traffic.files if name not in reported]
    if found != traffic.rejected_rows:
        problems.append(
            f"{scenario}: rejects not as expected: missing {sorted(traffic.rejected_rows - found)[:5]},"
            f" not expected {sorted(found - traffic.rejected_rows)[:5]}"
        )
    return problems


def _dead_letters(stack: LocalStack) -> dict[str, int]:
    counts: dict[str, int] = {}
    for resource in stack.resources.by_type("AWS::SQS::Queue"):
        if "DeadLetter" in resource.logical_id or "Failure" in resource.logical_id:
            messages = stack.peek_messages(resource.logical_id)
            if messages:
                counts[resource.logical_id] = len(messages)
    return counts


def run_chaos(
    settings: ChaosSettings,
    scenarios: Iterable[ChaosScenario] = SCENARIOS,
    *,
    template: Path = TEMPLATE,
    progress: Callable[[str], None] = lambda message: None,
) -> ChaosReport:
    chosen = list(scenarios)
    started = time.monotonic()
    killers: list[WorkerKiller] = []
    with contextlib.ExitStack() as running:
        for scenario in chosen:
            running.enter_context(scenario.running())
        parameters, environment, secrets, timeouts = _merge_settings(chosen)
        proxy = running.enter_context(
            CheckpointKillProxy(lambda point: bool(killers) and killers[0].strike(point))
        )
        stack = running.enter_context(
            LocalStack.start(
                template=template,
                parameters=parameters,
                stack_name="cdpbridge-chaos",
                env_vars={
                    "Parameters": {**_common_environment(settings), "AWS_ENDPOINT_URL_DYNAMODB": proxy.url},
                    **environment,
                },
                secret_values=secrets,
                failed_message_visibility_s=settings.visibility_timeout_s,
                function_timeout_s=settings.function_timeout_s,
                function_timeouts=timeouts,
            )
        )
        proxy.target = stack.moto_url
        access = StackAccess(stack)
        # Landing only puts objects and queues messages: nothing runs before the first drain, which
        # meets every fault. Users some integrations expect Braze to know are written before the
        # faults are on.
        expected = ExpectedState()
        traffic: dict[str, ImportTraffic] = {}
        for scenario in chosen:
            landed = scenario.land(access, settings.rows, settings.seed)
            traffic[scenario.name] = landed
            expected.merge(landed.expected)
        _write_known_users(access, traffic.values())
        access.admin(
            "PUT",
            "/config",
            {
                "seed": settings.seed,
                "faults": settings.emulator_faults(),
                "rate_limits": {family: {"window_s": 1} for family in _SHORT_WINDOWS},
            },
        )
        assert isinstance(stack.emulator, EmulatorServer)
        killer = WorkerKiller(stack, settings, wait_idle=proxy.wait_idle)
        killers.append(killer)
        stack.emulator.set_caller_hook(killer)
        duplicates = stack.arm_duplicate_deliveries(settings.duplicate_delivery, settings.seed)

        progress(f"landed {sum(t.rows for t in traffic.values())} rows; draining")
        stack.drain(timeout_s=settings.drain_timeout_s)
        for number in range(1, max((t.last_round for t in traffic.values()), default=0) + 1):
            for scenario in chosen:
                scenario.land_round(access, traffic[scenario.name], number)
            progress(f"round {number} landed; draining")
            stack.drain(timeout_s=settings.drain_timeout_s)
        for scenario in chosen:
            scenario.after_imports(access, expected)
        progress("imports drained; second phase")
        stack.drain(timeout_s=settings.drain_timeout_s)
        stack.emulator.set_caller_hook(None)
        killers.clear()
        return _verify(
            access,
            settings=settings,
            scenarios=chosen,
            traffic=traffic,
            expected=expected,
            kills=killer.kills,
            delivered=duplicates.delivered,
            started=started,
        )


def _write_known_users(access: StackAccess, traffic: Iterable[ImportTraffic]) -> None:
    """Braze's users before the run (faults are off, so each request is applied once)."""
    known = [
        {"external_id": external_id, **attributes}
        for landed in traffic
        for external_id, attributes in landed.known_users.items()
    ]
    assert access.stack.emulator is not None
    for start in range(0, len(known), 75):
        response = requests.post(
            f"{access.stack.emulator.url}/users/track",
            json={"attributes": known[start : start + 75]},
            headers={"Authorization": f"Bearer {LOCAL_API_KEY}"},
            timeout=30,
        )
        response.raise_for_status()


def _verify(
    access: StackAccess,
    *,
    settings: ChaosSettings,
    scenarios: list[ChaosScenario],
    traffic: Mapping[str, ImportTraffic],
    expected: ExpectedState,
    kills: Mapping[str, int],
    delivered: Mapping[str, int],
    started: float,
) -> ChaosReport:
    stack = access.stack
    unanswered = access.admin("GET", "/unanswered")["requests"]
    window = unanswered_objects(unanswered)
    held_back = TrackObjects()
    for key in access.keys("retry/"):
        held_back_part = retry_file_objects(access.read(key).splitlines())
        held_back.increments.update(held_back_part.increments)
        held_back.events.update(held_back_part.events)
        held_back.purchases.update(held_back_part.purchases)
    mismatches = [str(mismatch) for mismatch in compare(expected, access.profiles(), window, held_back)]
    per_scenario: list[dict[str, Any]] = []
    for scenario in scenarios:
        own = scenario.check(access, expected)
        integration = getattr(scenario, "integration", None)
        if integration is not None:
            own += _rejects_problems(access, scenario.name, integration, traffic[scenario.name])
        mismatches += own
        prefix = scenario.user_prefix
        mine = [text for text in mismatches if text.startswith(scenario.name + ":")]
        if prefix:
            mine += [text for text in mismatches if text.startswith(prefix) and text not in own]
        landed = traffic[scenario.name]
        per_scenario.append(
            {
                "scenario": scenario.name,
                "rows": landed.rows,
                "rows_rejected": len(landed.rejected_rows),
                "window_hits": sum(
                    1 for request in unanswered if prefix and _names_prefix(request.get("body"), prefix)
                ),
                "window_duplicate_objects": _window_objects_of(window, prefix) + scenario.outputs_twice(),
                "mismatches": len(mine),
            }
        )
    dead_letters = _dead_letters(stack)
    mismatches += [
        f"{queue}: {count} messages in a dead-letter queue" for queue, count in dead_letters.items()
    ]
    stats = access.admin("GET", "/stats")
    return ChaosReport(
        seed=settings.seed,
        rows=sum(landed.rows for landed in traffic.values()),
        rows_rejected=sum(len(landed.rejected_rows) for landed in traffic.values()),
        faults=dict(stats["faults"]),
        kills=dict(kills),
        duplicates_delivered=dict(delivered),
        window_hits=dict(Counter(str(request["cause"]) for request in unanswered)),
        window_duplicate_objects=window.total(),
        retry_file_objects=held_back.total(),
        dead_letters=dead_letters,
        invocations=len(stack.invocations),
        timed_out=dict(
            Counter(
                record.function_id
                for record in stack.invocations
                if (record.error or {}).get("errorType") == "Sandbox.Timedout"
            )
        ),
        seconds=time.monotonic() - started,
        mismatches=mismatches,
        scenarios=per_scenario,
    )


def _names_prefix(body: Any, prefix: str) -> bool:
    """Whether a users.track body writes a user of the prefix."""
    if not isinstance(body, dict):
        return False
    return any(
        str(item.get("external_id", "")).startswith(prefix)
        for kind in ("attributes", "events", "purchases")
        for item in body.get(kind) or ()
        if isinstance(item, dict)
    )


def _window_objects_of(window: TrackObjects, prefix: str) -> int:
    if not prefix:
        return 0
    return (
        sum(count for (user, _), count in window.events.items() if user.startswith(prefix))
        + sum(count for (user, _), count in window.purchases.items() if user.startswith(prefix))
        + sum(1 for (user, _), amount in window.increments.items() if amount and user.startswith(prefix))
    )
