"""The GPU worker's RunPod deployment files, tested without Docker (issue #5 item 5).

Docker cannot build or run images here, so instead:

* both Dockerfiles are parsed: pinned base images, the Ollama model baked in by a build-time pull,
  the ``[worker]`` extra in a venv, the start scripts as ENTRYPOINT, ``RUNPOD_LOG_LEVEL=INFO``;
  their Dockerfile-specific ``.dockerignore`` lets in what they copy and nothing else;
* the start scripts pass ``bash -n`` and are run for real: stand-in ``ollama`` / ``vllm``
  executables first on PATH serve the engine simulator where the real server would listen, and
  the worker is ``python -m gpu_worker`` from this venv, polling the RunPod emulator in production
  mode. A job sent to ``/runsync`` completes with text; SIGTERM to the script (what ``docker stop``
  and RunPod send to PID 1) ends its whole process group; an engine that dies, at start or later,
  makes the script exit non-zero;
* ``.runpod/hub.json`` and ``tests.json`` are parsed: every variable they list is read by the
  worker's settings or a start script, their defaults are valid settings, their jobs valid inputs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.processes import group_alive, start_group, stop_group, worker_env
from gpu_worker.contract import normalize_output
from gpu_worker.inputs import parse_request
from gpu_worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "deploy" / "worker"
HUB = ROOT / ".runpod"
VARIANTS = ("ollama", "vllm")
API_KEY = "deploy-test-key"
SAY_HI = {"v": 1, "type": "chat", "messages": [{"role": "user", "content": "Say hi"}]}
SIM_FLAGS = "--ttft-ms 5 --tokens-per-s 2000 --reply-tokens 12"
E2E = pytest.mark.e2e  # runs a start script: the worker, a stand-in engine, maybe the emulator

# Stand-ins for the engines. Each records its pid, argv and environment, exits with
# $FAKE_ENGINE_EXIT when that is set, and otherwise becomes the engine simulator (exec, so the
# recorded pid is the server's) on the address the real engine would listen on.
FAKE_OLLAMA = f"""#!/usr/bin/env bash
set -euo pipefail
[[ "${{1:-}}" == serve ]] || {{ echo "fake ollama: only 'serve' is faked" >&2; exit 64; }}
echo "$$" > "$FAKE_ENGINE_DIR/pid"; printf '%s\\n' "$@" > "$FAKE_ENGINE_DIR/argv"
env > "$FAKE_ENGINE_DIR/env"
[[ -z "${{FAKE_ENGINE_EXIT:-}}" ]] || exit "$FAKE_ENGINE_EXIT"
hostport="${{OLLAMA_HOST:-127.0.0.1:11434}}"
exec {sys.executable} -m devstack.engine_sim --host "${{hostport%:*}}" --port "${{hostport##*:}}" \\
    --model "$MODEL" {SIM_FLAGS}
"""
FAKE_VLLM = f"""#!/usr/bin/env bash
set -euo pipefail
[[ "${{1:-}}" == serve ]] || {{ echo "fake vllm: only 'serve' is faked" >&2; exit 64; }}
echo "$$" > "$FAKE_ENGINE_DIR/pid"; printf '%s\\n' "$@" > "$FAKE_ENGINE_DIR/argv"
env > "$FAKE_ENGINE_DIR/env"
[[ -z "${{FAKE_ENGINE_EXIT:-}}" ]] || exit "$FAKE_ENGINE_EXIT"
host=""; port=""; served=""
while (($#)); do
    case "$1" in
        --host) host=$2; shift ;;
        --port) port=$2; shift ;;
        --served-model-name) served=$2; shift ;;
    esac
    shift
done
exec {sys.executable} -m devstack.engine_sim --host "$host" --port "$port" --model "$served" \\
    {SIM_FLAGS}
"""


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def dockerfile(variant: str) -> list[Instruction]:
    """Instructions of Dockerfile.<variant>, continuations joined, comments dropped."""
    out: list[Instruction] = []
    pending = ""
    for raw in (WORKER / f"Dockerfile.{variant}").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        pending = ""
        out.append(Instruction(keyword.upper(), args.strip()))
    return out


def env_of(instructions: list[Instruction]) -> dict[str, str]:
    """Every ``ENV key=value`` pair, later ones winning."""
    env: dict[str, str] = {}
    for i in instructions:
        if i.keyword == "ENV":
            for pair in shlex.split(i.args):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def index_of(instructions: list[Instruction], keyword: str, needle: str = "") -> int:
    return next(n for n, i in enumerate(instructions) if i.keyword == keyword and needle in i.args)


def dockerignored(ignore_file: Path, path: str) -> bool:
    """Docker's rule: the last pattern matching the path (or a parent of it) wins."""
    ignored = False
    for raw in ignore_file.read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        if pattern.startswith("**/"):
            pattern, candidates = pattern[3:], parts
        else:
            candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if any(fnmatchcase(c, pattern) for c in candidates):
            ignored = not negate
    return ignored


