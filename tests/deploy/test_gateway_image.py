"""The gateway image and process files, tested without Docker (issue #6 item 8).

Docker cannot run here, so: the Dockerfile is parsed (base, non-root user, healthcheck, command,
no worker extra); its HEALTHCHECK command is run against a live gateway; the files it copies,
as .dockerignore lets them through, are served as ``python -m app`` with ``runpod`` unimportable;
and the Procfile's command is run with ``PORT`` set.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.app.conftest import stack
from tests.app.gateway_process import ROOT, free_port, gateway_process


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int


def dockerfile() -> list[Instruction]:
    """The Dockerfile's instructions (continuations joined, comments dropped), by stage."""
    out: list[Instruction] = []
    stage, pending = -1, ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        pending = ""
        stage += keyword.upper() == "FROM"
        out.append(Instruction(keyword.upper(), args.strip(), stage))
    return out


def final_stage() -> list[Instruction]:
    instructions = dockerfile()
    last = instructions[-1].stage
    return [i for i in instructions if i.stage == last]


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"expected exec form, got {args!r}"
    return [str(v) for v in value]


def healthcheck_command() -> list[str]:
    [check] = [i for i in final_stage() if i.keyword == "HEALTHCHECK"]
    return exec_form(check.args[check.args.index("CMD") + 3 :].strip())


def copied_sources() -> list[str]:
    sources: list[str] = []
    for i in dockerfile():
        if i.keyword == "COPY" and "--from" not in i.args:
            *paths, _dest = shlex.split(i.args)
            sources += paths
    return sources


def dockerignored(path: str) -> bool:
    """Docker's rule: the last .dockerignore pattern matching the path (or a parent) wins."""
    ignored = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        if pattern.startswith("**/"):  # any depth: match any component
            pattern, candidates = pattern[3:], parts
        else:  # the path itself or one of its parent directories
            candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
            ignored = not negate
    return ignored


# --------------------------------------------------------------------------- the Dockerfile


def test_the_image_is_python_311_slim_and_runs_python_m_app() -> None:
    """Every stage starts from python:3.11-slim; the image runs `python -m app` on port 8000."""
    assert {i.args for i in dockerfile() if i.keyword == "FROM"} <= {
        "python:3.11-slim",
        "python:3.11-slim AS build",
    }
    final = final_stage()
    [cmd] = [i for i in final if i.keyword == "CMD"]
    assert exec_form(cmd.args) == ["python", "-m", "app"]
    assert [i.args for i in final if i.keyword == "EXPOSE"] == ["8000"]


def test_the_image_runs_as_a_non_root_user() -> None:
    """The final stage switches to a named non-root user before its command."""
    final = final_stage()
    users = [n for n, i in enumerate(final) if i.keyword == "USER"]
    assert users, "no USER in the final stage"
    user = final[users[-1]].args.split(":")[0]
    assert user not in ("root", "0")
    assert users[-1] < next(n for n, i in enumerate(final) if i.keyword == "CMD")
    assert any(i.keyword == "RUN" and "useradd" in i.args and user in i.args for i in final)


def test_the_image_installs_the_gateway_without_the_worker_extra() -> None:
    """Nothing installs runpod or the [worker] extra; pyproject keeps runpod out of the base."""
    text = "\n".join(f"{i.keyword} {i.args}" for i in dockerfile())  # comments left out
    assert "[worker" not in text and "runpod" not in text.lower()
    assert "curl" not in text and "wget" not in text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(dep.startswith("runpod") for dep in project["dependencies"])
    assert any(dep.startswith("runpod") for dep in project["optional-dependencies"]["worker"])


