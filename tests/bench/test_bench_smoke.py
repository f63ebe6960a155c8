"""The benchmark harness runs end to end at a tiny size (issue #7): CI proves `make bench` works.

Measures nothing worth reading: it starts the real processes (emulator, gateway, reference
gateway, load generator) on loopback for a few seconds each and checks that every scenario
produced its summary, the goals table and the report files. Plots are optional (matplotlib is in
the ``bench`` extra, not in ``dev``), so they are not required here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.goals import GOALS
from bench.scenarios.profile import summarise
from bench.scenarios.soak import knee
from bench.stats import percentile, spread

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("overhead", "throughput", "scale", "faults", "soak", "fuzz")

pytestmark = pytest.mark.e2e


def test_a_tiny_run_writes_every_summary_and_the_goals_table(tmp_path: Path) -> None:
    """`python -m bench --profile tiny` runs each scenario and writes JSON and Markdown."""
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--profile", "tiny", "--only", ",".join(SCENARIOS),
         "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    results = json.loads((tmp_path / "results.json").read_text())
    for name in SCENARIOS:
        assert "failed" not in results["scenarios"][name], results["scenarios"][name]
    assert results["scenarios"]["overhead"]["cases"]["1"]["errors"] == 0
    assert results["scenarios"]["scale"]["all_answered"] is True
    fuzz = results["scenarios"]["fuzz"]
    assert fuzz["operations"] >= 17 and fuzz["requests"] > 0
    assert fuzz["server_errors"] == 0 and fuzz["unhandled_exceptions"] == 0, fuzz
    assert results["machine"]["cpu_model"] and results["machine"]["versions"]["starlette"]
    assert len(results["goals"]) == len(GOALS)
    report = (tmp_path / "results.md").read_text()
    assert "## Goals (issue #7)" in report and "## Throughput" in report
    assert "## Fuzzing: schemathesis" in report


def test_percentiles_interpolate_between_ranks() -> None:
    """p50 of 1..4 is 2.5; an empty sample has no percentile."""
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([], 99) is None


def test_spread_reports_median_and_range_of_rounds() -> None:
    """Rounds become median (min-max), ignoring rounds that produced nothing."""
    assert spread([3.0, None, 1.0, 2.0]) == {
        "median": 2.0, "min": 1.0, "max": 3.0, "rounds": [1.0, 2.0, 3.0],
    }  # fmt: skip


def test_the_knee_is_the_last_rate_served_in_time() -> None:
    """The sweep's knee stops at the first rate that falls behind or builds a standing queue."""
    points = [
        {"offered_per_s": 100, "achieved_per_s": 100, "p50_ms": 2.0},
        {"offered_per_s": 200, "achieved_per_s": 199, "p50_ms": 3.0},
        {"offered_per_s": 300, "achieved_per_s": 299, "p50_ms": 400.0},
        {"offered_per_s": 400, "achieved_per_s": 399, "p50_ms": 3.0},
    ]
    assert knee(points) == 200
    assert knee([{"offered_per_s": 100, "achieved_per_s": 50, "p50_ms": 2.0}]) is None


def test_profile_summary_folds_collapsed_stacks_by_package() -> None:
    """py-spy's raw stacks become own-time and inclusive shares per package."""
    raw = (
        "run (asyncio/runners.py:1);verify (app/vapi/auth.py:9);digest (hmac.py:3) 3\n"
        "run (asyncio/runners.py:1);send (httpx/_client.py:5) 1\n"
    )
    s = summarise(raw)
    assert s["samples"] == 4
    assert s["own_by_package"] == {"hmac": 0.75, "httpx": 0.25}
    assert s["package_share"]["app"] == 0.75
