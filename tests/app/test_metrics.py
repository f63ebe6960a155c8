"""GET /metrics: the contract names, the token, label hygiene and several workers (issue #6)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from app.metrics import Metrics, prune_dead_workers, render, reset_multiprocess_dir
from tests.app.conftest import stack, tool_calls_message
from tests.app.gateway_process import GatewayProcess, free_port, gateway_process

CONTRACT = (
    "pete_webhook_requests_total",
    "pete_turn_duration_seconds",
    "pete_first_token_seconds",
    "pete_runpod_requests_total",
    "pete_runpod_job_queue_seconds",
    "pete_runpod_job_execution_seconds",
    "pete_turn_budget_exceeded_total",
    "pete_fallback_replies_total",
    "pete_inflight_turns",
    "pete_circuit_breaker_open",
    "pete_webhook_auth_failures_total",
    "pete_runpod_workers",
    "pete_runpod_jobs",
    "pete_build_info",
)


def exposed_names(text: str) -> set[str]:
    """Family names as declared (`# TYPE`) plus every sample name."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


def declared(name: str, names: set[str]) -> bool:
    base = name.removesuffix("_total")
    return name in names or base in names


def test_a_fresh_registry_declares_every_contract_name() -> None:
    """Every issue #6 metric name is declared by a fresh Metrics registry."""
    text = render(Metrics(CollectorRegistry()))[0].decode()
    missing = [name for name in CONTRACT if not declared(name, exposed_names(text))]
    assert missing == []


async def test_metrics_after_a_turn_carry_the_contract_samples() -> None:
    """After a tool-calls turn /metrics has samples for the turn, RunPod and health metrics."""
    async with stack(HEALTH_POLL_S="0.1") as s:
        r = await s.client.post(
            "/vapi/webhook", json=tool_calls_message(("c1", "lookup_rent", {"unit": "4B"}))
        )
        assert r.status_code == 200
        response = await s.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    names = exposed_names(text)
    for name in (
        "pete_webhook_requests_total",
        "pete_turn_duration_seconds_count",
        "pete_runpod_requests_total",
        "pete_runpod_job_queue_seconds_count",
        "pete_runpod_job_execution_seconds_count",
        "pete_inflight_turns",
        "pete_circuit_breaker_open",
        "pete_runpod_workers",
        "pete_runpod_jobs",
        "pete_build_info",
    ):
        assert name in names, name
    assert ({"type": "tool-calls", "outcome": "ok"}, 1.0) in samples(
        text, "pete_webhook_requests_total"
    )
    [(labels, value)] = samples(text, "pete_build_info")
    assert value == 1.0 and set(labels) == {"version", "python"}


async def test_no_label_carries_a_call_id_or_a_job_id() -> None:
    """Call ids and job ids never become label values."""
    async with stack() as s:
        message = tool_calls_message(("c1", "lookup_rent", {"unit": "4B"}))
        message["message"]["call"] = {"id": "call-7f3a9c-unique"}
        await s.client.post("/vapi/webhook", json=message)
        [job] = s.emulator.jobs()
        text = (await s.client.get("/metrics")).text
    assert "call-7f3a9c-unique" not in text
    assert job.id not in text


@pytest.mark.parametrize(
    ("header", "status"),
    [
        pytest.param(None, 401, id="missing"),
        pytest.param("Bearer wrong-token-000", 401, id="wrong"),
        pytest.param("Basic metrics-token-123", 401, id="wrong-scheme"),
        pytest.param("Bearer metrics-token-123", 200, id="right"),
    ],
)
async def test_metrics_token_is_required_when_configured(header: str | None, status: int) -> None:
    """With METRICS_TOKEN set, only the right bearer token gets the exposition."""
    async with stack(METRICS_TOKEN="metrics-token-123") as s:
        headers = {"Authorization": header} if header else {}
        r = await s.client.get("/metrics", headers=headers)
        assert r.status_code == status
        if status == 401:
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert "pete_" not in r.text
            ok = await s.client.get(
                "/metrics", headers={"Authorization": "Bearer metrics-token-123"}
            )
            assert ({"reason": "metrics_bad_token"}, 1.0) in samples(
                ok.text, "pete_webhook_auth_failures_total"
            )


def test_dead_workers_live_gauges_are_dropped(tmp_path: Path) -> None:
    """Live-gauge files of a pid that no longer runs are removed; a live pid's are kept."""
    reset_multiprocess_dir(str(tmp_path))
    dead_pid = 2**22 + 12345  # above the kernel's pid_max default
    mine = tmp_path / f"gauge_livesum_{os.getpid()}.db"
    dead = tmp_path / f"gauge_livesum_{dead_pid}.db"
    counter = tmp_path / f"counter_{dead_pid}.db"
    for f in (mine, dead, counter):
        f.write_bytes(b"")
    prune_dead_workers(str(tmp_path))
    assert mine.exists() and counter.exists() and not dead.exists()


async def test_two_workers_report_one_merged_exposition(tmp_path: Path) -> None:
    """With WEB_CONCURRENCY=2 every scrape counts the requests both workers served."""
    env = {
        "WEB_CONCURRENCY": "2",
        "RUNPOD_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}/v2/none",
        "HEALTH_POLL_S": "60",
    }
    sent = 30
    async with gateway_process(env, tmp_path) as gw:
        await both_workers_started(gw)
        for _ in range(sent):  # a fresh connection each, so the workers share them
            async with httpx.AsyncClient(base_url=gw.base_url) as client:
                r = await client.post("/vapi/webhook", json={"message": {"type": "status-update"}})
                assert r.status_code == 200
        scrapes = []
        for _ in range(4):
            async with httpx.AsyncClient(base_url=gw.base_url) as client:
                scrapes.append((await client.get("/metrics")).text)
        gw.terminate()
        assert await gw.wait(20) == 0
    for text in scrapes:
        ack = {"type": "status-update", "outcome": "ack"}
        assert samples(text, "pete_webhook_requests_total") == [(ack, float(sent))]
        assert len(samples(text, "pete_build_info")) == 1
        assert samples(text, "pete_inflight_turns") == [({}, 0.0)]
    served_by = {r["pid"] for r in gw.records() if r.get("event") == "request"}
    assert len(served_by) == 2, "both workers should have served requests"
    directory = next(r["directory"] for r in gw.records() if r["event"] == "metrics_multiprocess")
    assert not exists(directory), "the temporary multiprocess directory is removed"


async def both_workers_started(gw: GatewayProcess) -> None:
    for _ in range(200):
        # A substring count: a line still being written must not break the wait.
        if gw.stdout_path.read_text().count('"Application startup complete."') == 2:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the second worker did not start")


def exists(path: str) -> bool:
    return Path(path).exists()
