"""``python -m bench.server``: serve the gateway (or the reference) in this process, with probes.

    python -m bench.server --app gateway --port P [--log-file F]          # settings from env
    python -m bench.server --app reference --port P --upstream URL --api-key K

The gateway is built exactly as ``python -m app`` builds it (:func:`app.factory.build_app`: the
request-log middleware, metrics, HMAC verification per the environment), on uvloop with uvicorn's
httptools parser, with JSON logs appended to ``--log-file``. Two things are added around it, for
the benchmark only:

* an event-loop lag sampler: a task that sleeps 10 ms and records how late it wakes up;
* ``GET /_bench/stats`` (lag percentiles since the last reset, ``VmRSS`` and ``VmHWM`` from
  ``/proc/self/status``; ``?raw=1`` adds every ``[perf_counter, lag_ms]`` sample) and
  ``POST /_bench/reset`` (clears the lag samples and resets VmHWM through
  ``/proc/self/clear_refs``), answered by a wrapper before the app sees the request.

With ``BENCH_TRACEMALLOC=1`` in the environment, tracemalloc runs (slow: diagnosis only) and
``GET /_bench/tracemalloc`` returns the top allocation sites grown since the previous call (the
first call sets the baseline): how the soak's RSS growth was traced.

Prints ``READY <url>`` once the socket accepts connections; stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.procs import rss_kb
from bench.stats import summary

LAG_INTERVAL_S = 0.01
MAX_SAMPLES = 2_000_000


def reset_peak_rss() -> None:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); a few microseconds, off the hot path."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


class LagSampler:
    def __init__(self) -> None:
        self.samples: list[float] = []
        self.times: list[float] = []  # perf_counter at wake-up: CLOCK_MONOTONIC, system-wide

    async def run(self) -> None:
        # perf_counter, not loop.time(): uvloop's clock has millisecond resolution
        while True:
            before = time.perf_counter()
            await asyncio.sleep(LAG_INTERVAL_S)
            now = time.perf_counter()
            lag = (now - before - LAG_INTERVAL_S) * 1000
            if len(self.samples) < MAX_SAMPLES:
                self.samples.append(max(0.0, lag))
                self.times.append(now)

    def reset(self) -> None:
        self.samples, self.times = [], []


class Probe:
    """ASGI wrapper answering ``/_bench/*``; everything else goes to the app untouched."""

    def __init__(self, app: Any, sampler: LagSampler) -> None:
        self.app = app
        self.sampler = sampler
        self.baseline: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/_bench/"):
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/_bench/tracemalloc":
            await _json(send, self.grown())
            return
        if scope["path"] == "/_bench/reset":
            self.sampler.reset()
            reset_peak_rss()
        data = {"lag_ms": summary(self.sampler.samples), **rss_kb(), "pid": os.getpid()}
        if scope.get("query_string") == b"raw=1":
            data["lag_raw"] = [
                [round(t, 4), round(v, 3)]
                for t, v in zip(self.sampler.times, self.sampler.samples, strict=True)
            ]
        await _json(send, data)

    def grown(self) -> dict[str, Any]:
        import tracemalloc

        if not tracemalloc.is_tracing():
            return {"error": "start the server with BENCH_TRACEMALLOC=1"}
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        if self.baseline is None:
            self.baseline = snapshot
            return {"baseline": True}
        top = snapshot.compare_to(self.baseline, "traceback")[:15]
        return {
            "top": [
                {
                    "size_diff_kb": round(stat.size_diff / 1024, 1),
                    "count_diff": stat.count_diff,
                    "traceback": stat.traceback.format()[-12:],
                }
                for stat in top
            ]
        }


async def _json(send: Any, data: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(data).encode()})


def build(args: argparse.Namespace) -> Any:
    if args.app == "reference":
        from bench.reference import create_reference

        return create_reference(args.upstream, args.api_key, budget_ms=args.budget_ms)
    from app.factory import build_app, secret_values
    from app.logs import configure_logging
    from app.settings import Settings

    settings = Settings.from_env(os.environ)
    stream = open(args.log_file, "a", encoding="utf-8") if args.log_file else sys.stderr  # noqa: SIM115
    configure_logging(
        settings.log_format, settings.log_level, stream=stream, secrets=secret_values(settings)
    )
    return build_app(settings)


async def serve_forever(args: argparse.Namespace) -> None:
    from devstack.serve import serve

    sampler = LagSampler()
    app = Probe(build(args), sampler)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    lag_task = asyncio.create_task(sampler.run())
    async with serve(app, port=args.port, http="httptools") as url:
        print(f"READY {url} pid={os.getpid()} loop={type(loop).__module__}", flush=True)
        await stop.wait()
    lag_task.cancel()


def main(argv: Sequence[str] | None = None) -> int:
    if os.environ.get("BENCH_TRACEMALLOC") == "1":
        import tracemalloc

        tracemalloc.start(12)
    parser = argparse.ArgumentParser(prog="python -m bench.server")
    parser.add_argument("--app", choices=("gateway", "reference"), default="gateway")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", default="")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--budget-ms", type=int, default=6000)
    parser.add_argument("--log-file", default="")
    args = parser.parse_args(argv)
    loop_factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve_forever(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
