"""Behaviours, fault mixes and emulator settings as plain data (no HTTP)."""

from __future__ import annotations

import json
import random
import statistics
from collections.abc import Callable
from pathlib import Path

import pytest

from devstack.emulator import Behavior, EmulatorConfig, FaultMix, Latency, stream_text
from devstack.emulator.__main__ import build_config, parse_args
from devstack.emulator.behavior import DERIVED
from gpu_worker.contract import normalize_output

TOOL = {"v": 1, "type": "tool", "tool": {"name": "lookup_rent", "arguments": {"unit": "4B"}}}


def test_default_output_is_a_v1_output_derived_from_the_input() -> None:
    """The derived output is contract v1 and the same for the same input."""
    output = Behavior().final_output(TOOL)
    assert output == Behavior().final_output(dict(TOOL))
    assert normalize_output(output).text == 'Emulated result of lookup_rent for {"unit": "4B"}.'
    assert normalize_output(output).model == "emulator"


def test_streamed_behaviour_outputs_the_aggregate_of_its_pieces() -> None:
    """With a stream and no scripted output, the final output is the list of chunks."""
    pieces = stream_text("one two three four", pieces=2, total_s=1.0)
    assert [delay for delay, _ in pieces] == [0.5, 0.5]
    output = Behavior(stream=pieces).final_output({})
    assert output == [
        {"text": "one two"},
        {"text": " three four", "done": True, "model": "emulator"},
    ]
    assert normalize_output(output).text == "one two three four"


def test_behavior_json_round_trips() -> None:
    """to_dict/from_dict keep every field, including stream pairs and a scripted output."""
    behavior = Behavior(run_s=0.5, stream=((0.1, "a"),), output={"text": "x"}, submit_status=429)
    assert Behavior.from_dict(json.loads(json.dumps(behavior.to_dict()))) == behavior
    assert Behavior.from_dict({}).output is DERIVED


@pytest.mark.parametrize(
    "data",
    [{"speed": 1}, {"status": "DONE"}, {"stream": ["a"]}, {"submit_status": 200}, []],
    ids=["unknown-key", "bad-status", "stream-not-pairs", "submit-not-error", "not-object"],
)
def test_bad_behavior_json_is_rejected(data: object) -> None:
    """Mistyped behaviours fail loudly instead of silently doing the default."""
    with pytest.raises(ValueError):
        Behavior.from_dict(data)


def test_fault_mix_is_deterministic_for_a_seed() -> None:
    """The same seed and submission order give the same behaviours; another seed does not."""
    mix = FaultMix(
        seed=7, failure_rate=0.3, cold_start_rate=0.3, run=Latency(median_s=0.2, p95_s=1)
    )
    first = [mix.sampler()({"i": i}) for i in range(1)]
    draw_a, draw_b = mix.sampler(), mix.sampler()
    a = [draw_a({"i": i}) for i in range(50)]
    b = [draw_b({"i": i}) for i in range(50)]
    other = FaultMix(seed=8, failure_rate=0.3, cold_start_rate=0.3).sampler()
    assert a == b and a[:1] == first
    assert a != [other({"i": i}) for i in range(50)]


def test_fault_mix_rates_and_ranges_hold_over_many_jobs() -> None:
    """Failure, stall and cold-start shares land near their rates; cold starts stay in range."""
    mix = FaultMix(
        seed=1,
        failure_rate=0.05,
        stall_rate=0.02,
        cold_start_rate=0.10,
        cold_start_s=(2, 30),
        run=Latency(median_s=0.3, p95_s=1.2),
        submit_429_rate=0.05,
    )
    draw = mix.sampler()
    behaviors = [draw({}) for _ in range(4000)]

    def share(predicate: Callable[[Behavior], bool]) -> float:
        return sum(map(predicate, behaviors)) / len(behaviors)

    assert share(lambda b: b.status == "FAILED") == pytest.approx(0.05, abs=0.015)
    assert share(lambda b: b.stall) == pytest.approx(0.02, abs=0.01)
    assert share(lambda b: b.submit_status == 429) == pytest.approx(0.05, abs=0.015)
    cold = [b.queue_s for b in behaviors if b.queue_s > 0]
    assert len(cold) / len(behaviors) == pytest.approx(0.10, abs=0.02)
    assert all(2 <= q <= 30 for q in cold)
    runs = sorted(b.run_s for b in behaviors)
    assert statistics.median(runs) == pytest.approx(0.3, rel=0.1)
    assert runs[int(0.95 * len(runs))] == pytest.approx(1.2, rel=0.15)


def test_latency_without_p95_is_constant() -> None:
    """A bare median is a fixed duration."""
    assert {Latency(median_s=0.2).sample(random.Random(i)) for i in range(5)} == {0.2}


def test_fault_mix_json_round_trips_and_rejects_nonsense() -> None:
    """FaultMix reads its JSON form (a number is a fixed latency) and refuses bad rates."""
    mix = FaultMix.from_dict({"seed": 3, "run": 0.4, "queue": {"median_s": 0.1, "p95_s": 0.5}})
    assert mix.run == Latency(median_s=0.4) and mix.queue.p95_s == 0.5
    assert FaultMix.from_dict(json.loads(json.dumps(mix.to_dict()))) == mix
    for bad in ({"failure_rate": 0.7, "stall_rate": 0.7}, {"flakiness": 1}, {"failure_rate": -1}):
        with pytest.raises(ValueError):
            FaultMix.from_dict(bad)


def test_config_file_and_flags_build_the_emulator_config(tmp_path: Path) -> None:
    """The CLI reads a JSON config and lets its flags win over it."""
    path = tmp_path / "faults.json"
    path.write_text(
        json.dumps(
            {"virtual": True, "api_key": "from-file", "take_hold_s": 4, "faults": {"seed": 2}}
        )
    )
    args = parse_args(
        ["--port", "9", "--api-key", "KEY", "--endpoint-id", "ep", "--config", str(path)]
    )
    config = build_config(args)
    assert config.api_key == "KEY" and config.endpoint_ids == ("ep",)
    assert config.take_hold_s == 4 and config.faults == FaultMix(seed=2)
    assert config.virtual_worker is not None
    assert config.public_view()["api_key"] == "***"


@pytest.mark.parametrize(
    "data",
    [{"nonsense": 1}, {"limits": {"teleport": {"rate": 1}}}, {"endpoint_ids": []}],
    ids=["unknown-key", "unknown-op", "no-endpoints"],
)
def test_bad_config_is_rejected(data: dict[str, object]) -> None:
    """Unknown keys, operations and empty endpoint lists are configuration errors."""
    with pytest.raises(ValueError):
        EmulatorConfig.from_dict(data)
