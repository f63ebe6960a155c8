"""devstack/processes.py: the worker environment and whole-group process cleanup."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from devstack.processes import group_alive, start_group, stop_group, worker_env

# A leader that ignores SIGTERM and forks a grandchild that ignores it too (like the SDK's
# heartbeat daemon outliving its worker).
STUBBORN = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
if os.fork() == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(60)
    os._exit(0)
print("up", flush=True)
time.sleep(60)
"""


def test_worker_env_keeps_the_sdk_placeholders() -> None:
    """Webhook URLs carry literal $ID / $RUNPOD_POD_ID for the SDK to replace (runpod.md §3.6)."""
    env = worker_env("http://127.0.0.1:8101/", "local", "wkr1", api_key="k")
    base = "http://127.0.0.1:8101/v2/local"
    assert env["RUNPOD_WEBHOOK_GET_JOB"] == f"{base}/job-take/$ID?gpu=TEST"
    assert env["RUNPOD_WEBHOOK_POST_OUTPUT"] == f"{base}/job-done/$RUNPOD_POD_ID/$ID?gpu=TEST"
    assert env["RUNPOD_WEBHOOK_POST_STREAM"] == f"{base}/job-stream/$RUNPOD_POD_ID/$ID?gpu=TEST"
    assert env["RUNPOD_WEBHOOK_PING"] == f"{base}/ping/$RUNPOD_POD_ID?gpu=TEST"
    assert env["RUNPOD_POD_ID"] == "wkr1" and env["RUNPOD_AI_API_KEY"] == "k"
    assert env["RUNPOD_SKIP_AUTO_SYSTEM_CHECKS"] == env["RUNPOD_SKIP_GPU_CHECK"] == "true"
    assert env["RUNPOD_LOG_LEVEL"] == "INFO"


def test_stop_group_kills_the_whole_group_even_when_sigterm_is_ignored(tmp_path: Path) -> None:
    """A leader and grandchild that ignore SIGTERM are SIGKILLed together after the grace time."""
    out = (tmp_path / "out.txt").open("wb")
    proc = start_group([sys.executable, "-c", STUBBORN], dict(os.environ), stdout=out)
    deadline = time.monotonic() + 10
    while b"up" not in (tmp_path / "out.txt").read_bytes():
        assert time.monotonic() < deadline, "child never started"
        time.sleep(0.02)
    assert os.getpgid(proc.pid) == proc.pid  # its own group
    started = time.monotonic()
    code = stop_group(proc, timeout=0.5)
    assert code == -signal.SIGKILL
    assert 0.4 <= time.monotonic() - started < 3
    deadline = time.monotonic() + 2
    while group_alive(proc):  # the grandchild is reparented to init, which reaps it
        assert time.monotonic() < deadline, "grandchild survived"
        time.sleep(0.02)
    out.close()


def test_stop_group_returns_the_exit_code_of_a_polite_child() -> None:
    """A child that exits on SIGTERM is not waited on for the whole grace period."""
    proc = start_group([sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ))
    time.sleep(0.2)
    started = time.monotonic()
    assert stop_group(proc, timeout=5) == -signal.SIGTERM
    assert time.monotonic() - started < 2
