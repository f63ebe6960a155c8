"""Processes of a benchmark run: start pinned, wait until ready, read ``/proc``, stop by group.

* :func:`start` runs a command (through ``taskset -c CPUS`` when pinning is possible) as the
  leader of its own process group (:func:`devstack.processes.start_group`), output to a log file,
  and waits until an HTTP probe answers 200 (bounded); :meth:`Proc.stop` ends that group only.
* :func:`cpu_seconds` and :class:`RssSampler` read ``/proc/<pid>/stat`` and ``status``.
* :class:`LoadGen` drives ``python -m bench.loadgen`` over its stdin/stdout (one JSON line per
  spec), with a hard wall-clock bound per spec, and shows progress on a TTY with tqdm.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from devstack.processes import start_group, stop_group

PY = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cmd: Sequence[str], cpus: str | None) -> list[str]:
    if cpus and shutil.which("taskset"):
        return ["taskset", "-c", cpus, *cmd]
    return list(cmd)


def http_get(
    url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    return _fetch(urllib.request.Request(url, headers=dict(headers or {})), timeout)


def http_post(url: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
    return _fetch(urllib.request.Request(url, data=b"", method="POST"), timeout)


def _fetch(request: urllib.request.Request, timeout: float) -> tuple[int, bytes]:
    """(status, body) of any answer; (0, b"") when there was none."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (OSError, ValueError):
        return 0, b""


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str = ""
    cpus: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        """The real server's pid: taskset execs the command, so the leader is the server."""
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 8.0) -> None:
        stop_group(self.popen, timeout)

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


def start(
    name: str,
    cmd: Sequence[str],
    env: Mapping[str, str],
    *,
    cpus: str | None,
    log_dir: Path,
    probe: str | None,
    probe_headers: Mapping[str, str] | None = None,
    url: str = "",
    timeout_s: float = 30.0,
    ready: Any = None,
) -> Proc:
    """Start ``cmd`` and wait for ``probe`` to answer 200 (or ``ready(status, body)`` true)."""
    log = log_dir / f"{name}.log"
    handle: IO[Any] = open(log, "ab")  # noqa: SIM115  (the child keeps it)
    popen = start_group(
        pinned(cmd, cpus),
        {**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        cwd=str(Path(__file__).resolve().parent.parent),
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    handle.close()
    proc = Proc(name, popen, log, url, cpus)
    deadline = time.monotonic() + timeout_s
    while probe is not None:
        if not proc.alive():
            raise RuntimeError(f"{name} exited during start-up:\n{proc.tail()}")
        status, body = http_get(probe, headers=probe_headers, timeout=1.0)
        if (ready(status, body) if ready else status == 200) if status else False:
            break
        if time.monotonic() > deadline:
            proc.stop()
            raise RuntimeError(f"{name} not ready after {timeout_s:g} s:\n{proc.tail()}")
        time.sleep(0.05)
    return proc


def cpu_seconds(pid: int) -> float:
    """CPU time of one process (all its threads, not its children), in seconds.

    Read from each thread's ``schedstat`` (nanoseconds of run time, exact); ``stat``'s
    utime + stime (clock ticks, sampled, and on this VM seen above 100 % of a pinned core) is
    the fallback.
    """
    total, found = 0, False
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            path = f"/proc/{pid}/task/{tid}/schedstat"
            with contextlib.suppress(OSError, ValueError, IndexError), open(path) as handle:
                total += int(handle.read().split()[0])
                found = True
    if found:
        return total / 1e9
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (all CPUs, from ``/proc/stat``)."""
    try:
        with open("/proc/stat") as handle:
            fields = handle.readline().split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def ours_busy_s(root: int | None = None) -> float:
    """CPU seconds of this process and every live descendant (the run's own processes)."""
    root = root or os.getpid()
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        cpu[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo.extend(children.get(pid, ()))
    return total


class ForeignLoad:
    """CPU used by processes outside this run while a measurement ran, in cores (0.5 = half)."""

    def __init__(self) -> None:
        self.cores: float | None = None
        self._t0 = self._busy0 = self._ours0 = 0.0

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._busy0, self._ours0 = machine_busy_s(), ours_busy_s()

    def stop(self) -> None:
        elapsed = time.monotonic() - self._t0
        foreign = (machine_busy_s() - self._busy0) - (ours_busy_s() - self._ours0)
        self.cores = round(max(0.0, foreign) / elapsed, 3) if elapsed > 0 else None


def rss_kb(pid: int | str = "self") -> dict[str, int]:
    """``VmRSS`` / ``VmHWM`` (KB) of a process."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0])
    return out


class RssSampler:
    """Samples ``VmRSS`` of ``pid`` every ``interval_s`` in a daemon thread: ``[(t_s, kb)]``."""

    def __init__(self, pid: int, interval_s: float = 0.1) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.points: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stop.is_set():
            kb = rss_kb(self.pid).get("VmRSS")
            if kb is not None:
                self.points.append((round(time.monotonic() - self._t0, 3), kb))
            self._stop.wait(self.interval_s)

    @property
    def peak_kb(self) -> int | None:
        return max((kb for _, kb in self.points), default=None)


class LoadGen:
    """One ``python -m bench.loadgen`` process for the whole run."""

    def __init__(self, *, cpus: str | None, log_dir: Path, show_progress: bool) -> None:
        self._err = open(log_dir / "loadgen.log", "ab")  # noqa: SIM115
        self.popen = subprocess.Popen(
            pinned([PY, "-m", "bench.loadgen"], cpus),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            cwd=str(Path(__file__).resolve().parent.parent),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.cpus = cpus
        self.show_progress = show_progress
        self._buf = b""

    def run(
        self,
        spec: dict[str, Any],
        *,
        label: str,
        total: int | None = None,
        on_window: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Send one spec and wait for its result (bounded by its own ``max_s`` plus a margin).

        ``on_window("start" | "end")`` is called as the measured part begins and ends, so the
        caller can read process counters over exactly that window.
        """
        assert self.popen.stdin is not None and self.popen.stdout is not None
        bound = float(spec.get("max_s") or spec.get("duration_s") or 60) + 90
        self.popen.stdin.write((json.dumps(spec) + "\n").encode())
        self.popen.stdin.flush()
        bar = _bar(label, total) if self.show_progress else None
        deadline = time.monotonic() + bound
        try:
            while True:
                line = self._readline(deadline)
                if line is None:
                    raise RuntimeError(f"load generator gave no result within {bound:g} s")
                msg = json.loads(line)
                if msg.get("type") == "window":
                    if on_window is not None:
                        on_window(msg["edge"])
                    continue
                if msg.get("type") == "progress":
                    if bar is not None:
                        bar.n = msg["done"]
                        bar.refresh()
                    continue
                if msg.get("failed"):
                    raise RuntimeError(f"load generator failed: {msg['failed']}")
                return msg
        finally:
            if bar is not None:
                bar.close()

    def _readline(self, deadline: float) -> bytes | None:
        assert self.popen.stdout is not None
        fd = self.popen.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.popen.poll() is not None:
                return None
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    return None
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.popen.stdin:
                self.popen.stdin.close()
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=5)
        self._err.close()


def _bar(label: str, total: int | None) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=label, unit="req", leave=False, dynamic_ncols=True)
