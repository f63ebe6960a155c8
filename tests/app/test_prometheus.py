"""The gateway seen by a real Prometheus: promtool on our exposition and rules, a live scrape,
and the Grafana dashboard's queries against what we export (issue #6 items 2 and 3).

Needs Debian's ``prometheus`` package (``prometheus`` and ``promtool``), which
``deploy/system-deps.sh`` installs before ``make test``; without it those tests skip, saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from app.metrics import Metrics
from tests.app.conftest import stack, tool_calls_message
from tests.app.gateway_process import free_port

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
SCRAPE_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "pete-dashboard.json"
PROMTOOL, PROMETHEUS = shutil.which("promtool"), shutil.which("prometheus")
needs_prometheus = pytest.mark.skipif(
    not (PROMTOOL and PROMETHEUS),
    reason="prometheus/promtool not installed: run `bash deploy/system-deps.sh` as root "
    "(Debian: apt-get install prometheus)",
)
TOKEN = "scrape-token-0123456789"
METRIC = re.compile(r"\bpete_[a-z0-9_]+")


def promtool(*args: str, stdin: str | None = None, cwd: Path | None = None) -> str:
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, *args], input=stdin, capture_output=True, text=True, timeout=30, cwd=cwd
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def exported_series_names() -> set[str]:
    """Every series name our registry can expose (a counter's _total, a histogram's parts)."""
    names: set[str] = set()
    for family in Metrics(CollectorRegistry()).registry.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
        else:
            names.add(family.name)
    return names


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


# --------------------------------------------------------------------------- static checks


def test_the_dashboard_queries_only_metrics_we_export() -> None:
    """Every pete_* name in the Grafana dashboard is a series the gateway exports."""
    exprs = dashboard_exprs()
    assert exprs, "the dashboard has no queries"
    used = {name for expr in exprs for name in METRIC.findall(expr)}
    assert used - exported_series_names() == set()
    for signal in ("pete_turn_budget_exceeded_total", "pete_fallback_replies_total",
                   "pete_runpod_job_queue_seconds_bucket", "pete_circuit_breaker_open",
                   "pete_webhook_auth_failures_total", "pete_runpod_workers"):  # fmt: skip
        assert signal in used, f"the dashboard should show {signal}"


def test_the_dashboard_is_importable_grafana_json() -> None:
    """The dashboard has a uid, a datasource variable and panels with ids and grid positions."""
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "pete-gateway" and dashboard["schemaVersion"] >= 30
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


def test_the_alert_rules_reference_only_metrics_we_export() -> None:
    """Every pete_* name in alerts.yml is a series the gateway exports."""
    used = set(METRIC.findall(RULES.read_text()))
    assert used and used - exported_series_names() == set()


@needs_prometheus
def test_promtool_accepts_the_alert_rules_and_their_unit_tests() -> None:
    """`promtool check rules` is clean and `promtool test rules` passes for alerts.yml."""
    out = promtool("check", "rules", str(RULES))
    assert "SUCCESS: 8 rules found" in out
    promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)


@needs_prometheus
def test_promtool_accepts_the_example_scrape_config(tmp_path: Path) -> None:
    """The example prometheus.yml is valid once its token file exists."""
    token = tmp_path / "token"
    token.write_text(TOKEN)
    config = SCRAPE_CONFIG.read_text().replace("/etc/prometheus/pete-metrics-token", str(token))
    (tmp_path / "prometheus.yml").write_text(config)
    shutil.copy(RULES, tmp_path / "alerts.yml")
    promtool("check", "config", str(tmp_path / "prometheus.yml"))


@needs_prometheus
async def test_promtool_accepts_our_metrics_exposition() -> None:
    """`promtool check metrics` finds no problem in /metrics after real turns."""
    async with stack() as s:
        await s.client.post(
            "/vapi/webhook", json=tool_calls_message(("c1", "lookup_rent", {"unit": "4B"}))
        )
        await s.client.post("/vapi/webhook", json={"message": {"type": "status-update"}})
        text = (await s.client.get("/metrics")).text
    promtool("check", "metrics", stdin=text)


# --------------------------------------------------------------------------- a live scrape


@contextlib.asynccontextmanager
async def prometheus(target: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A real Prometheus scraping ``target`` every second with our alert rules loaded."""
    assert PROMETHEUS is not None
    (tmp_path / "token").write_text(TOKEN)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": "pete-gateway",
                "scrape_timeout": "900ms",
                "authorization": {"type": "Bearer", "credentials_file": str(tmp_path / "token")},
                "static_configs": [{"targets": [target]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    with (tmp_path / "prometheus.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            await until(lambda: ready(client), within_s=20)
            yield client
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def ready(client: httpx.AsyncClient) -> bool:
    try:
        return (await client.get("/-/ready")).status_code == 200
    except httpx.TransportError:
        return False


async def until(check: Any, within_s: float) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            assert result, f"not true within {within_s} s"
            return result
        await asyncio.sleep(0.2)


async def query(client: httpx.AsyncClient, promql: str) -> float | None:
    r = await client.get("/api/v1/query", params={"query": promql})
    data = r.json()
    assert data["status"] == "success", data
    result = data["data"]["result"]
    return float(result[0]["value"][1]) if result else None


@needs_prometheus
async def test_prometheus_scrapes_the_gateway_and_sees_a_turn(tmp_path: Path) -> None:
    """Prometheus scrapes /metrics with the token (up == 1) and sees the turn counter grow."""
    async with stack(METRICS_TOKEN=TOKEN) as s, prometheus(s.gateway_url[7:], tmp_path) as prom:

        async def up() -> bool:
            return await query(prom, 'up{job="pete-gateway"}') == 1.0

        await until(up, within_s=15)
        turns = 'sum(pete_webhook_requests_total{type="tool-calls",outcome="ok"}) or vector(0)'
        before = await query(prom, turns)
        r = await s.client.post(
            "/vapi/webhook", json=tool_calls_message(("c1", "lookup_rent", {"unit": "4B"}))
        )
        assert r.status_code == 200 and "Emulated result" in r.json()["results"][0]["result"]

        async def counted() -> bool:
            return await query(prom, turns) == (before or 0) + 1

        await until(counted, within_s=10)
        duration = 'sum(pete_turn_duration_seconds_count{route="tool-calls"})'
        assert await query(prom, duration) == 1.0
        rules = (await prom.get("/api/v1/rules")).json()["data"]["groups"]
        assert [len(g["rules"]) for g in rules if g["name"] == "pete-gateway"] == [8]
