"""The ``make run`` launcher (devstack/stack.py) with stand-ins for the engine, worker and gateway.

The emulator is the real one; the worker is the real SDK loop (sdk_echo_handler.py); engine and
gateway are dummy_http_server.py. The full stack with the real worker and gateway is covered by
the end-to-end suite.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from devstack.serve import serve
from devstack.stack import (
    Component,
    Engine,
    Stack,
    StackError,
    curl_example,
    detect_ollama,
    plan_stack,
    ready_line,
    run_stack,
)

HERE = Path(__file__).parent
REPO = HERE.parents[1]
DUMMY = str(HERE / "dummy_http_server.py")
ENGINE = Engine("ollama", "http://127.0.0.1:11435", "pete-simulator", simulated=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def processes_marked(mark: str) -> list[int]:
    """Pids whose environment carries ``DEVSTACK_TEST_MARK=mark`` (orphans included)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if f"DEVSTACK_TEST_MARK={mark}".encode() in environ.split(b"\0"):
                pids.append(int(entry.name))
    return pids


@pytest.fixture
def stack_env() -> dict[str, str]:
    """Free ports, no reachable Ollama, and a mark to find every child afterwards."""
    return {
        **os.environ,
        "OLLAMA_BASE_URL": f"http://127.0.0.1:{free_port()}",
        "DEVSTACK_ENGINE_PORT": str(free_port()),
        "DEVSTACK_RUNPOD_PORT": str(free_port()),
        "PORT": str(free_port()),
        "DEVSTACK_TEST_MARK": uuid.uuid4().hex,
    }


def stand_ins(env: dict[str, str]) -> dict[str, list[str]]:
    return {
        "engine": [sys.executable, DUMMY, env["DEVSTACK_ENGINE_PORT"]],
        "worker": [sys.executable, "-u", str(HERE / "sdk_echo_handler.py")],
        "gateway": [sys.executable, DUMMY, env["PORT"]],
    }


def test_plan_points_the_gateway_and_worker_at_the_emulator() -> None:
    """The gateway gets the emulator URL and key; the worker gets the job API and the engine."""
    env = {
        "PORT": "8010",
        "DEVSTACK_RUNPOD_PORT": "8111",
        "VAPI_SECRET": "s",
        "MAX_CONCURRENCY": "3",
    }
    plan = plan_stack(env, engine=ENGINE, api_key="key", python="py")
    parts = {c.name: c for c in plan.components}
    assert [c.name for c in plan.components] == ["engine", "emulator", "worker", "gateway"]
    assert parts["engine"].cmd == (
        "py",
        "-m",
        "devstack.engine_sim",
        "--host",
        "127.0.0.1",
        "--port",
        "11435",
    )
    assert parts["emulator"].cmd[-2:] == ("--endpoint-id", "local")
    assert parts["emulator"].env["EMULATOR_API_KEY"] == "key"
    gateway, worker = parts["gateway"].env, parts["worker"].env
    assert gateway["RUNPOD_ENDPOINT_URL"] == "http://127.0.0.1:8111/v2/local"
    assert (gateway["RUNPOD_API_KEY"], gateway["RUNPOD_ENDPOINT_ID"]) == ("key", "local")
    assert (gateway["PORT"], gateway["HOST"], gateway["VAPI_SECRET"]) == ("8010", "127.0.0.1", "s")
    assert (
        worker["RUNPOD_WEBHOOK_GET_JOB"] == "http://127.0.0.1:8111/v2/local/job-take/$ID?gpu=TEST"
    )
    assert (worker["ENGINE_KIND"], worker["ENGINE_URL"], worker["MODEL"]) == (
        "ollama",
        "http://127.0.0.1:11435",
        "pete-simulator",
    )
    assert worker["MAX_CONCURRENCY"] == "3" and worker["RUNPOD_AI_API_KEY"] == "key"
    assert "key" not in repr(plan)


def test_a_real_ollama_needs_no_engine_process() -> None:
    """With a real Ollama the plan starts no engine and the worker uses Ollama's URL and model."""
    real = Engine("ollama", "http://127.0.0.1:11434", "llama3.2:1b", simulated=False)
    plan = plan_stack({}, engine=real, api_key="k")
    assert [c.name for c in plan.components] == ["emulator", "worker", "gateway"]
    assert "simulator=no" in ready_line(plan) and "model=llama3.2:1b" in ready_line(plan)


def test_curl_example_sends_the_secret_header_only_when_one_is_set() -> None:
    """The demo curl is a VAPI tool-calls webhook; X-Vapi-Secret appears with VAPI_SECRET."""
    plain = curl_example("http://127.0.0.1:8000", None)
    assert plain.startswith("curl -s -X POST http://127.0.0.1:8000/vapi/webhook")
    assert '"type":"tool-calls"' in plain and "X-Vapi-Secret" not in plain
    assert '-H "X-Vapi-Secret: $VAPI_SECRET"' in curl_example("http://127.0.0.1:8000", "s")


