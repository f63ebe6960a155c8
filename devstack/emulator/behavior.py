"""What one emulated job does: a :class:`Behavior`, and the default output derived from its input.

A Behavior scripts a job's life on the emulated endpoint (runpod.md §1.6 states, §1.8 HTTP
errors). The run-side fields (``queue_s`` … ``progress``) drive the in-process virtual worker;
with real SDK workers attached only ``queue_s`` (the job is not takeable before it has passed,
like a cold start) and the HTTP faults apply, since the real worker decides the rest.

HTTP faults on the client API:

* ``submit_status`` (429, 500, 503, …) answers the submit with that code and creates **no** job;
  ``retry_after`` adds a ``Retry-After`` header; ``submit_errors`` limits the fault to the first
  K identical submits (same input and behaviour), so "429 once, then accepted" can be scripted.
* ``drop_connection`` creates the job, then closes the socket without an answer, and
  ``malformed`` creates it and answers 200 with a non-JSON body: both are the ambiguous
  "did the submit reach RunPod?" cases of runpod.md §5 (no idempotency key).
* ``status_errors`` makes the first K ``/status`` reads of the job answer ``status_error_code``.

``Behavior.from_dict`` reads the JSON form used by the ``X-Emulator-Behavior`` header and the
config file; ``stream`` is a list of ``[delay_s, chunk]`` pairs there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

TerminalStatus = Literal["COMPLETED", "FAILED", "TIMED_OUT"]
TERMINAL_BEHAVIOR_STATUSES: tuple[str, ...] = ("COMPLETED", "FAILED", "TIMED_OUT")
MODEL_NAME = "emulator"


class _Derived:
    """Marker for "derive the output from the input" (``None`` is a legitimate output)."""

    def __repr__(self) -> str:
        return "DERIVED"


DERIVED: Any = _Derived()


def json_object(data: Any, allowed: set[str], *, what: str, key: str) -> dict[str, Any]:
    """``data`` as a dict when it is a JSON object of ``allowed`` keys only; else ValueError
    ("<what> must be a JSON object", "unknown <key> key(s): ..."), for scripts and configs."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{what} must be a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"unknown {key} key(s): {', '.join(unknown)}")
    return dict(data)


@dataclass(frozen=True, slots=True, kw_only=True)
class Behavior:
    """One job's script; every field is optional and the default is a quick COMPLETED job."""

    queue_s: float = 0.0
    run_s: float = 0.0
    status: TerminalStatus = "COMPLETED"
    output: Any = DERIVED
    error: str | None = None
    stream: tuple[tuple[float, Any], ...] = ()
    progress: Any = None
    stall: bool = False
    submit_status: int | None = None
    retry_after: float | None = None
    submit_errors: int | None = None
    status_errors: int = 0
    status_error_code: int = 503
    drop_connection: bool = False
    malformed: bool = False

    def __post_init__(self) -> None:
        if self.status not in TERMINAL_BEHAVIOR_STATUSES:
            raise ValueError(f"status must be one of {TERMINAL_BEHAVIOR_STATUSES}")
        if self.queue_s < 0 or self.run_s < 0:
            raise ValueError("queue_s and run_s must be >= 0")
        if self.submit_status is not None and not 400 <= self.submit_status <= 599:
            raise ValueError("submit_status must be an HTTP error code (400-599)")
        if not 400 <= self.status_error_code <= 599:
            raise ValueError("status_error_code must be an HTTP error code (400-599)")
        object.__setattr__(self, "stream", tuple((float(d), c) for d, c in self.stream))

    def final_output(self, job_input: Mapping[str, Any]) -> Any:
        """The output a COMPLETED job reports: the scripted one, else the stream, else derived."""
        if self.output is not DERIVED:
            return self.output
        if self.stream:
            # what an SDK generator with return_aggregate_stream=True posts (runpod.md §2.4)
            return [chunk for _, chunk in self.stream]
        return default_output(job_input)

    def final_error(self) -> str:
        if self.error is not None:
            return self.error
        return "emulated timeout" if self.status == "TIMED_OUT" else "emulated failure"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["stream"] = [[delay, chunk] for delay, chunk in self.stream]
        if self.output is DERIVED:
            del out["output"]
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Behavior:
        """The JSON form (header, config file); raises ValueError naming the bad key."""
        values = json_object(
            data, {f.name for f in fields(cls)}, what="a behaviour", key="behaviour"
        )
        stream = values.get("stream", ())
        if not isinstance(stream, list | tuple) or not all(
            isinstance(p, list | tuple) and len(p) == 2 for p in stream
        ):
            raise ValueError("stream must be a list of [delay_s, chunk] pairs")
        values["stream"] = tuple((p[0], p[1]) for p in stream)
        try:
            return cls(**values)
        except TypeError as exc:
            raise ValueError(str(exc)) from None


def default_behavior(job_input: Mapping[str, Any]) -> Behavior:
    """The virtual worker of ``{"virtual": true}`` configs: every job completes at once."""
    del job_input
    return Behavior()


def default_output(job_input: Mapping[str, Any]) -> dict[str, Any]:
    """A v1 worker output (gpu_worker/contract.py) derived deterministically from the input."""
    tool = job_input.get("tool")
    if isinstance(tool, Mapping) and tool.get("name"):
        arguments = json.dumps(tool.get("arguments", {}), sort_keys=True)
        text = f"Emulated result of {tool['name']} for {arguments}."
    elif (said := _last_user_text(job_input.get("messages"))) is not None:
        text = f"You said: {said}"
    else:
        digest = hashlib.sha256(
            json.dumps(job_input, sort_keys=True, default=str).encode()
        ).hexdigest()
        text = f"Emulated reply {digest[:8]}."
    return {"text": text, "model": MODEL_NAME, "finish_reason": "stop"}


def stream_text(text: str, *, pieces: int, total_s: float) -> tuple[tuple[float, Any], ...]:
    """``text`` as v1 stream pieces ``{"text": delta}`` spread evenly over ``total_s``.

    The last piece carries ``"done": true`` and the model, as the contract's streaming workers do.
    """
    words = text.split(" ")
    pieces = max(1, min(pieces, len(words)))
    size = -(-len(words) // pieces)
    chunks = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    chunks = [c if i == 0 else " " + c for i, c in enumerate(chunks)]
    delay = total_s / len(chunks)
    out: list[tuple[float, Any]] = [(delay, {"text": c}) for c in chunks]
    last_delay, last = out[-1]
    out[-1] = (last_delay, {**last, "done": True, "model": MODEL_NAME})
    return tuple(out)


def _last_user_text(messages: Any) -> str | None:
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
    return None
