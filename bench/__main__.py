"""``python -m bench``: run the benchmark scenarios and write the report to ``docs/benchmarks/``.

    python -m bench                     # full run (~10–15 min on 2 cores), every scenario
    python -m bench --quick             # short run (~4 min), written to /tmp/peteollama-bench-quick
    python -m bench --only overhead,throughput [--out DIR] [--keep-logs]
    python -m bench --only soak --merge # re-measure some scenarios into the last report
    python -m bench peers [--quick]     # LiteLLM proxy side by side; merged into the last report
    python -m bench report [--out DIR]  # redraw results.md and the plots from results.json

Scenarios, in order: overhead, throughput, profile, scale, faults, streaming, soak (soak + rate
sweep), fuzz (schemathesis against /openapi.json); ``peers`` runs too when ``--peers`` is given.
A scenario that fails is recorded as failed and the run goes on; the whole run stops starting
new scenarios after ``--max-minutes``.
Exit status 0 when every scenario ran (goals are reported, never enforced), 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import machine, report
from bench.harness import PROFILES, Bench

SCENARIOS = ("overhead", "throughput", "profile", "scale", "faults", "streaming", "soak", "fuzz")
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
QUICK_OUT = Path("/tmp/peteollama-bench-quick")
NOTES = (
    "The gateway runs as `python -m app` builds it (app.factory.build_app: request-log"
    " middleware, Prometheus metrics, HMAC verification with VAPI_HMAC_SECRET, JSON logs at INFO"
    " appended to a file) on uvloop + httptools, inside `python -m bench.server`, which adds an"
    " event-loop lag sampler and a /_bench/stats probe (the reference gateway gets the same).",
    "The gateway's client-side RunPod rate caps (RUNPOD_{RUNSYNC,RUN,STATUS,STREAM}_RATE_PER_10S,"
    " by default RunPod's documented 2,000 / 1,000 per 10 s) are raised to 10^7 in every"
    " scenario: the emulator enforces no limit, and at the default caps one endpoint allows"
    " 200 /runsync submits per second, which would measure the cap, not the gateway. The"
    " limiter code still runs. The scale scenario also lifts the concurrency caps.",
    "The upstream stand-ins (emulator, engine simulator) run under `python -m bench.gcwrap`,"
    " with the cyclic GC's generation-0 threshold at 100,000: with the default, the emulator's"
    " collections over its retained jobs paused it for 40-200 ms and set the p99 of the direct"
    " and the gateway path alike. The gateway, the reference and the worker keep the defaults."
    " The load generator collects between measurements, not during them.",
    "Load generator: aiohttp on uvloop in its own process (`python -m bench.loadgen`); on 2"
    " CPUs it shares CPU 1 with the upstream, so closed-loop throughput can be capped by that"
    " CPU rather than by the gateway: compare `CPU share` of the server (1.00 = saturated).",
)


def run_scenarios(bench: Bench, names: Sequence[str], max_minutes: float) -> dict[str, Any]:
    results = bench.results
    results.setdefault("scenarios", {})
    started = time.monotonic()
    for name in names:
        if time.monotonic() - started > max_minutes * 60:
            results["scenarios"][name] = {"skipped": f"time limit of {max_minutes:g} min reached"}
            continue
        bench.say(f"scenario {name}: start")
        t0 = time.monotonic()
        try:
            module = importlib.import_module(
                "bench.peers" if name == "peers" else f"bench.scenarios.{name}"
            )
            results["scenarios"][name] = module.run(bench)
        except Exception as exc:
            bench.say(f"scenario {name} FAILED: {exc}")
            results["scenarios"][name] = {
                "failed": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc()[-2000:],
            }
        finally:
            bench.stop_all()
        results["scenarios"][name]["elapsed_s"] = round(time.monotonic() - t0, 1)
        bench.say(f"scenario {name}: done in {time.monotonic() - t0:.0f} s")
    return results


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("command", nargs="?", default="run", choices=("run", "peers", "report"))
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="short run (profile quick)")
    size.add_argument("--profile", choices=sorted(PROFILES), help="sizes: full, quick, tiny")
    parser.add_argument("--only", help="comma-separated scenarios to run")
    parser.add_argument("--skip", help="comma-separated scenarios to leave out")
    parser.add_argument("--peers", action="store_true", help="also run the LiteLLM peer")
    parser.add_argument(
        "--merge", action="store_true", help="replace these scenarios in the existing report"
    )
    parser.add_argument("--out", type=Path, help="output directory")
    parser.add_argument("--keep-logs", action="store_true", help="keep the run's log directory")
    parser.add_argument("--max-minutes", type=float, default=25.0)
    parser.add_argument("--peer-venv", type=Path, help="virtualenv for LiteLLM (peers)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    profile = PROFILES[args.profile or ("quick" if args.quick else "full")]
    out = args.out or (DEFAULT_OUT if profile.name == "full" else QUICK_OUT / profile.name)
    if args.command == "report":
        results, samples = report.load(out)
        files = report.write(results, samples, out)
        print("\n".join(str(out / f) for f in files))
        return 0
    if args.command == "peers":
        names: list[str] = ["peers"]
        results, samples = report.load(out)
    else:
        names = [n.strip() for n in args.only.split(",")] if args.only else list(SCENARIOS)
        if args.peers and "peers" not in names:
            names.append("peers")
        skip = {n.strip() for n in (args.skip or "").split(",") if n.strip()}
        names = [n for n in names if n not in skip]
        unknown = sorted(set(names) - {*SCENARIOS, "peers"})
        if unknown:
            print(f"unknown scenario(s): {', '.join(unknown)}", file=sys.stderr)
            return 2
        results, samples = report.load(out) if args.merge else ({}, {})
        for name in names:
            samples.pop(name, None)
    out.mkdir(parents=True, exist_ok=True)
    bench = Bench(profile, out, keep_logs=args.keep_logs, results=results, peer_venv=args.peer_venv)
    started = time.monotonic()
    if (args.command == "run" and not args.merge) or "machine" not in results:
        results["machine"] = machine.describe()
        results["settings"] = bench.settings_record()
        results["command"] = " ".join(["python -m bench", *(argv or sys.argv[1:])])
        results["notes"] = list(NOTES)
    bench.say(f"profile {profile.name}, output {out}, logs {bench.run_dir}")
    try:
        run_scenarios(bench, names, args.max_minutes)
    finally:
        bench.close()
    results.pop("capacity", None)
    results["machine"]["loadavg_at_end"] = machine.loadavg()
    if args.command == "run" and not args.merge:
        results["elapsed_s"] = round(time.monotonic() - started, 1)
    if args.merge or args.command == "peers":
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for name in names:
            results["scenarios"][name]["measured_at"] = stamp
        results.setdefault("merged", []).append({"scenarios": names, "at": stamp})
    files = report.write(results, samples, out)
    for goal in results["goals"]:
        print(f"{goal['verdict']:>8}  {goal['goal']}: {goal['measured']} (goal {goal['target']})")
    print("wrote " + ", ".join(str(out / f) for f in files))
    failed = [n for n in names if results["scenarios"].get(n, {}).get("failed")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
