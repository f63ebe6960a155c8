"""Child processes for the launcher and the test suites: worker env, process groups, clean stops.

* :func:`worker_env` is the environment that points a real ``runpod.serverless.start`` worker at
  the emulator in production mode (runpod.md §3.6): the ``RUNPOD_WEBHOOK_*`` URLs keep the
  literal ``$ID`` and ``$RUNPOD_POD_ID`` placeholders the SDK replaces itself, and the fitness
  checks that would dial 8.8.8.8 or probe a GPU are skipped (§0.10).
* :func:`start_group` starts a command as the leader of a new session, hence its own process
  group, so the whole tree can be signalled at once and a terminal's Ctrl-C reaches only the
  launcher, which then stops its children in order.
* :func:`stop_group` / :func:`stop_groups` send SIGTERM to the group(s), wait, then SIGKILL the
  group(s) whatever happened: the SDK's heartbeat is a separate daemon process that outlives a
  killed worker and keeps pinging (runpod.md §3.6), so killing only the leader is not enough.

These are blocking calls; async callers run them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any


def worker_env(
    base_url: str,
    endpoint_id: str,
    worker_id: str,
    *,
    api_key: str = "fake",
    log_level: str = "INFO",
) -> dict[str, str]:
    """The ``RUNPOD_*`` variables of a production-mode SDK worker served by the emulator.

    ``base_url`` is the emulator's root (``http://127.0.0.1:8101``). Merge the result over the
    parent environment. ``RUNPOD_LOG_LEVEL`` defaults to INFO because the SDK's DEBUG default
    logs whole job inputs and outputs (runpod.md §2.11).
    """
    base = f"{base_url.rstrip('/')}/v2/{endpoint_id}"
    return {
        "RUNPOD_WEBHOOK_GET_JOB": f"{base}/job-take/$ID?gpu=TEST",
        "RUNPOD_WEBHOOK_POST_OUTPUT": f"{base}/job-done/$RUNPOD_POD_ID/$ID?gpu=TEST",
        "RUNPOD_WEBHOOK_POST_STREAM": f"{base}/job-stream/$RUNPOD_POD_ID/$ID?gpu=TEST",
        "RUNPOD_WEBHOOK_PING": f"{base}/ping/$RUNPOD_POD_ID?gpu=TEST",
        "RUNPOD_POD_ID": worker_id,
        "RUNPOD_ENDPOINT_ID": endpoint_id,
        "RUNPOD_AI_API_KEY": api_key,
        "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
        "RUNPOD_SKIP_GPU_CHECK": "true",
        "RUNPOD_LOG_LEVEL": log_level,
        "PYTHONUNBUFFERED": "1",
    }


def start_group(
    cmd: Sequence[str],
    env: Mapping[str, str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` with exactly ``env`` as the leader of its own process group."""
    return subprocess.Popen(
        list(cmd),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
    )


def signal_group(proc: subprocess.Popen[Any], sig: int) -> None:
    """Send ``sig`` to the process group led by ``proc`` (no error if it is already gone)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def stop_group(proc: subprocess.Popen[Any], timeout: float = 5.0) -> int | None:
    """SIGTERM the group, wait up to ``timeout`` s for the leader, SIGKILL the group; exit code."""
    return stop_groups([proc], timeout)[0]


def stop_groups(procs: Iterable[subprocess.Popen[Any]], timeout: float = 5.0) -> list[int | None]:
    """:func:`stop_group` for several groups at once, sharing one grace period."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    for proc in procs:
        # also after a clean exit: children of the leader (the SDK heartbeat) may linger
        signal_group(proc, signal.SIGKILL)
    codes: list[int | None] = []
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=2.0)
        codes.append(proc.returncode)
    return codes


def group_alive(proc: subprocess.Popen[Any]) -> bool:
    """Whether any process of the group led by ``proc`` still exists."""
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
