"""One benchmark run: its sizes (:class:`Profile`), CPU layout, processes and collected results.

:class:`Bench` owns the run directory (logs, emulator configs), the load generator and every
process it starts, and stops them all on exit. The ``start_*`` helpers bring up the pieces the
scenarios combine:

* the RunPod emulator (``python -m devstack.emulator``; virtual worker and fault mixes by config;
  like the engine simulator it runs under :mod:`bench.gcwrap`, a lazier cyclic GC),
* the gateway (``python -m bench.server --app gateway``: :func:`app.factory.build_app` with every
  production feature on: HMAC verification, Prometheus metrics, JSON logs to a file),
* the minimal reference gateway (``--app reference``),
* the engine simulator and the real SDK worker (``python -m gpu_worker``).

CPU layout on this 2-core machine: the gateway (or any server under test) alone on CPU 0; the
upstream (emulator, engine simulator, worker) and the load generator share CPU 1. With three or
more CPUs the load generator gets its own; with one, nothing is pinned.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import PY, LoadGen, Proc, free_port, http_get, http_post, start
from devstack.processes import stop_groups, worker_env

API_KEY = "rp-bench-key"
ENDPOINT = "local"
LIFTED = "10000000"  # per-10 s rate: the emulator has no limit, so the gateway's must not bind


@dataclass(frozen=True, slots=True)
class Profile:
    """How big each measurement is. ``full`` stays under ~15 min on 2 cores."""

    name: str
    overhead_requests: tuple[tuple[int, int], ...]  # (concurrency, requests per round)
    overhead_rounds: int
    warmup: int
    throughput_s: float
    throughput_rounds: int
    throughput_concurrency: tuple[int, ...]
    profile_s: float
    scale_turns: int
    scale_job_s: float
    scale_rounds: int
    fault_turns: int
    fault_rate: float
    fault_budget_ms: int
    fault_cold_s: tuple[float, float]
    stream_turns: int
    soak_s: float
    soak_cache_entries: int  # IDEMPOTENCY_MAX_ENTRIES in the soak; filled before it starts
    sweep_s: float
    sweep_fractions: tuple[float, ...]
    peers_s: float
    peers_rounds: int
    fuzz_examples: int  # schemathesis examples per operation and generation mode


PROFILES = {
    "full": Profile(
        name="full",
        overhead_requests=((1, 500), (16, 3000), (64, 4000)),
        overhead_rounds=5,
        warmup=200,
        throughput_s=6.0,
        throughput_rounds=3,
        throughput_concurrency=(16, 64),
        profile_s=10.0,
        scale_turns=2000,
        scale_job_s=2.0,
        scale_rounds=2,
        fault_turns=500,
        fault_rate=20.0,
        fault_budget_ms=6000,
        fault_cold_s=(2.0, 30.0),
        stream_turns=40,
        soak_s=60.0,
        soak_cache_entries=10_000,
        sweep_s=5.0,
        sweep_fractions=(0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5),
        peers_s=6.0,
        peers_rounds=3,
        fuzz_examples=400,
    ),
    "quick": Profile(
        name="quick",
        overhead_requests=((1, 200), (16, 1000), (64, 1500)),
        overhead_rounds=3,
        warmup=100,
        throughput_s=3.0,
        throughput_rounds=2,
        throughput_concurrency=(16, 64),
        profile_s=5.0,
        scale_turns=2000,
        scale_job_s=2.0,
        scale_rounds=1,
        fault_turns=150,
        fault_rate=25.0,
        fault_budget_ms=6000,
        fault_cold_s=(2.0, 30.0),
        stream_turns=15,
        soak_s=15.0,
        soak_cache_entries=10_000,
        sweep_s=3.0,
        sweep_fractions=(0.5, 0.75, 1.0, 1.25, 1.5),
        peers_s=3.0,
        peers_rounds=2,
        fuzz_examples=100,
    ),
    "tiny": Profile(  # the CI smoke test: proves the harness works, measures nothing
        name="tiny",
        overhead_requests=((1, 30), (16, 160)),
        overhead_rounds=1,
        warmup=10,
        throughput_s=0.5,
        throughput_rounds=1,
        throughput_concurrency=(16,),
        profile_s=0.0,
        scale_turns=200,
        scale_job_s=0.5,
        scale_rounds=1,
        fault_turns=30,
        fault_rate=60.0,
        fault_budget_ms=1500,
        fault_cold_s=(2.0, 4.0),
        stream_turns=3,
        soak_s=1.0,
        soak_cache_entries=100,
        sweep_s=0.5,
        sweep_fractions=(0.5, 1.0),
        peers_s=1.0,
        peers_rounds=1,
        fuzz_examples=3,
    ),
}


@dataclass(frozen=True, slots=True)
class Layout:
    gateway: str | None
    upstream: str | None
    loadgen: str | None

    @classmethod
    def detect(cls) -> Layout:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) >= 3:
            return cls(str(cpus[0]), str(cpus[1]), ",".join(map(str, cpus[2:])))
        if len(cpus) == 2:
            return cls(str(cpus[0]), str(cpus[1]), str(cpus[1]))
        return cls(None, None, None)


@dataclass
class Bench:
    profile: Profile
    out_dir: Path
    layout: Layout = field(default_factory=Layout.detect)
    keep_logs: bool = False
    show_progress: bool = field(default_factory=lambda: sys.stderr.isatty())
    results: dict[str, Any] = field(default_factory=dict)
    run_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pete-bench-")))
    hmac_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    peer_venv: Path | None = None
    _procs: list[Proc] = field(default_factory=list)
    _loadgen: LoadGen | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def loadgen(self) -> LoadGen:
        if self._loadgen is None:
            self._loadgen = LoadGen(
                cpus=self.layout.loadgen, log_dir=self.run_dir, show_progress=self.show_progress
            )
        return self._loadgen

    def say(self, text: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        self.stop_all()
        if self._loadgen is not None:
            self._loadgen.close()
            self._loadgen = None
        if not self.keep_logs:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def stop(self, *procs: Proc) -> None:
        """Stop these process groups together (one shared grace period)."""
        stop_groups([proc.popen for proc in procs], 8.0)
        for proc in procs:
            if proc in self._procs:
                self._procs.remove(proc)

    def stop_all(self) -> None:
        self.stop(*list(self._procs))

    @contextlib.contextmanager
    def running(self, *procs: Proc) -> Iterator[None]:
        try:
            yield
        finally:
            self.stop(*procs)

    def _track(self, proc: Proc) -> Proc:
        self._procs.append(proc)
        return proc

    # ------------------------------------------------------------------ processes

    def start_emulator(self, name: str = "emulator", **config: Any) -> Proc:
        """The RunPod emulator; ``config`` is its JSON form (``virtual``, ``faults``, ...)."""
        port = free_port()
        cfg = {
            "api_key": API_KEY,
            "runsync_retention_s": 2,  # the gateway never re-reads a /runsync result
            "run_retention_s": 300,
            **config,
        }
        path = self.run_dir / f"{name}.json"
        path.write_text(json.dumps(cfg))
        cmd = [PY, "-m", "bench.gcwrap", "devstack.emulator", "--host", "127.0.0.1"]
        cmd += ["--port", str(port)]
        cmd += ["--endpoint-id", ENDPOINT, "--config", str(path)]
        root = f"http://127.0.0.1:{port}"
        proc = start(
            name,
            cmd,
            {"LOG_FORMAT": "json"},
            cpus=self.layout.upstream,
            log_dir=self.run_dir,
            probe=f"{root}/v2/{ENDPOINT}/health",
            probe_headers={"Authorization": f"Bearer {API_KEY}"},
            url=f"{root}/v2/{ENDPOINT}",
        )
        proc.extra["root"] = root
        proc.extra["config"] = cfg
        return self._track(proc)

    def gateway_env(
        self, upstream: str, *, transport: str = "aiohttp", lift: bool = True, **extra: str
    ) -> dict[str, str]:
        """Production settings: HMAC verification on, JSON logs, metrics (always on)."""
        env = {
            "RUNPOD_ENDPOINT_URL": upstream,
            "RUNPOD_API_KEY": API_KEY,
            "VAPI_HMAC_SECRET": self.hmac_secret,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            "TOOL_BUDGET_MS": "6000",
            "RUNPOD_HTTP_TRANSPORT": transport,
        }
        if lift:
            for op in ("RUNSYNC", "RUN", "STATUS", "STREAM"):
                env[f"RUNPOD_{op}_RATE_PER_10S"] = LIFTED
        env.update(extra)
        return env

    def start_gateway(self, name: str, upstream: str, **kwargs: Any) -> Proc:
        env = self.gateway_env(upstream, **kwargs)
        return self._start_server(name, ["--app", "gateway"], env)

    def start_reference(self, name: str, upstream: str) -> Proc:
        args = ["--app", "reference", "--upstream", upstream, "--api-key", API_KEY]
        return self._start_server(name, args, {})

    def _start_server(self, name: str, args: list[str], env: dict[str, str]) -> Proc:
        port = free_port()
        log_file = self.run_dir / f"{name}.jsonl"
        cmd = [PY, "-m", "bench.server", "--port", str(port), "--log-file", str(log_file), *args]
        url = f"http://127.0.0.1:{port}"
        proc = start(
            name,
            cmd,
            env,
            cpus=self.layout.gateway,
            log_dir=self.run_dir,
            probe=f"{url}/_bench/stats",
            url=url,
        )
        proc.extra["env"] = {
            k: ("***" if "SECRET" in k or "KEY" in k else v) for k, v in env.items()
        }
        proc.extra["log_file"] = log_file
        return self._track(proc)

    def start_engine(self, *, ttft_ms: float, tokens_per_s: float, reply_tokens: int) -> Proc:
        port = free_port()
        cmd = [PY, "-m", "bench.gcwrap", "devstack.engine_sim", "--host", "127.0.0.1"]
        cmd += ["--port", str(port)]
        cmd += ["--ttft-ms", str(ttft_ms), "--tokens-per-s", str(tokens_per_s)]
        cmd += ["--reply-tokens", str(reply_tokens)]
        url = f"http://127.0.0.1:{port}"
        proc = start(
            "engine", cmd, {}, cpus=self.layout.upstream, log_dir=self.run_dir,
            probe=f"{url}/health", url=url,
        )  # fmt: skip
        proc.extra.update(ttft_ms=ttft_ms, tokens_per_s=tokens_per_s, reply_tokens=reply_tokens)
        return self._track(proc)

    def start_worker(self, emulator: Proc, engine: Proc, **extra: str) -> Proc:
        """``python -m gpu_worker`` in RunPod production mode against the emulator."""
        env = {
            **worker_env(emulator.extra["root"], ENDPOINT, "bench-worker-1", api_key=API_KEY),
            "ENGINE_KIND": "openai",
            "ENGINE_URL": f"{engine.url}/v1",
            "MODEL": "pete-simulator",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            **extra,
        }

        def serving(status: int, body: bytes) -> bool:
            if status != 200:
                return False
            workers = json.loads(body).get("workers", {})
            return workers.get("idle", 0) + workers.get("ready", 0) + workers.get("running", 0) > 0

        proc = start(
            "worker",
            [PY, "-m", "gpu_worker"],
            env,
            cpus=self.layout.upstream,
            log_dir=self.run_dir,
            probe=f"{emulator.url}/health",
            probe_headers={"Authorization": f"Bearer {API_KEY}"},
            ready=serving,
            timeout_s=60,
        )
        return self._track(proc)

    # ------------------------------------------------------------------ probes

    def server_stats(self, proc: Proc, *, reset: bool = False, raw: bool = False) -> dict[str, Any]:
        if reset:
            status, body = http_post(f"{proc.url}/_bench/reset")
        else:
            status, body = http_get(f"{proc.url}/_bench/stats" + ("?raw=1" if raw else ""))
        return json.loads(body) if status == 200 else {}

    def settings_record(self) -> dict[str, Any]:
        return {"profile": asdict(self.profile), "layout": asdict(self.layout)}
