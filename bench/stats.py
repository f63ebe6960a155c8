"""Small, dependency-free statistics for latency samples: percentiles, summaries, medians of runs.

All inputs are plain lists of floats (milliseconds by convention); empty inputs give ``None``
values rather than raising, so a failed run still produces a report.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100), linear interpolation between closest ranks."""
    if not values:
        return None
    data = sorted(values)
    if len(data) == 1:
        return float(data[0])
    pos = (len(data) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(data) - 1)
    return float(data[low] + (data[high] - data[low]) * (pos - low))


def summary(values: Sequence[float]) -> dict[str, Any]:
    """n, mean, p50, p90, p99, max of a sample (rounded to 3 decimals)."""
    if not values:
        return {"n": 0, "mean": None, "p50": None, "p90": None, "p99": None, "max": None}
    data = sorted(values)
    return {
        "n": len(data),
        "mean": r3(statistics.fmean(data)),
        "p50": r3(percentile(data, 50)),
        "p90": r3(percentile(data, 90)),
        "p99": r3(percentile(data, 99)),
        "max": r3(data[-1]),
    }


def spread(values: Iterable[float | None]) -> dict[str, Any]:
    """Median and range of per-round figures (the headline form on a noisy machine)."""
    data = sorted(v for v in values if v is not None)
    if not data:
        return {"median": None, "min": None, "max": None, "rounds": []}
    return {
        "median": r3(statistics.median(data)),
        "min": r3(data[0]),
        "max": r3(data[-1]),
        "rounds": [r3(v) for v in data],
    }


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return r3(a / b)


def r3(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def slope_per_s(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of ``(t_s, value)`` points (RSS growth in KB/s, say)."""
    if len(points) < 3:
        return None
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    if den == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den
