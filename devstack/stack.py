"""The local stack behind ``make run``: engine, RunPod emulator, real SDK worker, gateway.

:func:`run_stack` starts, each as its own process group with its output prefixed by its name:

1. the engine: a real Ollama if one answers ``GET {OLLAMA_BASE_URL}/api/version`` within ~1 s
   (model ``OLLAMA_MODEL``, default ``llama3.2:1b``), else ``python -m devstack.engine_sim`` on
   ``DEVSTACK_ENGINE_PORT`` (11435) serving model ``pete-simulator``;
2. ``python -m devstack.emulator`` on ``DEVSTACK_RUNPOD_PORT`` (8101), endpoint ``local``, with
   an API key made up for this run;
3. ``python -m gpu_worker`` in RunPod production mode against the emulator (processes.py);
4. ``python -m app``, the gateway, on ``PORT`` (8000), pointed at the emulator.

The parent environment passes through to every child (VAPI_SECRET, LOG_LEVEL, MAX_CONCURRENCY …);
the launcher only sets what wires the pieces together. Start-up is bounded: it returns once the
gateway's ``/healthz`` answers 200 and the emulator's ``/health`` counts a live worker, or raises
:class:`StackError` naming the component that failed, after stopping everything it started.
:meth:`Stack.watch` then blocks until a stop is requested (exit 0) or a child dies (exit 1).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import httpx

from devstack.processes import start_group, stop_groups, worker_env

ENDPOINT_ID = "local"
WORKER_ID = "local-worker-1"
SIMULATOR_MODEL = "pete-simulator"
COMPONENTS = ("engine", "emulator", "worker", "gateway")
DEMO_TOOL_CALL = (
    '{"message":{"type":"tool-calls","call":{"id":"call-demo"},"toolCallList":[{"id":"call_1",'
    '"type":"function","function":{"name":"lookup_rent","arguments":{"unit":"4B"}}}]}}'
)


class StackError(RuntimeError):
    """Start-up failed; ``component`` names the piece at fault."""

    def __init__(self, component: str, problem: str) -> None:
        super().__init__(f"{component}: {problem}")
        self.component = component
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Engine:
    kind: str  # ENGINE_KIND for the worker
    url: str
    model: str
    simulated: bool


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    cmd: tuple[str, ...]
    env: Mapping[str, str] = field(repr=False)
    port: int | None = None  # must be free before start


@dataclass(frozen=True, slots=True)
class StackPlan:
    engine: Engine
    api_key: str = field(repr=False)
    emulator_url: str  # root, http://127.0.0.1:8101
    gateway_url: str
    components: tuple[Component, ...]  # in start order

    @property
    def endpoint_url(self) -> str:
        return f"{self.emulator_url}/v2/{ENDPOINT_ID}"


def detect_ollama(env: Mapping[str, str], timeout_s: float = 1.0) -> Engine | None:
    """A real Ollama answering ``/api/version`` at ``OLLAMA_BASE_URL``, or None."""
    url = env.get("OLLAMA_BASE_URL", "http://127.0.0.1:11434").rstrip("/")
    try:
        response = httpx.get(f"{url}/api/version", timeout=timeout_s)
        version = response.json().get("version") if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    if not isinstance(version, str):
        return None
    return Engine("ollama", url, env.get("OLLAMA_MODEL", "llama3.2:1b"), simulated=False)


def simulated_engine(env: Mapping[str, str]) -> Engine:
    port = _port(env, "DEVSTACK_ENGINE_PORT", 11435)
    return Engine("ollama", f"http://127.0.0.1:{port}", SIMULATOR_MODEL, simulated=True)


def plan_stack(
    env: Mapping[str, str],
    *,
    engine: Engine,
    api_key: str,
    python: str = sys.executable,
    commands: Mapping[str, Sequence[str]] | None = None,
) -> StackPlan:
    """Every child's command and environment (pure; ``commands`` replaces default commands)."""
    commands = commands or {}
    base = {**env, "PYTHONUNBUFFERED": "1"}
    base.setdefault("LOG_FORMAT", "console")  # children write to a pipe: JSON would be the default
    runpod_port = _port(env, "DEVSTACK_RUNPOD_PORT", 8101)
    gateway_port = _port(env, "PORT", 8000)
    emulator_url = f"http://127.0.0.1:{runpod_port}"
    default_cmds = {
        "engine": (python, "-m", "devstack.engine_sim", "--host", "127.0.0.1", "--port"),
        "emulator": (python, "-m", "devstack.emulator", "--host", "127.0.0.1", "--port"),
        "worker": (python, "-m", "gpu_worker"),
        "gateway": (python, "-m", "app"),
    }
    engine_port = int(engine.url.rsplit(":", 1)[1]) if engine.simulated else None
    default_cmds["engine"] += (str(engine_port),)
    default_cmds["emulator"] += (str(runpod_port), "--endpoint-id", ENDPOINT_ID)
    cmd = {name: tuple(commands.get(name, default_cmds[name])) for name in COMPONENTS}

    worker = {
        **base,
        **worker_env(emulator_url, ENDPOINT_ID, WORKER_ID, api_key=api_key),
        "RUNPOD_LOG_LEVEL": env.get("RUNPOD_LOG_LEVEL", "INFO"),
        "ENGINE_KIND": engine.kind,
        "ENGINE_URL": engine.url,
        "MODEL": engine.model,
    }
    gateway = {
        **base,
        "PORT": str(gateway_port),
        "HOST": env.get("HOST", "127.0.0.1"),
        "RUNPOD_API_KEY": api_key,
        "RUNPOD_ENDPOINT_ID": ENDPOINT_ID,
        "RUNPOD_ENDPOINT_URL": f"{emulator_url}/v2/{ENDPOINT_ID}",
    }
    components = [
        # the key goes by environment, not argv, so it stays out of `ps`
        Component("emulator", cmd["emulator"], {**base, "EMULATOR_API_KEY": api_key}, runpod_port),
        Component("worker", cmd["worker"], worker),
        Component("gateway", cmd["gateway"], gateway, gateway_port),
    ]
    if engine.simulated:
        components.insert(0, Component("engine", cmd["engine"], base, engine_port))
    return StackPlan(
        engine=engine,
        api_key=api_key,
        emulator_url=emulator_url,
        gateway_url=f"http://127.0.0.1:{gateway_port}",
        components=tuple(components),
    )


