"""PNG plots of a run (matplotlib, Agg backend); each function returns the file name or None.

Plots are optional: without matplotlib the report says so and the JSON and Markdown are complete.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.goals import dig


def render_all(results: dict[str, Any], samples: dict[str, Any], out: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made = []
    makers: list[tuple[str, Callable[..., bool]]] = [
        ("overhead.png", _overhead),
        ("throughput.png", _throughput),
        ("scale.png", _scale),
        ("faults.png", _faults),
        ("streaming.png", _streaming),
        ("soak.png", _soak),
        ("peers.png", _peers),
    ]
    for name, maker in makers:
        fig = plt.figure(figsize=(11, 4.2))
        try:
            drawn = maker(fig, results.get("scenarios", {}), samples)
        except (KeyError, TypeError, ValueError, IndexError):
            drawn = False
        if drawn:
            fig.tight_layout()
            fig.savefig(out / name, dpi=90)
            made.append(name)
        plt.close(fig)
    return made


def _cdf(ax: Any, values: list[float], label: str) -> None:
    data = sorted(values)
    if not data:
        return
    ys = [(i + 1) / len(data) for i in range(len(data))]
    ax.plot(data, ys, label=f"{label} (n={len(data)})")


def _overhead(fig: Any, sc: dict[str, Any], samples: dict[str, Any]) -> bool:
    cases = dig(sc, "overhead", "cases")
    seq = dig(samples, "overhead", "1")
    if not cases:
        return False
    ax = fig.add_subplot(1, 2, 1)
    if seq:
        _cdf(ax, seq.get("direct", []), "direct to emulator")
        _cdf(ax, seq.get("gateway", []), "through gateway")
        if seq.get("reference"):
            _cdf(ax, seq["reference"], "through reference gateway")
        ax.set_xscale("log")
    ax.set_xlabel("latency, ms (log)")
    ax.set_ylabel("share of turns")
    ax.set_title("Sequential tool-calls turn: latency CDF")
    ax.legend()
    ax2 = fig.add_subplot(1, 2, 2)
    keys = sorted(cases, key=int)
    bars = [
        ("delta_p50_ms", "gateway p50"),
        ("delta_p99_ms", "gateway p99"),
        ("reference_delta_p50_ms", "reference p50"),
        ("reference_delta_p99_ms", "reference p99"),
    ]
    bars = [(metric, label) for metric, label in bars if all(metric in cases[k] for k in keys)]
    width = 0.8 / len(bars)
    for n, (metric, label) in enumerate(bars):
        meds = [cases[k][metric]["median"] or 0 for k in keys]
        lows = [m - (cases[k][metric]["min"] or 0) for m, k in zip(meds, keys, strict=True)]
        highs = [(cases[k][metric]["max"] or 0) - m for m, k in zip(meds, keys, strict=True)]
        xs = [i - 0.4 + width * (n + 0.5) for i in range(len(keys))]
        ax2.bar(xs, meds, width=width, yerr=[lows, highs], capsize=3, label=label)
    ax2.set_xticks(range(len(keys)), [f"c={k}" for k in keys])
    ax2.set_ylabel("added over direct, ms")
    ax2.set_title("Added latency (median of rounds, range)")
    ax2.legend()
    return True


def _throughput(fig: Any, sc: dict[str, Any], samples: dict[str, Any]) -> bool:
    cases = dig(sc, "throughput", "cases")
    if not cases:
        return False
    ax = fig.add_subplot(1, 2, 1)
    variants = ("gateway-aiohttp", "gateway-httpx", "reference")
    keys = sorted(cases, key=int)
    width = 0.8 / len(variants)
    for j, v in enumerate(variants):
        meds = [cases[k][v]["turns_per_s"]["median"] or 0 for k in keys]
        lo = [m - (cases[k][v]["turns_per_s"]["min"] or 0) for m, k in zip(meds, keys, strict=True)]
        hi = [(cases[k][v]["turns_per_s"]["max"] or 0) - m for m, k in zip(meds, keys, strict=True)]
        xs = [i + (j - 1) * width for i in range(len(keys))]
        ax.bar(xs, meds, width=width, yerr=[lo, hi], capsize=3, label=v)
    ax.set_xticks(range(len(keys)), [f"c={k}" for k in keys])
    ax.set_ylabel("turns/s (median, range)")
    ax.set_title("Closed-loop throughput, one process")
    ax.legend()
    ax2 = fig.add_subplot(1, 2, 2)
    for j, v in enumerate(variants):
        meds = [cases[k][v]["cpu_ms_per_turn"]["median"] or 0 for k in keys]
        xs = [i + (j - 1) * width for i in range(len(keys))]
        ax2.bar(xs, meds, width=width, label=v)
    ax2.set_xticks(range(len(keys)), [f"c={k}" for k in keys])
    ax2.set_ylabel("server CPU ms per turn")
    ax2.set_title("CPU cost per turn (from /proc)")
    ax2.legend()
    return True


def _scale(fig: Any, sc: dict[str, Any], samples: dict[str, Any]) -> bool:
    trace = dig(sc, "scale", "rss_trace")
    if not trace:
        return False
    ax = fig.add_subplot(1, 2, 1)
    ax.plot([t for t, _ in trace], [kb / 1024 for _, kb in trace])
    ax.set_xlabel("s since burst start")
    ax.set_ylabel("gateway VmRSS, MB")
    ax.set_title(f"{sc['scale']['turns']} turns in flight ({sc['scale']['job_s']:g} s jobs)")
    lat = dig(samples, "scale", "latency")
    ax2 = fig.add_subplot(1, 2, 2)
    if lat:
        ax2.hist(lat, bins=50)
        ax2.set_xlabel("turn latency, ms")
        ax2.set_ylabel("turns")
        ax2.set_title("Latency of the burst (last round)")
    return True


def _faults(fig: Any, sc: dict[str, Any], samples: dict[str, Any]) -> bool:
    data = sc.get("faults")
    if not data:
        return False
    ax = fig.add_subplot(1, 1, 1)
    model, fallback = data["samples"]["model"], data["samples"]["fallback"]
    bins = 60
    top = max(model + fallback + [1])
    edges = [i * top / bins for i in range(bins + 1)]
    ax.hist(model, bins=edges, alpha=0.7, label=f"model reply (n={len(model)})")
    ax.hist(fallback, bins=edges, alpha=0.7, label=f"fallback sentence (n={len(fallback)})")
    ax.axvline(data["budget_ms"], color="red", linestyle="--", label="TOOL_BUDGET_MS")
    ax.set_yscale("log")
    ax.set_xlabel("client-observed turn latency, ms")
    ax.set_ylabel("turns (log)")
    ax.set_title(
        f"Fault mix over {data['turns']} turns: {data['within_budget_share']:.1%} within budget"
    )
    ax.legend()
    return True


def _streaming(fig: Any, sc: dict[str, Any], samples: dict[str, Any]) -> bool:
    data = sc.get("streaming")
    if not data or not data["samples"]["gateway_ttft"]:
        return False
    ax = fig.add_subplot(1, 1, 1)
    ax.boxplot(
        [data["samples"]["engine_ttft"], data["samples"]["gateway_ttft"]],
        vert=False,
        tick_labels=["engine simulator, direct", "gateway → RunPod emulator → worker → engine"],
    )
    ax.set_xlabel("time to first content token, ms")
    ax.set_title("Custom-LLM streaming TTFT (sequential)")
    return True


def _soak(fig: Any, sc: dict[str, Any], samples: dict[str, Any]) -> bool:
    soak = dig(sc, "soak", "soak")
    sweep = dig(sc, "soak", "sweep", "points")
    if not soak:
        return False
    ax = fig.add_subplot(1, 2, 1)
    trace = soak["rss_trace"]
    ax.plot([t for t, _ in trace], [kb / 1024 for _, kb in trace], label="VmRSS, MB")
    ax.set_xlabel("s")
    ax.set_ylabel("gateway VmRSS, MB")
    ax.set_title(f"Soak at {soak['rate_per_s']} turns/s")
    twin = ax.twinx()
    win = soak["windows"]
    twin.plot([w["t_s"] for w in win], [w["p99_ms"] for w in win], color="tab:red", marker="o")
    twin.set_ylabel("p99 per 5 s window, ms", color="tab:red")
    if sweep:
        ax2 = fig.add_subplot(1, 2, 2)
        offered = [p["offered_per_s"] for p in sweep]
        ax2.plot(offered, [p["achieved_per_s"] for p in sweep], marker="o", label="achieved")
        ax2.plot(offered, offered, linestyle=":", color="grey", label="offered")
        ax2.set_xlabel("offered turns/s (open loop)")
        ax2.set_ylabel("achieved turns/s")
        t2 = ax2.twinx()
        t2.plot(offered, [p["p99_ms"] for p in sweep], color="tab:red", marker="x")
        t2.set_yscale("log")
        t2.set_ylabel("p99 from scheduled send, ms (log)", color="tab:red")
        knee = dig(sc, "soak", "sweep", "knee_per_s")
        if knee:
            ax2.axvline(knee, color="green", linestyle="--", label=f"knee {knee}/s")
        ax2.set_title("Open-loop rate sweep")
        ax2.legend(loc="upper left")
    return True


def _peers(fig: Any, sc: dict[str, Any], samples: dict[str, Any]) -> bool:
    data = sc.get("peers")
    if not data or data.get("skipped"):
        return False
    ax = fig.add_subplot(1, 1, 1)
    names = list(data["turns_per_s"])
    meds = [data["turns_per_s"][n]["median"] or 0 for n in names]
    ax.barh(names, meds)
    ax.set_xlabel("turns (requests)/s at 16 concurrent, median of rounds")
    ax.set_title("Same load generator, same machine, same run")
    return True
