"""The Markdown report of a run: the goals table first, then one section per scenario.

``markdown(results)`` renders ``results.md``; ``profile_markdown(profile)`` renders
``profile-gateway.md``. Figures print as ``median (min–max)`` of rounds when there were several.
"""

from __future__ import annotations

from typing import Any

from bench.goals import dig


def _f(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _sp(s: dict[str, Any] | None, digits: int = 2) -> str:
    """'median (min–max)' of a spread."""
    if not s or s.get("median") is None:
        return "–"
    if len(s.get("rounds", [])) <= 1:
        return _f(s["median"], digits)
    return f"{_f(s['median'], digits)} ({_f(s['min'], digits)}–{_f(s['max'], digits)})"


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def markdown(results: dict[str, Any]) -> str:
    m = results.get("machine", {})
    v = m.get("versions", {})
    s = results.get("settings", {})
    sc = results.get("scenarios", {})
    lines = [
        "# Benchmark results (`python -m bench`)",
        "",
        f"Generated {m.get('started_at', '?')} by `{results.get('command', 'python -m bench')}`"
        f" (profile `{dig(s, 'profile', 'name')}`), revision `{dig(m, 'revision', 'commit')}`"
        f" with {dig(m, 'revision', 'uncommitted_files')} uncommitted file(s). Machine:"
        f" {m.get('cpu_model')}, {m.get('cpus_usable')} usable CPU(s), {m.get('memory_gib')} GiB,"
        f" Linux {m.get('kernel')}, load average at start {m.get('loadavg_at_start')}."
        f" Python {v.get('python')}, starlette {v.get('starlette')}, uvicorn {v.get('uvicorn')}"
        f" (httptools {v.get('httptools')}, uvloop {v.get('uvloop')}), httpx {v.get('httpx')},"
        f" aiohttp {v.get('aiohttp')}.",
        "",
        f"CPU pinning (taskset): gateway / server under test on CPU {dig(s, 'layout', 'gateway')},"
        f" upstream (emulator, engine simulator, worker) on CPU {dig(s, 'layout', 'upstream')},"
        f" load generator on CPU {dig(s, 'layout', 'loadgen')}. The machine is shared: every"
        " figure is the median of interleaved rounds with the range in brackets, and ratios are"
        " taken within a round. See `bench/README.md` for the method.",
        "",
    ]
    for merge in results.get("merged", []):
        lines += [
            f"Re-measured at {merge['at']} with `--merge` (same machine, later): "
            + ", ".join(f"`{n}`" for n in merge["scenarios"])
            + ".",
            "",
        ]
    lines += [
        "## Goals (issue #7)",
        "",
    ]
    rows = [[g["goal"], _f(g["measured"]), g["target"], f"**{g['verdict']}**"]
            for g in results.get("goals", [])]  # fmt: skip
    lines += _table(["goal", "measured", "target", "verdict"], rows)
    for name, render in SECTIONS:
        if name in sc:
            lines += render(sc[name])
    notes = results.get("notes") or []
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


def _overhead(d: dict[str, Any]) -> list[str]:
    rows, refs = [], []
    for k in sorted(d["cases"], key=int):
        c = d["cases"][k]
        load = "sequential" if k == "1" else f"{k} concurrent"
        rows.append([
            load,
            _sp(c["direct_p50_ms"], 3), _sp(c["gateway_p50_ms"], 3), _sp(c["delta_p50_ms"], 3),
            _sp(c["direct_p99_ms"], 3), _sp(c["gateway_p99_ms"], 3), _sp(c["delta_p99_ms"], 3),
            c["errors"], _sp(c.get("foreign_cores"), 2),
        ])  # fmt: skip
        if "reference_p50_ms" in c:
            refs.append([
                load, _sp(c["reference_p50_ms"], 3), _sp(c["reference_delta_p50_ms"], 3),
                _sp(c["reference_p99_ms"], 3), _sp(c["reference_delta_p99_ms"], 3),
            ])  # fmt: skip
    lines = [
        "## Overhead: tool-calls turn via the gateway vs straight to the emulator (ms)",
        "",
        "Upstream: RunPod emulator, virtual worker (zero engine time). Gateway: HMAC on,"
        " metrics on, JSON logs to a file. Latency is client-observed, send to last byte."
        " `other load`: CPU used by processes outside the benchmark during the round (the"
        " worst of the sides), in cores.",
        "",
        *_table(
            ["load", "direct p50", "gateway p50", "Δ p50", "direct p99", "gateway p99", "Δ p99",
             "errors", "other load, cores"], rows,
        ),
    ]  # fmt: skip
    if refs:
        lines += [
            "The same hop through the minimal reference gateway (no features), measured in the"
            " same rounds: the part of the overhead that is the extra hop itself on this machine.",
            "",
            *_table(["load", "reference p50", "Δ p50", "reference p99", "Δ p99"], refs),
        ]
    return lines


def _throughput(d: dict[str, Any]) -> list[str]:
    rows = []
    for k in sorted(d["cases"], key=int):
        c = d["cases"][k]
        for name in ("gateway-aiohttp", "gateway-httpx", "reference"):
            x = c[name]
            rows.append([
                f"c={k}", name, _sp(x["turns_per_s"], 0), _sp(x["p99_ms"], 1),
                _sp(x["cpu_util"], 2), _sp(x["cpu_ms_per_turn"], 3),
                _sp(x["projected_turns_per_s_one_core"], 0), x["errors"],
                _sp(x.get("foreign_cores"), 2),
            ])  # fmt: skip
    ratios = []
    for k in sorted(d["cases"], key=int):
        c = d["cases"][k]
        ratios.append([
            f"c={k}", _sp(c["ratio_gateway_to_reference"], 3),
            _sp(c["cpu_ratio_gateway_to_reference"], 2), _sp(c["ratio_httpx_to_aiohttp"], 3),
        ])  # fmt: skip
    return [
        "## Throughput: one gateway process, closed loop",
        "",
        f"{d['rounds']} interleaved rounds of {d['duration_s']:g} s per server and concurrency."
        " `CPU share` is the server process's CPU time over wall time (1.00 = its core is"
        " saturated); `projected` = 1000 ÷ CPU ms per turn, what one saturated core would do"
        " (a projection from measured CPU cost, not a measurement). `other load` is CPU used"
        " by processes outside the benchmark during the run (from /proc/stat), in cores.",
        "",
        *_table(
            ["load", "server", "turns/s", "p99 ms", "CPU share", "CPU ms/turn",
             "projected turns/s/core", "errors", "other load, cores"], rows,
        ),
        *_table(
            ["load", "gateway ÷ reference (turns/s)", "gateway ÷ reference (CPU/turn)",
             "httpx ÷ aiohttp transport (turns/s)"], ratios,
        ),
    ]  # fmt: skip


def _profile(d: dict[str, Any]) -> list[str]:
    if d.get("skipped"):
        return ["## Profile", "", f"Skipped: {d['skipped']}", ""]
    g = d.get("gateway", {})
    r = d.get("reference", {})
    shares = list(g.get("package_share", {}).items())[:12]
    return [
        "## Profile (py-spy, gateway at 16 concurrent)",
        "",
        "Share of on-CPU samples with the package anywhere on the stack (inclusive), for the"
        " gateway and the reference gateway. Own-time tables and the app modules:"
        " `profile-gateway.md`.",
        "",
        *_table(
            ["package", "gateway", "reference"],
            [[k, f"{v:.1%}", f"{r.get('package_share', {}).get(k, 0):.1%}"] for k, v in shares],
        ),
    ]


def _scale(d: dict[str, Any]) -> list[str]:
    rows = [[
        i + 1, f"{r['answered']}/{r['turns']}", r["model_replies"], r["fallbacks"],
        sum(r["errors"].values()), _f(r["wall_s"]), _f(dig(r, "latency_ms", "p50")),
        _f(dig(r, "latency_ms", "p99")), _f(r["rss_idle_mb"], 1), _f(r["rss_peak_mb"], 1),
        _f(dig(r, "lag_ms", "p99")), _f(dig(r, "lag_ms", "max")),
    ] for i, r in enumerate(d["rounds"])]  # fmt: skip
    phases = (d["rounds"][-1].get("lag_by_phase_ms") or {}) if d["rounds"] else {}
    prow = [[
        name, _f(x.get("span_s"), 3), x.get("n"), _f(x.get("p50")), _f(x.get("p99")),
        _f(x.get("max")), d.get("lag_phases", {}).get(name, ""),
    ] for name, x in phases.items()]  # fmt: skip
    return [
        f"## Scale: {d['turns']:,} turns in flight, {d['job_s']:g} s per job, one gateway process",
        "",
        "All turns are sent at once (closed loop, one request per worker); the gateway's"
        " client-side RunPod concurrency caps are lifted so every turn is in flight upstream."
        " Loop lag is sampled inside the gateway every 10 ms; peak RSS is VmHWM, reset before"
        " the burst.",
        "",
        *_table(
            ["round", "answered", "model", "fallback", "errors", "wall s", "p50 ms", "p99 ms",
             "idle RSS MB", "peak RSS MB", "loop lag p99 ms", "lag max ms"], rows,
        ),
        "Loop lag by phase of the last round (phases from the load generator's clock; the"
        " gateway may still be working off the arrival backlog early in `held`):",
        "",
        *_table(["phase", "span s", "samples", "lag p50 ms", "lag p99 ms", "lag max ms",
                 "meaning"], prow),
    ]  # fmt: skip


def _faults(d: dict[str, Any]) -> list[str]:
    mix = d["mix"]
    rows = [
        ["model replies", d["model_replies"], *_lat(d["model_latency_ms"])],
        ["fallback sentences", d["fallbacks"], *_lat(d["fallback_latency_ms"])],
    ]
    return [
        f"## Faults: {d['turns']} turns at {d['rate_per_s']:g}/s against a fault mix",
        "",
        f"Mix (seeded): run time median {mix['run']['median_s']} s / p95 {mix['run']['p95_s']} s,"
        f" {mix['cold_start_rate']:.0%} cold starts of {mix['cold_start_s'][0]:g}–"
        f"{mix['cold_start_s'][1]:g} s, {mix['failure_rate']:.0%} failures,"
        f" {mix['stall_rate']:.0%} stalls. Budget `TOOL_BUDGET_MS` = {d['budget_ms']} ms;"
        f" within budget = HTTP 200 with a speakable result in ≤ {d['limit_ms']} ms.",
        "",
        f"**Within budget: {d['within_budget']}/{d['turns']} ({d['within_budget_share']:.1%})**;"
        f" fallback share {d['fallback_share']:.1%}; slowest turn {_f(d['max_latency_ms'])} ms;"
        f" fallback reasons (gateway metrics): {d['fallback_reasons']}; other outcomes:"
        f" {d['other'] or 'none'}.",
        "",
        *_table(["reply", "turns", "p50 ms", "p90 ms", "p99 ms", "max ms"], rows),
    ]


def _lat(s: dict[str, Any]) -> list[str]:
    return [_f(s.get("p50")), _f(s.get("p90")), _f(s.get("p99")), _f(s.get("max"))]


def _streaming(d: dict[str, Any]) -> list[str]:
    e = d["engine"]
    rows = [
        ["engine simulator TTFT, direct", *_lat(d["engine_ttft_ms"])],
        ["gateway TTFT (stream: true), full stack", *_lat(d["gateway_ttft_ms"])],
        ["gateway TTFT − engine TTFT (median)", *_lat(d["gateway_ttft_over_engine_ms"])],
        ["engine total reply time, direct", *_lat(d["engine_total_ms"])],
        ["RunPod delayTime (queued → taken by the worker)", *_lat(d.get("runpod_delay_ms", {}))],
        ["worker handler time per job", *_lat(d["worker_handler_ms"])],
        ["worker overhead = handler − engine total", *_lat(d["worker_overhead_ms"])],
        ["worker first piece", *_lat(d["worker_first_piece_ms"])],
        ["worker first piece − engine TTFT", *_lat(d["worker_first_piece_over_engine_ttft_ms"])],
    ]
    return [
        f"## Streaming: custom-LLM time to first token, {d['turns']} sequential turns",
        "",
        "gateway → RunPod emulator (`/run` + `/stream` polling) → `python -m gpu_worker` (real"
        f" SDK) → engine simulator (TTFT {e['ttft_ms']:g} ms, {e['tokens_per_s']:g} tokens/s,"
        f" {e['reply_tokens']} tokens). Worker figures come from its `job_done` log lines"
        f" ({d['worker_jobs_seen']} jobs). Outcomes: {d['classes']}.",
        "",
        *_table(["ms", "p50", "p90", "p99", "max"], rows),
    ]


def _soak(d: dict[str, Any]) -> list[str]:
    s = d["soak"]
    fill = s.get("cache_fill") or {}
    lines = [
        "## Load and soak",
        "",
        f"Before the soak, {_f(fill.get('turns'))} turns fill the gateway's idempotency store"
        f" (IDEMPOTENCY_MAX_ENTRIES={_f(fill.get('idempotency_max_entries'))}): RSS"
        f" {_f(fill.get('rss_mb_before'))} → {_f(fill.get('rss_mb_after'))} MB. That store is"
        " bounded; the soak then shows whether anything else grows.",
        "",
        f"Soak (after the sweep below): open loop at {s['rate_per_s']} turns/s"
        f" ({s.get('rate_basis', '')}; closed-loop capacity {_f(d['capacity_turns_per_s'], 0)}/s)"
        f" for {s['duration_s']:g} s: {s['turns']:,} turns,"
        f" achieved {_f(s['achieved_per_s'], 1)}/s, **errors {s['error_count']}**, dropped"
        f" {s['dropped']}; latency from scheduled send p50 {_f(dig(s, 'latency_ms', 'p50'))} /"
        f" p99 {_f(dig(s, 'latency_ms', 'p99'))} ms; RSS {_f(s['rss_mb_first'], 1)} →"
        f" {_f(s['rss_mb_last'], 1)} MB (max {_f(s['rss_mb_max'], 1)}), slope over the second half"
        f" {_f(s['rss_slope_mb_per_min_second_half'], 3)} MB/min; loop lag p99"
        f" {_f(dig(s, 'lag_ms', 'p99'))} ms.",
        "",
    ]
    pts = dig(d, "sweep", "points") or []
    rows = [[
        f"{p['share_of_capacity']:.2f}", p["offered_per_s"], _f(p["achieved_per_s"], 1),
        _f(p["p50_ms"]), _f(p["p99_ms"]), p["errors"], p["dropped"],
    ] for p in pts]  # fmt: skip
    lines += [
        f"Open-loop sweep (knee: **{_f(dig(d, 'sweep', 'knee_per_s'))} turns/s**, the last rate"
        " served within 5 % of the offered rate with p50 from the scheduled send under 100 ms):",
        "",
        *_table(
            ["× capacity", "offered/s", "achieved/s", "p50 ms", "p99 ms", "errors", "dropped"],
            rows,
        ),
    ]
    return lines


def _peers(d: dict[str, Any]) -> list[str]:
    if d.get("skipped"):
        return ["## Peer: LiteLLM proxy", "", f"Skipped: {d['skipped']}", ""]
    rows = [[n, _sp(x, 0)] for n, x in d["turns_per_s"].items()]
    seq = [[n, _sp(x, 3)] for n, x in d.get("sequential_p50_ms", {}).items()]
    return [
        f"## Peer: LiteLLM proxy {d.get('litellm_version')} (same machine, same run)",
        "",
        d.get("method", ""),
        "",
        *_table(["server (16 concurrent)", "requests/s"], rows),
        *_table(["server (sequential)", "p50 ms"], seq),
        f"Ratio ours (tool-calls turn) ÷ LiteLLM: **{_sp(d['ratio_ours_to_litellm'], 1)}×**;"
        f" ours (custom-LLM chat turn) ÷ LiteLLM: {_sp(d.get('ratio_chat_to_litellm'), 1)}×.",
        "",
    ]


def profile_markdown(d: dict[str, Any]) -> str:
    lines = [
        "# Gateway profile (py-spy, generated by `python -m bench`)",
        "",
        f"py-spy `record --nonblocking --rate 200` for {d['duration_s']:g} s on the server"
        f" process while the load generator kept {d['concurrency']} tool-calls turns in flight."
        " Own time = samples whose innermost frame is the function; package share = samples"
        " with that package anywhere on the stack. Collapsed stacks: `profile-*.txt`.",
        "",
    ]
    for name in ("gateway", "reference"):
        x = d.get(name)
        if not isinstance(x, dict) or x.get("skipped"):
            continue
        lines += [
            f"## {name}: {x['samples']} samples, {_f(x.get('turns_per_s_while_profiled'), 0)}"
            f" turns/s while profiled, CPU share {_f(x.get('cpu_util_while_profiled'))}",
            "",
            *_table(
                ["package", "own time", "inclusive"],
                [[k, f"{x['own_by_package'].get(k, 0):.1%}", f"{v:.1%}"]
                 for k, v in x["package_share"].items()]
                + [[k, f"{v:.1%}", "–"] for k, v in x["own_by_package"].items()
                   if k not in x["package_share"]],
            ),
            *_table(["app module (inclusive)", "share"],
                    [[f"`{k}`", f"{v:.1%}"] for k, v in x.get("app_module_share", {}).items()]),
            *_table(["function (own time)", "share"],
                    [[f"`{t['function']}`", f"{t['share']:.1%}"] for t in x["top_own"]]),
        ]  # fmt: skip
    return "\n".join(lines)


def _fuzz(d: dict[str, Any]) -> list[str]:
    if d.get("failed"):
        return ["## Fuzzing", "", f"Failed: {d['failed']}", ""]
    rows = [[f"`{label}`", sum(c.values()), ", ".join(f"{k}: {v:,}" for k, v in c.items())]
            for label, c in d.get("by_operation", {}).items()]  # fmt: skip
    checks = d.get("failures_by_check") or {}
    unauth = d.get("unauthenticated") or {}
    lines = [
        f"## Fuzzing: schemathesis against `/openapi.json`, {d['operations']} operations",
        "",
        f"Schemathesis {d.get('schemathesis_version', '?')} loads the gateway's document over"
        f" HTTP and draws up to {_f(d['max_examples_per_operation_and_mode'])} examples per"
        " operation and mode (positive: data the document allows; negative: data it forbids;"
        " Hypothesis derandomized), each sent with the operation's valid credential. Checks:"
        f" {', '.join(f'`{c}`' for c in d.get('checks', []))}. Then every protected operation"
        " once more with a wrong or no credential (must be 401 with a JSON body). Gateway:"
        " `python -m bench.server` with every credential set and short budgets, RunPod = the"
        " emulator's virtual worker; its JSON log is scanned afterwards for error/critical lines"
        " and tracebacks.",
        "",
        f"**5xx responses: {_f(d['server_errors'])}; unhandled exceptions logged:"
        f" {_f(d['unhandled_exceptions'])}**; {_f(d['examples'])} examples,"
        f" {_f(d['requests'])} requests ({_f(unauth.get('requests'))} of them unauthenticated,"
        f" {_f(unauth.get('not_401_json'))} not a JSON 401) in {_f(d['duration_s'], 1)} s;"
        f" statuses {', '.join(f'{k}: {v:,}' for k, v in d['by_status'].items())}; check"
        f" failures: {', '.join(f'`{k}` {v:,}' for k, v in checks.items()) or 'none'}.",
        "",
        *_table(["operation", "requests", "statuses"], rows),
    ]
    if d.get("not_generated"):
        lines += [
            "No negative data exists for (nothing to negate: no body, no parameter): "
            + ", ".join(f"`{x}`" for x in d["not_generated"])
            + ".",
            "",
        ]
    if d.get("lenient"):
        lines += [*(f"- {x}" for x in d["lenient"]), ""]
    for sample in d.get("failure_samples", [])[:5]:
        lines += ["```", sample[:1200], "```", ""]
    for record in d.get("exception_samples", [])[:3]:
        lines += ["```", str(record)[:1500], "```", ""]
    return lines


SECTIONS = (
    ("overhead", _overhead),
    ("throughput", _throughput),
    ("profile", _profile),
    ("scale", _scale),
    ("faults", _faults),
    ("streaming", _streaming),
    ("soak", _soak),
    ("fuzz", _fuzz),
    ("peers", _peers),
)