def ready_line(plan: StackPlan) -> str:
    engine = plan.engine
    return (
        f"READY gateway={plan.gateway_url} engine={engine.kind} "
        f"simulator={'yes' if engine.simulated else 'no'} engine_url={engine.url} "
        f"model={engine.model} emulator={plan.endpoint_url}"
    )


def curl_example(gateway_url: str, vapi_secret: str | None) -> str:
    """A copy-paste VAPI tool-calls webhook for the running gateway."""
    secret = ' -H "X-Vapi-Secret: $VAPI_SECRET"' if vapi_secret else ""
    return (
        f"curl -s -X POST {gateway_url}/vapi/webhook -H 'Content-Type: application/json'"
        f"{secret} -d '{DEMO_TOOL_CALL}'"
    )


class Stack:
    """The running children of a plan: start, probe, watch, stop."""

    def __init__(self, plan: StackPlan, *, out: IO[str] | None = None) -> None:
        self.plan = plan
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._out = out or sys.stdout
        self._lock = threading.Lock()
        self._pumps: list[threading.Thread] = []
        self._stopped = False

    def say(self, text: str, prefix: str = "devstack") -> None:
        with self._lock:
            self._out.write(f"{prefix:<8}| {text}\n" if prefix else f"{text}\n")
            self._out.flush()

    def start(self, component: Component) -> None:
        if component.port is not None and not _port_free(component.port):
            raise StackError(component.name, f"port {component.port} is already in use")
        self.say(f"starting {component.name}: {shlex.join(component.cmd)}")
        try:
            proc = start_group(
                component.cmd, component.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
        except OSError as exc:
            raise StackError(component.name, f"cannot start: {exc}") from exc
        self.procs[component.name] = proc
        pump = threading.Thread(target=self._pump, args=(component.name, proc), daemon=True)
        pump.start()
        self._pumps.append(pump)

    def _pump(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            self.say(raw.decode("utf-8", "replace").rstrip("\n"), prefix=name)

    def dead(self) -> tuple[str, int] | None:
        """The first child that has exited, with its exit code."""
        for name, proc in self.procs.items():
            code = proc.poll()
            if code is not None:
                return name, code
        return None

    def wait_ready(self, names: Sequence[str], deadline: float) -> None:
        """Probe each named component until all answer; StackError on death or timeout."""
        pending = list(names)
        problems = dict.fromkeys(pending, "no answer yet")
        with httpx.Client(timeout=2.0) as client:
            while pending:
                if (dead := self.dead()) is not None:
                    raise StackError(dead[0], f"exited with code {dead[1]} during start-up")
                for name in list(pending):
                    problem = self._probe(client, name)
                    if problem is None:
                        pending.remove(name)
                        self.say(f"{name} is ready")
                    else:
                        problems[name] = problem
                if pending and time.monotonic() > deadline:
                    name = pending[0]
                    raise StackError(name, f"not ready in time: {problems[name]}")
                if pending:
                    time.sleep(0.2)

    def _probe(self, client: httpx.Client, name: str) -> str | None:
        plan = self.plan
        auth = {"Authorization": f"Bearer {plan.api_key}"}
        try:
            if name == "engine":
                response = client.get(f"{plan.engine.url}/api/version")
            elif name == "gateway":
                response = client.get(f"{plan.gateway_url}/healthz")
            else:
                response = client.get(f"{plan.endpoint_url}/health", headers=auth)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if response.status_code != 200:
            return f"HTTP {response.status_code}"
        if name == "worker":
            workers = response.json().get("workers", {})
            if not (workers.get("idle") or workers.get("ready") or workers.get("running")):
                return f"no worker polling the emulator yet (workers: {workers})"
        return None

    def watch(self, stop: threading.Event) -> int:
        """Block until ``stop`` is set (0) or a child exits (1); the caller then stops all."""
        while not stop.wait(0.2):
            if (dead := self.dead()) is not None:
                self.say(f"{dead[0]} exited unexpectedly with code {dead[1]}; stopping the stack")
                return 1
        return 0

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM every group, SIGKILL what is left after ``grace_s``; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        procs = list(self.procs.values())
        if procs:
            self.say(f"stopping {', '.join(self.procs)}")
            codes = stop_groups(reversed(procs), grace_s)
            for name, code in zip(reversed(list(self.procs)), codes, strict=True):
                self.say(f"{name} stopped ({code})")
        for pump in self._pumps:
            pump.join(timeout=1.0)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_stack(
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 90.0,
    *,
    out: IO[str] | None = None,
    commands: Mapping[str, Sequence[str]] | None = None,
) -> Stack:
    """Start the whole stack and wait until it serves; the caller owns (and stops) the Stack."""
    env = dict(os.environ if env is None else env)
    deadline = time.monotonic() + ready_timeout
    engine = detect_ollama(env) or simulated_engine(env)
    plan = plan_stack(env, engine=engine, api_key=secrets.token_urlsafe(24), commands=commands)
    stack = Stack(plan, out=out)
    stack.say(f"engine: {'simulator' if engine.simulated else 'real Ollama'} at {engine.url}")
    try:
        by_name = {c.name: c for c in plan.components}
        for group in (("engine",), ("emulator",), ("worker", "gateway")):
            names = [name for name in group if name in by_name]
            for name in names:
                stack.start(by_name[name])
            stack.wait_ready(names, deadline)
    except BaseException:
        stack.stop()
        raise
    return stack


def _port(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key, "")
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise StackError("config", f"{key}={raw!r} is not a port number")
    return int(raw)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def install_stop_signals(stop: threading.Event) -> None:
    """SIGINT/SIGTERM set ``stop`` and interrupt the main thread once (a second signal while
    stopping is ignored, so the children still get stopped)."""

    def handler(signum: int, frame: Any) -> None:
        del frame
        already = stop.is_set()
        stop.set()
        if not already:
            raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m devstack``: run the stack until Ctrl-C/SIGTERM (0) or a child dies (1)."""
    del argv
    stop = threading.Event()
    install_stop_signals(stop)
    stack: Stack | None = None
    try:
        stack = run_stack(ready_timeout=float(os.environ.get("DEVSTACK_READY_TIMEOUT", "90")))
        stack.say(ready_line(stack.plan), prefix="")
        stack.say(curl_example(stack.plan.gateway_url, os.environ.get("VAPI_SECRET")), prefix="")
        code = stack.watch(stop)
    except KeyboardInterrupt:
        code = 0
    except StackError as exc:
        print(f"devstack| start-up failed: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        if stack is not None:
            with contextlib.suppress(KeyboardInterrupt):
                stack.stop()
    return code
