"""``python -m devstack.engine_sim``: the command the launcher and a developer run."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx


def test_cli_starts_labels_itself_and_serves(tmp_path):
    """``python -m devstack.engine_sim`` serves on the given port and says it is a simulator."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "devstack.engine_sim",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--ttft-ms",
        "10",
        "--tokens-per-s",
        "500",
        "--model",
        "cli-sim",
        "--fault",
        "none",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                tags = httpx.get(f"http://127.0.0.1:{port}/api/tags", timeout=1).json()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        assert tags["models"][0]["name"] == "cli-sim:latest"
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=10)
    assert "engine simulator, not a real model" in output
