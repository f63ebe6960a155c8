"""Start-up fails fast: bad settings exit 2, an engine that never comes up exits 1 in time."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from gpu_worker.main import StartupError, prepare_engine
from gpu_worker.settings import Settings

from .conftest import ON_MODULE_LOOP, settings_for


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _run_worker(env: dict[str, str], timeout: float) -> tuple[subprocess.CompletedProcess, float]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "ENGINE_"))}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "gpu_worker"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done, time.monotonic() - started


@ON_MODULE_LOOP
async def test_prepare_pulls_a_missing_model_and_warms_it(sim):
    """Ollama lacking MODEL in /api/tags gets /api/pull, then one 1-token warm request."""
    settings = settings_for(sim, "ollama", MODEL="qwen-sim:0.5b")
    assert await prepare_engine(settings) == "qwen-sim:0.5b"
    paths = [path for path, _ in sim.state.requests]
    assert paths == ["/api/pull", "/api/chat"]
    assert sim.state.requests[-1][1]["options"]["num_predict"] == 1
    assert "qwen-sim:0.5b" in sim.state.models


@ON_MODULE_LOOP
async def test_prepare_serves_the_openai_engines_model_when_none_is_set(sim):
    """ENGINE_KIND=openai without MODEL serves the first model of /v1/models."""
    settings = Settings.from_env({"ENGINE_KIND": "openai", "ENGINE_URL": sim.engine_url("openai")})
    assert await prepare_engine(settings) == "pete-simulator"


@ON_MODULE_LOOP
async def test_prepare_refuses_a_model_the_openai_engine_does_not_serve(sim):
    """vLLM cannot pull: a MODEL it does not serve is a start-up error naming what it serves."""
    settings = settings_for(sim, "openai", MODEL="gpt-9")
    with pytest.raises(StartupError, match=r"not served by the engine \(serves: pete-simulator\)"):
        await prepare_engine(settings)


@ON_MODULE_LOOP
async def test_prepare_fails_when_the_warm_request_fails(sim):
    """An engine that answers health checks but fails generation never takes a job."""
    sim.configure(fault="http500")
    with pytest.raises(StartupError, match=r"while warming 'pete-simulator'.*HTTP 500"):
        await prepare_engine(settings_for(sim, "ollama"))


@ON_MODULE_LOOP
async def test_prepare_gives_up_within_its_bound():
    """No engine: StartupError after ENGINE_START_TIMEOUT_S, with the last problem."""
    settings = Settings.from_env(
        {"MODEL": "m", "ENGINE_URL": _closed_port_url(), "ENGINE_START_TIMEOUT_S": "0.5"}
    )
    started = time.monotonic()
    with pytest.raises(StartupError, match=r"not ready after 0\.5 s while waiting .*unreachable"):
        await prepare_engine(settings)
    assert time.monotonic() - started < 1.0


def test_python_m_gpu_worker_exits_1_when_the_engine_never_comes_up():
    """`python -m gpu_worker` with no engine exits non-zero soon after its bound, saying why."""
    env = {"MODEL": "m", "ENGINE_URL": _closed_port_url(), "ENGINE_START_TIMEOUT_S": "1"}
    done, elapsed = _run_worker(env, timeout=20)
    print(f"engine down: exit {done.returncode} after {elapsed:.2f} s (bound 1 s)")
    assert done.returncode == 1 and elapsed < 6
    assert "not ready after 1 s" in done.stderr


def test_python_m_gpu_worker_exits_2_listing_every_bad_setting():
    """Bad settings: exit 2 and one message naming every bad key, before any engine call."""
    done, _ = _run_worker({"ENGINE_KIND": "tgi", "MAX_CONCURRENCY": "lots"}, timeout=20)
    assert done.returncode == 2
    assert "ENGINE_KIND" in done.stderr and "MAX_CONCURRENCY" in done.stderr
