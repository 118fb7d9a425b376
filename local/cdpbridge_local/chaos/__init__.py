"""The chaos run: every integration's traffic through the local stack under faults, kills and
duplicate deliveries, checked against the state expected from the input files (tests/chaos, bench)."""

from cdpbridge_local.chaos.ledger import ExpectedState, Mismatch, TrackObjects
from cdpbridge_local.chaos.run import LARGE, SMALL, ChaosReport, ChaosSettings, WorkerKiller, run_chaos
from cdpbridge_local.chaos.scenarios import SCENARIOS, ChaosScenario, ImportScenario, ImportTraffic

__all__ = [
    "LARGE",
    "SCENARIOS",
    "SMALL",
    "ChaosReport",
    "ChaosScenario",
    "ChaosSettings",
    "ExpectedState",
    "ImportScenario",
    "ImportTraffic",
    "Mismatch",
    "TrackObjects",
    "WorkerKiller",
    "run_chaos",
]
