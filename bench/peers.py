"""Peer: LiteLLM's proxy beside the gateway, same load generator, same run (peers.md §2.7).

``python -m bench peers`` (or ``python -m bench --peers``):

1. installs ``litellm[proxy]==1.108.7`` (the exact version peers.md measured; newer ones are not
   installable from this index) into its own virtualenv, ``/tmp/peteollama-bench-peer-venv`` by
   default (``--peer-venv``), never into the project's;
2. serves the engine simulator as the OpenAI-compatible mock (``--ttft-ms 0``, 8 tokens at once)
   on the upstream CPU, LiteLLM (``--num_workers 1``, master key set,
   ``LITELLM_LOCAL_MODEL_COST_MAP=True``, no callbacks, no retries) on the gateway CPU, and our
   gateway on the same CPU in front of the virtual-worker emulator;
3. interleaves rounds at 16 concurrent: LiteLLM chat completions, our tool-calls turn, our
   custom-LLM chat turn (non-streaming), and the mock alone; then sequential p50s.

The ratio reported against the goal (≥ 25×) is our tool-calls turn ÷ LiteLLM's chat completion,
both per second per process at 16 concurrent, taken per round.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.harness import Bench
from bench.procs import free_port, start
from bench.scenarios.common import chat_spec, closed, direct_spec, toolcalls_spec
from bench.stats import ratio, spread

LITELLM = "litellm[proxy]==1.108.7"
DEFAULT_VENV = Path("/tmp/peteollama-bench-peer-venv")
LLM_KEY = "bench-llm-key-0123456789"
CONFIG = """model_list:
  - model_name: mock-model
    litellm_params: {{model: openai/pete-simulator, api_base: "{base}/v1", api_key: sk-mock}}
litellm_settings: {{callbacks: [], num_retries: 0, request_timeout: 30}}
"""


def ensure_litellm(bench: Bench) -> tuple[Path, str | None, float | None]:
    """The venv's litellm executable, its version, and the install time if we installed it."""
    venv = bench.peer_venv or DEFAULT_VENV
    exe = venv / "bin" / "litellm"
    took = None
    if not exe.exists():
        bench.say(f"installing {LITELLM} into {venv} (one-off, ~30-60 s)")
        started = time.monotonic()
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", LITELLM],
            check=True, timeout=900, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        took = round(time.monotonic() - started, 1)
    version = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import importlib.metadata as m;"
         "print(m.version('litellm'))"],
        capture_output=True, text=True, timeout=60, check=False,
    ).stdout.strip() or None  # fmt: skip
    return exe, version, took


def run(bench: Bench) -> dict[str, Any]:
    p = bench.profile
    try:
        exe, version, install_s = ensure_litellm(bench)
    except (OSError, subprocess.SubprocessError) as exc:
        return {"skipped": f"could not install {LITELLM}: {exc}"}
    engine = bench.start_engine(ttft_ms=0, tokens_per_s=1e6, reply_tokens=8)
    cfg = bench.run_dir / "litellm.yaml"
    cfg.write_text(CONFIG.format(base=engine.url))
    port = free_port()
    master = "sk-" + secrets.token_hex(32)
    litellm = start(
        "litellm",
        [str(exe), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port),
         "--num_workers", "1"],
        {"LITELLM_MASTER_KEY": master, "LITELLM_LOCAL_MODEL_COST_MAP": "True",
         "PATH": f"{exe.parent}:{os.environ.get('PATH', '')}"},
        cpus=bench.layout.gateway, log_dir=bench.run_dir,
        probe=f"http://127.0.0.1:{port}/health/liveliness", timeout_s=180,
        url=f"http://127.0.0.1:{port}",
    )  # fmt: skip
    bench._track(litellm)
    emulator = bench.start_emulator("emulator-peers", virtual=True)
    gateway = bench.start_gateway("gateway-peers", emulator.url, LLM_API_KEY=LLM_KEY)

    def specs(concurrency: int, **bound: Any) -> dict[str, dict[str, Any]]:
        common = {"concurrency": concurrency, **bound}
        return {
            "litellm (chat completion)": chat_spec(
                f"{litellm.url}/v1/chat/completions", key=master, model="mock-model",
                stream=False, **common,
            ),
            "ours (tool-calls turn)": toolcalls_spec(bench, gateway, tag=f"p{concurrency}",
                                                     **common),
            "ours (custom-LLM chat turn)": chat_spec(
                f"{gateway.url}/vapi/chat/completions", key=LLM_KEY, model="pete",
                stream=False, **common,
            ),
            "mock alone (engine simulator)": chat_spec(
                f"{engine.url}/v1/chat/completions", key=None, model="pete-simulator",
                stream=False, **common,
            ),
            "emulator alone (runsync)": direct_spec(emulator, **common),
        }  # fmt: skip

    servers = {"litellm (chat completion)": litellm, "ours (tool-calls turn)": gateway,
               "ours (custom-LLM chat turn)": gateway}  # fmt: skip
    rates: dict[str, list[float | None]] = {}
    seq: dict[str, list[float | None]] = {}
    cpu: dict[str, list[float | None]] = {}
    with bench.running(gateway, emulator, litellm, engine):
        for name, spec in specs(16, requests=100).items():
            closed(bench, spec, label=f"warm-up {name}")
        for i in range(p.peers_rounds):
            for name, spec in specs(16, duration_s=p.peers_s, max_s=p.peers_s + 60).items():
                r = closed(bench, spec, label=f"peers {name} round {i + 1}",
                           server=servers.get(name))  # fmt: skip
                rates.setdefault(name, []).append(r["rate"])
                cpu.setdefault(name, []).append(r.get("server_cpu_ms_per_turn"))
                bench.say(f"peers {name} round {i + 1}: {r['rate']}/s, errors {r['errors'] or 0}")
            for name, spec in specs(1, requests=200, warmup=20).items():
                r = closed(bench, spec, label=f"sequential {name}")
                seq.setdefault(name, []).append(r["summary"]["p50"])
    ours, chat, lite = (rates[k] for k in ("ours (tool-calls turn)",
                                            "ours (custom-LLM chat turn)",
                                            "litellm (chat completion)"))  # fmt: skip
    return {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "litellm_version": version,
        "install_s": install_s,
        "method": (
            f"16 concurrent, closed loop, {p.peers_rounds} interleaved rounds of {p.peers_s:g} s;"
            " LiteLLM and our gateway each on the gateway CPU with 1 worker; LiteLLM → engine"
            " simulator (--ttft-ms 0, 8 tokens), ours → RunPod emulator (virtual worker)."
            " LiteLLM: master key, no callbacks, no retries, local cost map."
        ),
        "turns_per_s": {k: spread(v) for k, v in rates.items()},
        "cpu_ms_per_request": {k: spread(v) for k, v in cpu.items()},
        "sequential_p50_ms": {k: spread(v) for k, v in seq.items()},
        "ratio_ours_to_litellm": spread(ratio(a, b) for a, b in zip(ours, lite, strict=True)),
        "ratio_chat_to_litellm": spread(ratio(a, b) for a, b in zip(chat, lite, strict=True)),
    }
