"""End to end, as a user runs it: `python -m devstack` (what `make run` starts) brings up the
engine simulator, the RunPod emulator, the real runpod SDK worker and the gateway; the curl it
prints returns the engine's text, which travelled gateway → local RunPod → SDK worker → engine."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_make_run_prints_a_curl_that_returns_engine_text() -> None:
    """READY line, then the printed curl answers with the engine's text through the SDK worker."""
    ports = {name: free_port() for name in ("PORT", "DEVSTACK_RUNPOD_PORT", "DEVSTACK_ENGINE_PORT")}
    env = {
        **os.environ,
        **{k: str(v) for k, v in ports.items()},
        "OLLAMA_BASE_URL": f"http://127.0.0.1:{free_port()}",  # no Ollama: use the simulator
        "LOG_FORMAT": "json",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        ready = curl = None
        deadline = time.monotonic() + 90
        assert proc.stdout is not None
        while time.monotonic() < deadline and curl is None:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("READY"):
                ready = line
            elif ready and line.startswith("curl "):
                curl = line.strip()
        assert ready and curl, "".join(lines[-40:])
        assert f"gateway=http://127.0.0.1:{ports['PORT']}" in ready and "simulator=yes" in ready

        started = time.monotonic()
        out = subprocess.run(shlex.split(curl), capture_output=True, text=True, timeout=30)
        elapsed = time.monotonic() - started
        reply = json.loads(out.stdout)
        [result] = reply["results"]
        assert result["name"] == "lookup_rent" and result["toolCallId"] == "call_1"

        base = f"http://127.0.0.1:{ports['DEVSTACK_RUNPOD_PORT']}"
        jobs = httpx.get(f"{base}/_emulator/jobs", timeout=5).json()["jobs"]
        [job] = [j for j in jobs if j["input"].get("type") == "tool"]
        assert job["worker_id"] == "local-worker-1", "not run by the real SDK worker"
        assert job["status"] == "COMPLETED"
        engine_text = "".join(piece.get("text", "") for piece in job["output"]).strip()
        assert engine_text and result["result"] == engine_text
        assert elapsed < 10
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait()
    assert code == 0, "".join(lines[-40:])
    # Every process the launcher started has gone with it (no orphaned heartbeat child).
    leftover = subprocess.run(
        ["pgrep", "-f", f"--port {ports['DEVSTACK_RUNPOD_PORT']}"], capture_output=True, text=True
    )
    assert leftover.stdout.strip() == ""
