"""Worker test fixtures: an in-process engine simulator and workers wired to it (both kinds).

One simulator server per test module (``sim_server``), reset before each test (``sim``), so
modules that use it run their async tests in the module's loop (``ON_MODULE_LOOP``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from devstack.engine_sim import EngineSimConfig, SimState, create_engine_sim
from devstack.serve import serve
from gpu_worker.contract import normalize_output
from gpu_worker.engines import create_engine
from gpu_worker.handler import Worker
from gpu_worker.settings import Settings

JOBS = Path(__file__).parents[1] / "fixtures" / "jobs"
JOB_FILES = sorted(JOBS.glob("*.json"))
KINDS = ("ollama", "openai")
# fast by default: 100 ms to first token, 400 tokens/s, 40-token replies
FAST = EngineSimConfig(ttft_ms=100, tokens_per_s=400, reply_tokens=40)
ON_MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")


def load_job(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def job_file(stem: str) -> dict[str, Any]:
    return load_job(JOBS / f"{stem}.json")


@dataclass
class Sim:
    base_url: str
    state: SimState

    def engine_url(self, kind: str) -> str:
        return self.base_url + ("/v1" if kind == "openai" else "")

    def configure(self, **changes: Any) -> None:
        self.state.config = dataclasses.replace(self.state.config, **changes)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sim_server() -> AsyncIterator[Sim]:
    app = create_engine_sim(FAST)
    async with serve(app) as base_url:
        yield Sim(base_url, app.state.sim)


@pytest_asyncio.fixture(loop_scope="module")
async def sim(sim_server: Sim) -> AsyncIterator[Sim]:
    """The module's simulator, fresh (FAST config, one model, zero counts) for this test."""
    sim_server.state.reset(FAST)
    yield sim_server
    for _ in range(100):  # streams a test abandoned end before the next test counts anything
        if not sim_server.state.active:
            break
        await asyncio.sleep(0.02)


def settings_for(sim: Sim, kind: str, **env: str) -> Settings:
    base = {
        "ENGINE_KIND": kind,
        "ENGINE_URL": sim.engine_url(kind),
        "MODEL": "pete-simulator",
        "STREAM_BATCH_MS": "50",
        "ENGINE_READ_TIMEOUT_S": "2",
    }
    return Settings.from_env({**base, **env})


@pytest_asyncio.fixture(loop_scope="module")
async def make_worker(sim: Sim) -> AsyncIterator[Callable[..., Worker]]:
    """``make_worker(kind, **ENV)``: a Worker on the simulator; engines closed at teardown."""
    made: list[Worker] = []

    def make(kind: str, **env: str) -> Worker:
        settings = settings_for(sim, kind, **env)
        worker = Worker(settings, create_engine(settings))
        made.append(worker)
        return worker

    yield make
    for worker in made:
        await worker.engine.aclose()


async def run_job(worker: Worker, job_input: Any, job_id: str = "job-1") -> list[Any]:
    return [piece async for piece in worker.handle({"id": job_id, "input": job_input})]


def check_output(pieces: list, expect: dict) -> None:
    """The job's pieces hold what its example file's ``expect`` promises."""
    assert not any(isinstance(p, dict) and "error" in p for p in pieces), pieces
    kind = expect["output"]
    if kind in ("text", "tool_calls", "sse"):
        out = normalize_output(pieces)
        assert out.error is None
        if kind == "tool_calls":
            assert [c["function"]["name"] for c in out.tool_calls] == [expect["tool"]]
            assert out.finish_reason == "tool_calls"
        else:
            assert out.text.strip()
    elif kind == "results":
        (piece,) = pieces
        assert [r["toolCallId"] for r in piece["results"]] == expect["tool_call_ids"]
        assert all(r["result"] and "\n" not in r["result"] for r in piece["results"])
    elif kind == "admin":
        (piece,) = pieces
        assert piece["done"] is True and piece["admin"]["action"] in expect["shape"]
    elif kind == "models":
        (piece,) = pieces
        assert piece["object"] == "list" and piece["data"]