def test_the_build_context_holds_exactly_what_the_image_copies() -> None:
    """.dockerignore lets every COPY source through and keeps the rest of the tree out."""
    sources = copied_sources()
    assert set(sources) >= {"app", "gpu_worker/__init__.py", "gpu_worker/contract.py"}
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not dockerignored(source), f"{source} is excluded by .dockerignore"
    assert not dockerignored("app/routes/ops.py")
    paths = (".venv/bin/python", "tests/app/test_logs.py", ".git/config", "devstack/serve.py",
             "gpu_worker/handler.py", ".env", "app/__pycache__/main.cpython-311.pyc")  # fmt: skip
    for outside in paths:
        assert dockerignored(outside), f"{outside} would be sent to the Docker daemon"


def test_every_data_file_the_gateway_reads_is_packaged() -> None:
    """Non-Python files under app/ are package data, so the image's wheel carries them."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = setuptools.get("package-data", {}).get("app", [])
    data = [
        path.relative_to(ROOT / "app").as_posix()
        for path in (ROOT / "app").rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    ]
    missing = [f for f in data if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert missing == [], "add them to [tool.setuptools.package-data] app = [...] in pyproject.toml"


# --------------------------------------------------------------------------- run what we can


async def run(command: list[str], env: dict[str, str]) -> int:
    proc = await asyncio.create_subprocess_exec(
        *command,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(proc.wait(), 20)


async def test_the_healthcheck_passes_on_a_live_gateway_and_fails_without_one() -> None:
    """The HEALTHCHECK command exits 0 against a serving gateway and non-zero on a dead port."""
    command = healthcheck_command()
    assert command[0] == "python"
    command[0] = sys.executable
    async with stack() as s:
        port = httpx.URL(s.gateway_url).port
        assert await run(command, {"PORT": str(port)}) == 0
    assert await run(command, {"PORT": str(free_port())}) != 0


def copy_build_context(target: Path) -> None:
    """What the image's build stage copies, as it would land in /src."""
    for source in copied_sources():
        src, dst = ROOT / source, target / source
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dst)


BLOCK_RUNPOD = (
    "import sys, runpy; sys.modules['runpod'] = None; "  # `import runpod` now raises ImportError
    "import app; assert app.__file__.startswith(sys.argv[1]), app.__file__; "
    "sys.argv = ['app']; runpy.run_module('app', run_name='__main__', alter_sys=True)"
)


async def test_the_copied_files_serve_the_gateway_without_runpod(tmp_path: Path) -> None:
    """The image's files alone run `python -m app` with runpod unimportable."""
    src = tmp_path / "src"
    copy_build_context(src)
    env = {
        "PYTHONPATH": str(src),
        "RUNPOD_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}/v2/x",
        "HEALTH_POLL_S": "60",
    }
    command = (sys.executable, "-c", BLOCK_RUNPOD, str(src))
    async with gateway_process(env, tmp_path, command=command, cwd=tmp_path) as gw:
        async with httpx.AsyncClient(base_url=gw.base_url) as client:
            assert (await client.get("/openapi.json")).status_code == 200
        gw.terminate()
        assert await gw.wait(15) == 0


async def test_the_procfile_web_command_listens_on_port(tmp_path: Path) -> None:
    """`web: python -m app` serves on $PORT (as a Heroku-style platform sets it)."""
    lines = (ROOT / "Procfile").read_text().splitlines()
    assert lines == ["web: python -m app"]
    process_type, _, command = lines[0].partition(":")
    port = free_port()
    env = {
        "PORT": str(port),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "RUNPOD_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}/v2/x",
        "HEALTH_POLL_S": "60",
    }
    async with gateway_process(env, tmp_path, command=("bash", "-c", command.strip())) as gw:
        assert process_type == "web" and gw.port == port
        gw.terminate()
        assert await gw.wait(15) == 0


@pytest.mark.parametrize("module", ["app.main", "app.factory", "app.__main__"])
def test_importing_the_gateway_never_imports_runpod(module: str) -> None:
    """The gateway's modules do not pull in the runpod SDK (1.5 s import, worker-only)."""
    done = subprocess.run(
        [sys.executable, "-c", f"import sys, {module}; print('runpod' in sys.modules)"],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == "False"