def settings_keys() -> set[str]:
    """The variables gpu_worker/settings.py reads (``get("KEY", ...)``, ``env.get("KEY", ...)``)."""
    return set(
        re.findall(r'get\("([A-Z][A-Z0-9_]*)"', (ROOT / "gpu_worker/settings.py").read_text())
    )


def script_reads() -> set[str]:
    """The variables the start scripts expand (``$NAME`` / ``${NAME...}``), comments left out."""
    names: set[str] = set()
    for script in WORKER.glob("*.sh"):
        for line in script.read_text().splitlines():
            if not line.lstrip().startswith("#"):
                names |= set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", line))
    return names


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Any, limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit_s} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Emulator:
    base_url: str

    def client(self, endpoint: str) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.base_url}/v2/{endpoint}",
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=30,
        )


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """``python -m devstack.emulator`` with one endpoint per variant; short long-polls, so a
    worker told to stop is not held for seconds by its open job-take and job-stop requests."""
    tmp = tmp_path_factory.mktemp("emulator")
    config = tmp / "emulator.json"
    config.write_text(json.dumps({"take_hold_s": 0.2, "stop_hold_s": 0.0}))
    port = free_port()
    cmd = [sys.executable, "-m", "devstack.emulator", "--host", "127.0.0.1", "--port", str(port),
           "--api-key", API_KEY, "--config", str(config)]  # fmt: skip
    cmd += [arg for v in VARIANTS for arg in ("--endpoint-id", f"ep-{v}")]
    log = tmp / "emulator.log"
    with log.open("wb") as out:
        proc = start_group(cmd, dict(os.environ), cwd=ROOT, stdout=out, stderr=out)
    emu = Emulator(f"http://127.0.0.1:{port}")
    try:

        def up() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                with emu.client("ep-ollama") as client:
                    return client.get("/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, 15, "the emulator")
        yield emu
    finally:
        stop_group(proc)


@dataclass
class Run:
    """One start script running in its own process group, output in ``log``."""

    proc: subprocess.Popen[bytes]
    log: Path
    engine_dir: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def engine_argv(self) -> list[str]:
        return (self.engine_dir / "argv").read_text().splitlines()

    def engine_env(self) -> dict[str, str]:
        pairs = [line.partition("=") for line in (self.engine_dir / "env").read_text().splitlines()]
        return {key: value for key, sep, value in pairs if sep}

    def engine_pid(self) -> int:
        return int((self.engine_dir / "pid").read_text())

    def wait_exit(self, limit_s: float) -> int:
        try:
            return self.proc.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {limit_s} s:\n{self.output()}") from None

    def wait_group_gone(self, limit_s: float) -> None:
        wait_until(lambda: not group_alive(self.proc), limit_s, "the process group to exit")


@contextmanager
def start_script(variant: str, tmp: Path, env: dict[str, str], *args: str) -> Iterator[Run]:
    """Run start-<variant>.sh ARGS with the fake engine first on PATH and this venv's python
    next; whatever happens, the whole process group is killed at the end."""
    fake_bin, engine_dir = tmp / "bin", tmp / "engine"
    fake_bin.mkdir(exist_ok=True)
    engine_dir.mkdir(exist_ok=True)
    fake = fake_bin / variant
    fake.write_text(FAKE_OLLAMA if variant == "ollama" else FAKE_VLLM)
    fake.chmod(0o755)
    path = os.pathsep.join([str(fake_bin), str(Path(sys.executable).parent), os.environ["PATH"]])
    full_env = {"PATH": path, "HOME": str(tmp), "FAKE_ENGINE_DIR": str(engine_dir), **env}
    log = tmp / f"start-{variant}.log"
    with log.open("wb") as out:
        proc = start_group([str(WORKER / f"start-{variant}.sh"), *args], full_env, cwd=ROOT,
                           stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        yield Run(proc, log, engine_dir)
    finally:
        stop_group(proc)


def serving_env(variant: str, emulator: Emulator) -> dict[str, str]:
    """What the image and RunPod would give the script, pointed at loopback stand-ins."""
    port = free_port()
    env = {
        **worker_env(emulator.base_url, f"ep-{variant}", f"gpu-{variant}"),
        "LOG_FORMAT": "json",
        "MAX_CONCURRENCY": "4",
        "ENGINE_START_TIMEOUT_S": "20",
    }
    if variant == "ollama":  # as Dockerfile.ollama sets them, on a free port
        env |= {"OLLAMA_HOST": f"127.0.0.1:{port}", "ENGINE_URL": f"http://127.0.0.1:{port}",
                "MODEL": "llama3.2:1b"}  # fmt: skip
    else:
        env |= {"ENGINE_PORT": str(port), "MODEL": "org/tiny-instruct",
                "SERVED_MODEL_NAME": "pete-voice", "MAX_MODEL_LEN": "4096",
                "GPU_MEMORY_UTILIZATION": "0.85", "DTYPE": "half",
                "VLLM_ARGS": "--enable-prefix-caching --max-num-seqs 32"}  # fmt: skip
    return env


def wait_for_worker(run: Run, client: httpx.Client, limit_s: float = 20) -> None:
    """Until the worker polls the emulator for jobs (it has passed its engine checks)."""

    def polling() -> bool:
        assert run.proc.poll() is None, f"exited {run.proc.returncode}:\n{run.output()}"
        workers = client.get("/health").json()["workers"]
        return bool(workers["ready"] or workers["idle"])

    wait_until(polling, limit_s, f"the worker to poll for jobs:\n{run.output()}")


def runsync(client: httpx.Client, job_input: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/runsync", params={"wait": 20_000}, json={"input": job_input})
    assert response.status_code == 200, response.text
    return response.json()


# --------------------------------------------------------------------------- the Dockerfiles


@pytest.mark.parametrize(
    ("variant", "image"), [("ollama", "ollama/ollama"), ("vllm", "vllm/vllm-openai")], ids=VARIANTS
)
def test_each_image_starts_from_the_official_engine_image_pinned_to_a_release(
    variant: str, image: str
) -> None:
    """One FROM, the engine's official image at an exact release tag (never latest)."""
    froms = [i.args for i in dockerfile(variant) if i.keyword == "FROM"]
    assert len(froms) == 1, froms
    name, _, tag = froms[0].partition(":")
    assert name == image
    assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{froms[0]} is not pinned to a release tag"


def test_the_ollama_image_pulls_its_model_at_build_time() -> None:
    """ARG OLLAMA_MODEL=llama3.2:1b is pulled by a RUN that starts and stops `ollama serve`, as
    the image's non-root user, into that user's OLLAMA_MODELS, and becomes the worker's MODEL."""
    steps = dockerfile("ollama")
    arg = index_of(steps, "ARG", "OLLAMA_MODEL=")
    assert steps[arg].args == "OLLAMA_MODEL=llama3.2:1b"
    pull = index_of(steps, "RUN", "ollama pull")
    run = steps[pull].args
    assert arg < pull
    assert 'ollama pull "$OLLAMA_MODEL"' in run
    assert re.search(r"ollama serve .*&", run) and 'kill "$server"' in run
    assert 'exit "$pulled"' in run  # a failed pull fails the build
    users = [(n, i.args) for n, i in enumerate(steps) if i.keyword == "USER"]
    pull_user = [u for n, u in users if n < pull][-1]
    final_user = users[-1][1]
    assert pull_user == final_user not in ("root", "0")
    assert any(i.keyword == "RUN" and "useradd" in i.args and final_user in i.args for i in steps)
    env = env_of(steps)
    assert env["OLLAMA_MODELS"].startswith(f"/home/{final_user}/")
    assert env["MODEL"] == "$OLLAMA_MODEL"


def test_the_ollama_image_points_the_worker_at_loopback_ollama() -> None:
    """The worker env of issue #5, with Ollama itself bound to the address the worker calls."""
    env = env_of(dockerfile("ollama"))
    assert {k: env[k] for k in ("ENGINE_KIND", "ENGINE_URL", "MODEL", "OLLAMA_KEEP_ALIVE")} == {
        "ENGINE_KIND": "ollama",
        "ENGINE_URL": "http://127.0.0.1:11434",
        "MODEL": "$OLLAMA_MODEL",
        "OLLAMA_KEEP_ALIVE": "-1",
    }
    assert env["ENGINE_URL"] == f"http://{env['OLLAMA_HOST']}"


def test_the_vllm_image_allows_for_a_slow_model_load_and_can_bake_weights() -> None:
    """ENGINE_START_TIMEOUT_S=1200; an optional ARG MODEL is downloaded at build time into the
    directory start-vllm.sh looks in, and only when it is set."""
    steps = dockerfile("vllm")
    env = env_of(steps)
    assert env["ENGINE_START_TIMEOUT_S"] == "1200"
    assert env["ENGINE_PORT"] == "8001" and env["MODEL"] == "$MODEL"
    assert steps[index_of(steps, "ARG", "MODEL=")].args == 'MODEL=""'
    bake = steps[index_of(steps, "RUN", "snapshot_download")].args
    assert 'if [ -n "$MODEL" ]' in bake and "--mount=type=secret,id=HF_TOKEN" in bake
    assert "HF_HUB_CACHE=/opt/models/hub" in bake and "/opt/models/BAKED_MODEL" in bake
    assert "${BAKED_MODELS_DIR:-/opt/models}" in (WORKER / "start-vllm.sh").read_text()


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_image_installs_the_worker_extra_into_its_own_venv(variant: str) -> None:
    """`pip install "/src[worker]"` into /opt/peteollama/venv, which is the worker's python;
    the build checks that python is >= 3.11 (pyproject's requires-python)."""
    steps = dockerfile(variant)
    install = steps[index_of(steps, "RUN", "[worker]")].args
    assert "python3 -m venv /opt/peteollama/venv" in install
    assert "/opt/peteollama/venv/bin/pip install" in install and '"/src[worker]"' in install
    assert any("sys.version_info >= (3, 11)" in i.args for i in steps if i.keyword == "RUN")
    assert env_of(steps)["WORKER_PYTHON"] == "/opt/peteollama/venv/bin/python"
    copied = {shlex.split(i.args)[0] for i in steps if i.keyword == "COPY" and "--" not in i.args}
    assert {"pyproject.toml", "gpu_worker"} <= copied


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_image_runs_its_start_script_with_sdk_logs_at_info(variant: str) -> None:
    """ENTRYPOINT is the start script (copied executable next to supervise.sh), the base image's
    CMD is cleared, and RUNPOD_LOG_LEVEL=INFO keeps prompts out of the SDK's logs."""
    steps = dockerfile(variant)
    [entrypoint] = [json.loads(i.args) for i in steps if i.keyword == "ENTRYPOINT"]
    assert entrypoint == [f"/opt/peteollama/start-{variant}.sh"]
    assert [json.loads(i.args) for i in steps if i.keyword == "CMD"] == [[]]
    copy = steps[index_of(steps, "COPY", f"start-{variant}.sh")].args.split()
    assert copy[0] == "--chmod=0755" and copy[-1] == "/opt/peteollama/"
    assert {f"deploy/worker/start-{variant}.sh", "deploy/worker/supervise.sh"} == set(copy[1:-1])
    assert env_of(steps)["RUNPOD_LOG_LEVEL"] == "INFO"
    assert index_of(steps, "ENV", "RUNPOD_LOG_LEVEL") < index_of(steps, "ENTRYPOINT")


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_build_context_holds_exactly_what_its_image_copies(variant: str) -> None:
    """Dockerfile.<variant>.dockerignore (BuildKit's per-Dockerfile ignore file) lets every COPY
    source through and keeps secrets, the venv, tests and the gateway out."""
    ignore = WORKER / f"Dockerfile.{variant}.dockerignore"
    sources = [
        part
        for i in dockerfile(variant)
        if i.keyword == "COPY"
        for part in shlex.split(i.args)[:-1]
        if not part.startswith("--")
    ]
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not dockerignored(ignore, source), f"{source} is excluded by {ignore.name}"
    assert not dockerignored(ignore, "gpu_worker/engines/ollama.py")
    outside = (".env", ".venv/bin/python", ".git/config", "tests/conftest.py", "app/main.py",
               "devstack/serve.py", "Dockerfile", "gpu_worker/__pycache__/main.cpython-311.pyc",
               f"deploy/worker/start-{'vllm' if variant == 'ollama' else 'ollama'}.sh")  # fmt: skip
    for path in outside:
        assert dockerignored(ignore, path), f"{path} would be sent to the builder"


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_run_step_is_valid_sh(variant: str) -> None:
    """The RUN steps, as the builder hands them to the shell, pass `sh -n` (dash here: POSIX
    syntax, which the images' shells, dash or bash, both accept)."""
    for step in dockerfile(variant):
        if step.keyword != "RUN":
            continue
        body = re.sub(r"^(--\S+\s+)+", "", step.args)
        result = subprocess.run(["sh", "-n", "-c", body], capture_output=True, text=True)
        assert result.returncode == 0, f"{body}\n{result.stderr}"


# --------------------------------------------------------------------------- the start scripts


def test_the_scripts_are_valid_bash_and_the_start_scripts_are_executable() -> None:
    """`bash -n` accepts all three; the two entrypoints carry the executable bit."""
    for script in sorted(WORKER.glob("*.sh")):
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{script.name}: {result.stderr}"
    for variant in VARIANTS:
        assert os.access(WORKER / f"start-{variant}.sh", os.X_OK)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_the_scripts_pass_shellcheck() -> None:
    """shellcheck, following the `source`d supervise.sh, finds nothing."""
    scripts = [str(p.relative_to(ROOT)) for p in sorted(WORKER.glob("*.sh"))]
    result = subprocess.run(
        ["shellcheck", "-x", *scripts], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@E2E
def test_the_ollama_script_serves_jobs_and_stops_its_whole_group_on_sigterm(
    emulator: Emulator, tmp_path: Path
) -> None:
    """start-ollama.sh with a stand-in `ollama`: the worker warms the baked model, polls RunPod,
    completes every tests.json job with text; SIGTERM to the script (PID 1 in the image) stops
    the worker and Ollama and leaves no process of the group behind."""
    jobs = json.loads((HUB / "tests.json").read_text())["tests"]
    with (
        start_script("ollama", tmp_path, serving_env("ollama", emulator)) as run,
        emulator.client("ep-ollama") as client,
    ):
        wait_for_worker(run, client)
        assert run.engine_argv() == ["serve"]
        engine_env = run.engine_env()
        assert engine_env["OLLAMA_NUM_PARALLEL"] == "4"  # follows MAX_CONCURRENCY
        assert engine_env["OLLAMA_KEEP_ALIVE"] == "-1"
        for job in jobs:
            reply = runsync(client, job["input"])
            assert reply["status"] == "COMPLETED", (job["name"], reply, run.output())
            assert reply["workerId"] == "gpu-ollama"
            assert normalize_output(reply["output"]).text, (job["name"], reply)

        started = time.monotonic()
        run.proc.send_signal(signal.SIGTERM)
        assert run.wait_exit(15) == 0, run.output()
        run.wait_group_gone(5)
        print(f"ollama variant: SIGTERM to a gone group in {time.monotonic() - started:.2f} s")
        assert "SIGTERM received: stopping the worker, then ollama" in run.output()


@E2E
def test_the_vllm_script_serves_a_job_and_exits_non_zero_when_vllm_dies(
    emulator: Emulator, tmp_path: Path
) -> None:
    """start-vllm.sh with a stand-in `vllm`: the env becomes `vllm serve` flags on loopback, the
    worker speaks OpenAI to it under SERVED_MODEL_NAME and completes a chat job; when vLLM is then
    killed, the script stops the worker and exits 1, and the group is gone."""
    env = serving_env("vllm", emulator)
    with start_script("vllm", tmp_path, env) as run, emulator.client("ep-vllm") as client:
        wait_for_worker(run, client)
        assert run.engine_argv() == [
            "serve", "org/tiny-instruct", "--host", "127.0.0.1", "--port", env["ENGINE_PORT"],
            "--served-model-name", "pete-voice", "--max-model-len", "4096",
            "--gpu-memory-utilization", "0.85", "--dtype", "half",
            "--enable-prefix-caching", "--max-num-seqs", "32",
        ]  # fmt: skip
        engine_env = run.engine_env()
        assert "VLLM_ARGS" not in engine_env and "VLLM_PORT" not in engine_env
        assert engine_env["ENGINE_KIND"] == "openai"
        assert engine_env["ENGINE_URL"] == f"http://127.0.0.1:{env['ENGINE_PORT']}/v1"

        reply = runsync(client, SAY_HI)
        assert reply["status"] == "COMPLETED", (reply, run.output())
        output = normalize_output(reply["output"])
        assert output.text and output.model == "pete-voice"

        started = time.monotonic()
        os.kill(run.engine_pid(), signal.SIGKILL)
        assert run.wait_exit(15) == 1, run.output()
        run.wait_group_gone(5)
        print(f"vllm variant: engine killed to a gone group in {time.monotonic() - started:.2f} s")
        assert "vllm exited with status 137; stopping the worker" in run.output()


@E2E
def test_the_script_arguments_reach_the_worker_for_a_one_job_local_run(tmp_path: Path) -> None:
    """`docker run IMAGE --test_input '{...}'` (docs/deploy-worker.md): without RunPod's env the
    worker runs that one job, prints it and exits 0; the script then stops Ollama and exits 0."""
    port = free_port()
    env = {"OLLAMA_HOST": f"127.0.0.1:{port}", "MODEL": "llama3.2:1b"}
    job = json.dumps({"input": SAY_HI})
    with start_script("ollama", tmp_path, env, "--test_input", job) as run:
        assert run.wait_exit(15) == 0, run.output()
        run.wait_group_gone(5)
        assert "Job local_test completed successfully" in run.output()
        assert "'done': True" in run.output()


@E2E
@pytest.mark.parametrize("variant", VARIANTS)
def test_a_script_exits_non_zero_when_its_engine_fails_at_start(
    variant: str, tmp_path: Path
) -> None:
    """An engine that exits at once (bad flags, no GPU) ends the script with status 1 while the
    worker is still starting; nothing of the group is left."""
    env = {"MODEL": "some-model", "FAKE_ENGINE_EXIT": "3", "ENGINE_START_TIMEOUT_S": "20"}
    with start_script(variant, tmp_path, env) as run:
        assert run.wait_exit(10) == 1, run.output()
        run.wait_group_gone(5)
        assert f"{variant} exited with status 3; stopping the worker" in run.output()


@E2E
@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ("baked", {"HF_HUB_CACHE": "{baked}/hub", "HF_HUB_OFFLINE": "1"}),
        ("baked-other-model", {"HF_HUB_CACHE": "{volume}/huggingface-cache/hub"}),
        ("runpod-cache", {"HF_HUB_CACHE": "{volume}/huggingface-cache/hub"}),
        ("nothing", {}),
    ],
    ids=["baked", "baked-for-another-model", "runpod-cached-models", "no-cache"],
)
def test_the_vllm_script_picks_where_the_weights_come_from(
    layout: str, expected: dict[str, str], tmp_path: Path
) -> None:
    """Baked weights for this MODEL are used offline; else RunPod's cached models; else vLLM
    downloads (no cache variables set)."""
    baked, volume = tmp_path / "models", tmp_path / "runpod-volume"
    if layout.startswith("baked"):
        (baked / "hub").mkdir(parents=True)
        model = "org/tiny-instruct" if layout == "baked" else "org/another"
        (baked / "BAKED_MODEL").write_text(model + "\n")
    if layout in ("runpod-cache", "baked-other-model"):
        (volume / "huggingface-cache" / "hub").mkdir(parents=True)
    env = {"MODEL": "org/tiny-instruct", "FAKE_ENGINE_EXIT": "0",
           "BAKED_MODELS_DIR": str(baked), "RUNPOD_VOLUME": str(volume)}  # fmt: skip
    with start_script("vllm", tmp_path, env) as run:
        assert run.wait_exit(10) == 1, run.output()
        seen = {
            k: v for k, v in run.engine_env().items() if k in ("HF_HUB_CACHE", "HF_HUB_OFFLINE")
        }
    paths = {"baked": str(baked), "volume": str(volume)}
    assert seen == {k: v.format(**paths) for k, v in expected.items()}


@E2E
@pytest.mark.parametrize(
    ("env", "warns"),
    [
        ({}, True),  # the 1200 s default against RunPod's 420 s default
        ({"RUNPOD_INIT_TIMEOUT": "1200"}, False),
        ({"ENGINE_START_TIMEOUT_S": "300"}, False),
    ],
    ids=["defaults", "init-timeout-raised", "short-start-timeout"],
)
def test_the_vllm_script_warns_when_runpod_would_cut_the_model_load_short(
    env: dict[str, str], warns: bool, tmp_path: Path
) -> None:
    """A start bound longer than RUNPOD_INIT_TIMEOUT (420 s unless set) is reported at start."""
    env = {"MODEL": "org/tiny-instruct", "FAKE_ENGINE_EXIT": "0", **env}
    with start_script("vllm", tmp_path, env) as run:
        run.wait_exit(10)
        assert ("longer than RunPod's start limit" in run.output()) is warns


@E2E
def test_the_vllm_script_refuses_to_start_without_a_model(tmp_path: Path) -> None:
    """No MODEL: a one-line reason and a non-zero exit, before vLLM or the worker starts."""
    with start_script("vllm", tmp_path, {}) as run:
        assert run.wait_exit(10) != 0
        assert "set MODEL" in run.output()
        assert not (run.engine_dir / "pid").exists()


# --------------------------------------------------------------------------- .runpod/


def hub() -> dict[str, Any]:
    return json.loads((HUB / "hub.json").read_text())


def hub_tests() -> dict[str, Any]:
    return json.loads((HUB / "tests.json").read_text())


def test_hub_json_has_the_fields_the_runpod_hub_requires() -> None:
    """Metadata and a GPU config per the Hub publishing guide; every env entry is a typed input
    with a name and a description, and options carry label and value."""
    data = hub()
    assert data["type"] == "serverless" and data["category"] == "language"
    assert data["title"] and data["description"]
    config = data["config"]
    assert config["runsOn"] == "GPU" and isinstance(config["containerDiskInGb"], int)
    assert isinstance(config["gpuCount"], int) and isinstance(config["gpuIds"], str)
    keys = [entry["key"] for entry in config["env"]]
    assert len(keys) == len(set(keys))
    for entry in config["env"]:
        field = entry["input"]
        assert field["type"] in ("string", "number", "boolean", "huggingface"), entry["key"]
        assert field["name"] and field["description"], entry["key"]
        for option in field.get("options", []):
            assert set(option) == {"label", "value"}, entry["key"]
    for preset in config["presets"]:
        assert preset["name"] and set(preset["defaults"]) <= set(keys), preset["name"]


def test_every_variable_the_hub_files_list_is_read_by_the_worker_or_a_start_script() -> None:
    """hub.json's env and presets and tests.json's env name only variables that
    gpu_worker/settings.py or deploy/worker/*.sh actually read."""
    known = settings_keys() | script_reads()
    assert {"MODEL", "MAX_CONCURRENCY", "OLLAMA_KEEP_ALIVE"} <= settings_keys()  # the regex works
    assert {"MAX_MODEL_LEN", "VLLM_ARGS", "OLLAMA_NUM_PARALLEL"} <= script_reads()
    config = hub()["config"]
    listed = {entry["key"] for entry in config["env"]}
    listed |= {key for preset in config["presets"] for key in preset["defaults"]}
    listed |= {entry["key"] for entry in hub_tests()["config"]["env"]}
    assert listed - known == set()


def test_hub_defaults_and_presets_are_valid_worker_settings() -> None:
    """The defaults, and each preset over them, parse as Settings (as the start script would
    leave the engine settings for that image)."""
    env_entries = hub()["config"]["env"]
    defaults = {
        e["key"]: str(e["input"]["default"]) for e in env_entries if "default" in e["input"]
    }
    Settings.from_env({**defaults, "ENGINE_KIND": "ollama"})
    for preset in hub()["config"]["presets"]:
        values = {k: str(v) for k, v in preset["defaults"].items()}
        kind = "openai" if "SERVED_MODEL_NAME" in values else "ollama"
        settings = Settings.from_env({**defaults, **values, "ENGINE_KIND": kind})
        assert settings.max_concurrency == int(values["MAX_CONCURRENCY"])


def test_tests_json_jobs_are_inputs_the_worker_accepts() -> None:
    """Each Hub test job is named, bounded by a timeout and parses as a worker input; the test
    config names a GPU and passes string env values."""
    data = hub_tests()
    assert {t["name"] for t in data["tests"]} >= {"warmup", "v1_chat"}
    for test in data["tests"]:
        assert isinstance(test["timeout"], int) and test["timeout"] > 0
        parse_request(test["input"])  # raises on an input the worker would fail
    config = data["config"]
    assert config["gpuTypeId"] and config["gpuCount"] == 1
    assert all(isinstance(e["value"], str) for e in config["env"])