async def test_detect_ollama_accepts_only_an_answering_ollama() -> None:
    """An /api/version with a version string is Ollama; a closed port or other answer is not."""

    async def version(request: object) -> JSONResponse:
        return JSONResponse({"version": "0.12.0"})

    app = Starlette(routes=[Route("/api/version", version)])
    async with serve(app) as url:
        env = {"OLLAMA_BASE_URL": url, "OLLAMA_MODEL": "qwen3:0.6b"}
        found = await asyncio.to_thread(detect_ollama, env)
    assert found == Engine("ollama", url, "qwen3:0.6b", simulated=False)
    closed = {"OLLAMA_BASE_URL": f"http://127.0.0.1:{free_port()}"}
    assert await asyncio.to_thread(detect_ollama, closed) is None


def test_run_stack_starts_everything_and_stops_every_group(stack_env: dict[str, str]) -> None:
    """run_stack returns once the gateway and a polling worker answer; stop leaves no process."""
    out = io.StringIO()
    stack = run_stack(stack_env, ready_timeout=45, out=out, commands=stand_ins(stack_env))
    try:
        assert set(stack.procs) == {"engine", "emulator", "worker", "gateway"}
        health = httpx.get(
            f"{stack.plan.endpoint_url}/health",
            headers={"Authorization": f"Bearer {stack.plan.api_key}"},
        ).json()
        assert health["workers"]["ready"] + health["workers"]["idle"] >= 1
        job = httpx.post(
            f"{stack.plan.endpoint_url}/runsync",
            headers={"Authorization": f"Bearer {stack.plan.api_key}"},
            json={"input": {"text": "through the stack"}},
            timeout=30,
        ).json()
        assert job["status"] == "COMPLETED" and job["output"] == [{"echo": "through the stack"}]
    finally:
        stack.stop(grace_s=3)
    lines = out.getvalue().splitlines()
    assert any(line.startswith("emulator| ") for line in lines)
    assert any(line.startswith("worker  | ") for line in lines)
    assert not any(line.startswith("READY") for line in lines)  # main() prints it, once
    assert processes_marked(stack_env["DEVSTACK_TEST_MARK"]) == []


def test_run_stack_names_the_component_that_died_and_cleans_up(stack_env: dict[str, str]) -> None:
    """A gateway that exits during start-up fails run_stack with its name; nothing is left."""
    commands = stand_ins(stack_env)
    commands["gateway"] = [sys.executable, "-c", "import sys; print('bad settings'); sys.exit(2)"]
    out = io.StringIO()
    with pytest.raises(StackError) as failure:
        run_stack(stack_env, ready_timeout=45, out=out, commands=commands)
    assert failure.value.component == "gateway"
    assert "exited with code 2" in str(failure.value)
    assert "gateway | bad settings" in out.getvalue()
    assert processes_marked(stack_env["DEVSTACK_TEST_MARK"]) == []


def test_run_stack_refuses_a_busy_port(stack_env: dict[str, str]) -> None:
    """A port already in use is reported against the component that needs it."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", int(stack_env["DEVSTACK_RUNPOD_PORT"])))
        busy.listen()
        with pytest.raises(StackError, match="already in use") as failure:
            run_stack(stack_env, ready_timeout=20, out=io.StringIO(), commands=stand_ins(stack_env))
    assert failure.value.component == "emulator"
    assert processes_marked(stack_env["DEVSTACK_TEST_MARK"]) == []


def test_watch_returns_1_when_a_child_dies_and_0_when_asked_to_stop() -> None:
    """A dead child ends the watch with 1; a stop request ends it with 0."""
    env = dict(os.environ)
    sleeper = Component("gateway", (sys.executable, "-c", "import time; time.sleep(60)"), env)
    quitter = Component("worker", (sys.executable, "-c", "import time; time.sleep(0.3)"), env)
    plan = plan_stack(env, engine=ENGINE, api_key="k")
    with Stack(plan, out=io.StringIO()) as stack:
        stack.start(sleeper)
        stack.start(quitter)
        assert stack.watch(threading.Event()) == 1
    with Stack(plan, out=io.StringIO()) as stack:
        stack.start(sleeper)
        stop = threading.Event()
        threading.Timer(0.3, stop.set).start()
        started = time.monotonic()
        assert stack.watch(stop) == 0
        assert time.monotonic() - started < 2


def test_main_reports_bad_configuration_and_exits_1() -> None:
    """``python -m devstack`` with a bad port setting names it and exits non-zero."""
    env = {**os.environ, "DEVSTACK_RUNPOD_PORT": "eighty", "OLLAMA_BASE_URL": "http://127.0.0.1:9"}
    result = subprocess.run(
        [sys.executable, "-m", "devstack"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "DEVSTACK_RUNPOD_PORT" in result.stderr and "READY" not in result.stdout
