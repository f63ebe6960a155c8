"""Where the gateway's CPU goes at 16 concurrent: py-spy on the gateway process, summarised.

``py-spy record --nonblocking --format raw`` samples the gateway (pinned to its CPU) while the
load generator holds 16 turns in flight. The collapsed stacks are kept
(``profile-gateway.txt``), and :func:`summarise` folds them into the top functions by own time and
the share of samples per package (``app``, ``starlette``, ``uvicorn``, ``httpx``, ``aiohttp``,
``structlog``, ``prometheus_client``, ...) — the bottleneck list the report prints. The reference
gateway is profiled the same way for comparison. Skipped, with a note, when py-spy is missing.
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.harness import Bench
from bench.procs import Proc, pinned
from bench.scenarios.common import closed, toolcalls_spec

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def run(bench: Bench) -> dict[str, Any]:
    p = bench.profile
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if p.profile_s <= 0:
        return {"skipped": "this profile does not profile"}
    if not Path(pyspy).exists():
        return {"skipped": "py-spy is not installed (pip install py-spy)"}
    emulator = bench.start_emulator("emulator-profile", virtual=True)
    gateway = bench.start_gateway("gateway-profile", emulator.url)
    reference = bench.start_reference("reference-profile", emulator.url)
    out: dict[str, Any] = {"duration_s": p.profile_s, "concurrency": 16}
    with bench.running(gateway, reference, emulator):
        for name, server in (("gateway", gateway), ("reference", reference)):
            raw = bench.out_dir / f"profile-{name}.txt"
            out[name] = record(bench, pyspy, server, raw)
    return out


def record(bench: Bench, pyspy: str, server: Proc, raw: Path) -> dict[str, Any]:
    p = bench.profile
    closed(
        bench, toolcalls_spec(bench, server, tag="pw", concurrency=16, requests=500), label="warm"
    )
    cmd = [pyspy, "record", "--pid", str(server.pid), "--duration", str(int(p.profile_s))]
    cmd += ["--rate", "200", "--format", "raw", "--output", str(raw), "--nonblocking"]
    spy = subprocess.Popen(
        pinned(cmd, bench.layout.upstream), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    spec = toolcalls_spec(
        bench, server, tag="prof", concurrency=16,
        duration_s=p.profile_s + 1, max_s=p.profile_s + 30,
    )  # fmt: skip
    load = closed(bench, spec, label=f"profile {server.name}", server=server)
    try:
        _, err = spy.communicate(timeout=p.profile_s + 30)
    except subprocess.TimeoutExpired:
        spy.kill()
        _, err = spy.communicate()
    if spy.returncode != 0 or not raw.exists():
        return {"skipped": f"py-spy failed: {err.decode(errors='replace')[-300:]}"}
    summary = summarise(raw.read_text())
    summary["turns_per_s_while_profiled"] = load["rate"]
    summary["cpu_util_while_profiled"] = load["server_cpu_util"]
    summary["raw_file"] = raw.name
    return summary


GENERIC = frozenset({"bench", "asyncio", "contextlib", "(native/other)", "_weakrefset", "typing"})


def summarise(collapsed: str, top: int = 20) -> dict[str, Any]:
    """Top own-time functions, own time per package, inclusive time per package and app module.

    Own shares sum to 100 %; inclusive shares count a sample once for every package (or ``app``
    module) on its stack, leaving out the ones on every stack (the probe wrapper, asyncio).
    ``Runner.run`` own time is uvloop's native loop: polling and socket system calls.
    """
    own: collections.Counter[str] = collections.Counter()
    own_pkg: collections.Counter[str] = collections.Counter()
    package: collections.Counter[str] = collections.Counter()
    module: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        own[_short(frames[-1])] += count
        own_pkg[_package(frames[-1])] += count
        for pkg in {_package(f) for f in frames} - GENERIC:
            package[pkg] += count
        for mod in {_where(_parts(f)[1]) for f in frames if _package(f) == "app"}:
            module[mod] += count

    def shares(counter: collections.Counter[str], n: int = 25) -> dict[str, float]:
        return {k: round(v / total, 4) for k, v in counter.most_common(n)} if total else {}

    return {
        "samples": total,
        "top_own": [{"function": k, "share": v} for k, v in shares(own, top).items()],
        "own_by_package": shares(own_pkg),
        "package_share": shares(package),
        "app_module_share": shares(module),
    }


def _parts(frame: str) -> tuple[str, str]:
    m = _FRAME.match(frame.strip())
    return (m.group("func"), m.group("file")) if m else (frame.strip(), "")


def _short(frame: str) -> str:
    func, path = _parts(frame)
    return f"{func} ({_where(path)})"


def _where(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3.11/", "/work/main/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def _package(frame: str) -> str:
    _, path = _parts(frame)
    where = _where(path)
    if not where or where.startswith("<"):
        return "(native/other)"
    head = where.split("/", 1)[0]
    if head.endswith(".py"):
        return head[:-3]
    return head
