"""``python -m app`` as a child process, for what only a real process shows: the lines on its
stdout/stderr, signals and graceful drain, several uvicorn workers.

``async with gateway_process(env, tmp_path) as gw:`` starts the gateway (or another ``command``
that should serve it, e.g. the Procfile's) on a free loopback port with ``env`` on top of a clean
environment, waits until ``/healthz`` answers, and yields a
:class:`GatewayProcess`; on exit the process is stopped (SIGTERM, then SIGKILL) if still alive.
Output goes to files, so a chatty process can never block on a full pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
# Variables of the outer environment that would change how the child behaves.
_SCRUBBED = ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir", "WEB_CONCURRENCY", "PORT")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class GatewayProcess:
    proc: asyncio.subprocess.Process
    base_url: str
    port: int
    stdout_path: Path
    stderr_path: Path

    def stdout_lines(self) -> list[str]:
        return self.stdout_path.read_text().splitlines()

    def stderr_lines(self) -> list[str]:
        return self.stderr_path.read_text().splitlines()

    def records(self) -> list[dict[str, Any]]:
        """Every stdout line parsed as JSON (fails the test on a line that is not)."""
        return [json.loads(line) for line in self.stdout_lines() if line.strip()]

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    async def wait(self, within_s: float) -> int:
        """The exit code, once the process has ended (TimeoutError after ``within_s``)."""
        return await asyncio.wait_for(self.proc.wait(), within_s)


def child_env(env: Mapping[str, str], port: int) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    return {**base, "HOST": "127.0.0.1", "PORT": str(port), "PYTHONUNBUFFERED": "1", **env}


async def wait_until_serving(
    base_url: str, proc: asyncio.subprocess.Process, within_s: float
) -> None:
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient(timeout=1) as client:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise RuntimeError(f"python -m app exited early with code {proc.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{base_url}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise TimeoutError(f"python -m app did not serve {base_url} within {within_s} s")


@contextlib.asynccontextmanager
async def gateway_process(
    env: Mapping[str, str],
    tmp_path: Path,
    *,
    command: Sequence[str] = (sys.executable, "-m", "app"),
    cwd: Path = ROOT,
    start_within_s: float = 20.0,
) -> AsyncIterator[GatewayProcess]:
    port = int(env.get("PORT") or free_port())
    stdout_path, stderr_path = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *command,
            cwd=cwd,
            env=child_env(env, port),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    gateway = GatewayProcess(proc, f"http://127.0.0.1:{port}", port, stdout_path, stderr_path)
    try:
        await wait_until_serving(gateway.base_url, proc, start_within_s)
        yield gateway
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await gateway.wait(15)
            except TimeoutError:
                proc.kill()
                await gateway.wait(5)
