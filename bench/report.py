"""Write a run's results: ``results.json``, ``samples.json``, ``results.md``, PNG plots, profiles.

``results.json`` holds the machine, versions, settings and every scenario's summary (medians and
ranges of rounds); per-request samples and traces go to ``samples.json`` (kept so plots can be
redrawn). ``results.md`` is the human report: the goals table first, then one table per scenario.
``profile-gateway.md`` keeps the profiler's bottleneck summary. :func:`load` reads a previous run
back, so ``python -m bench peers`` can add its figures to it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.goals import check, dig
from bench.markdown import markdown, profile_markdown
from bench.plots import render_all

SAMPLE_KEYS = ("samples", "rss_trace")


def split_samples(results: dict[str, Any]) -> dict[str, Any]:
    """Move bulky per-request data out of ``results`` (in place) into a separate dict."""
    samples: dict[str, Any] = {}
    for name, sc in results.get("scenarios", {}).items():
        if not isinstance(sc, dict):
            continue
        if "samples" in sc:
            samples[name] = sc.pop("samples")
        if "rss_trace" in sc:
            samples.setdefault(name, {})["rss_trace"] = sc.pop("rss_trace")
        if isinstance(sc.get("soak"), dict) and "rss_trace" in sc["soak"]:
            samples.setdefault(name, {})["soak_rss_trace"] = sc["soak"].pop("rss_trace")
    return samples


def join_samples(results: dict[str, Any], samples: dict[str, Any]) -> dict[str, Any]:
    """A copy of results with traces put back where the plots look for them."""
    merged = json.loads(json.dumps(results))
    for name, data in samples.items():
        sc = merged.get("scenarios", {}).get(name)
        if not isinstance(sc, dict) or not isinstance(data, dict):
            continue
        if "rss_trace" in data:
            sc["rss_trace"] = data["rss_trace"]
        if "soak_rss_trace" in data and isinstance(sc.get("soak"), dict):
            sc["soak"]["rss_trace"] = data["soak_rss_trace"]
        if name == "faults":
            sc["samples"] = data
        if name == "streaming":
            sc["samples"] = data
    return merged


def load(out: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    results, samples = {}, {}
    if (out / "results.json").exists():
        results = json.loads((out / "results.json").read_text())
    if (out / "samples.json").exists():
        samples = json.loads((out / "samples.json").read_text())
    return results, samples


def write(results: dict[str, Any], samples: dict[str, Any], out: Path) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    samples = {**samples, **split_samples(results)}
    results["goals"] = check(results)
    results["plots"] = render_all(join_samples(results, samples), samples, out)
    (out / "results.json").write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")
    (out / "samples.json").write_text(json.dumps(samples, separators=(",", ":")) + "\n")
    (out / "results.md").write_text(markdown(results))
    files = ["results.json", "samples.json", "results.md", *results["plots"]]
    profile = dig(results, "scenarios", "profile")
    if isinstance(profile, dict) and not profile.get("skipped"):
        (out / "profile-gateway.md").write_text(profile_markdown(profile))
        files.append("profile-gateway.md")
    return files
