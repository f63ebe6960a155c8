"""One emulated job: its record, the client-facing job object and the inspection view.

:meth:`Job.view` renders runpod.md §1.6: ``id`` and ``status`` always; ``delayTime`` (ms queued,
cold start included) once a worker picked the job up; ``executionTime`` (ms running, growing
while IN_PROGRESS); ``output`` when one is known (an IN_PROGRESS job may carry progress output,
§0.3); ``error``; ``workerId``. Ids look like RunPod's (``<uuid>-u1``, runsync ``sync-<uuid>-u1``).

Times are ``time.monotonic()`` seconds; :class:`Pulse` lets any number of waiters (runsync,
status-sync, stream holds) sleep until the job changes.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from devstack.emulator.behavior import Behavior

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})
SubmitKind = Literal["run", "runsync"]


class Pulse:
    """A broadcast "something changed": waiters share one future, :meth:`fire` resolves it.

    A future (not an Event) so a waiter can race it against a client disconnect with
    :func:`asyncio.wait` without creating a task per wait.
    """

    __slots__ = ("_future",)

    def __init__(self) -> None:
        self._future: asyncio.Future[None] | None = None

    def future(self) -> asyncio.Future[None]:
        if self._future is None:
            self._future = asyncio.get_running_loop().create_future()
        return self._future

    def fire(self) -> None:
        future, self._future = self._future, None
        if future is not None and not future.done():
            future.set_result(None)


def new_job_id(kind: SubmitKind) -> str:
    job_id = f"{uuid.uuid4()}-u1"
    return f"sync-{job_id}" if kind == "runsync" else job_id


@dataclass(slots=True, kw_only=True)
class Job:
    id: str
    endpoint_id: str
    kind: SubmitKind
    input: dict[str, Any]
    behavior: Behavior
    behavior_source: str
    policy: dict[str, Any]
    webhook: str | None
    ttl_s: float
    execution_timeout_s: float
    submitted_at: float
    queued_at: float
    expires_at: float
    status: str = "IN_QUEUE"
    started_at: float | None = None
    finished_at: float | None = None
    output: Any = None
    has_output: bool = False
    error: Any = None
    stream: list[Any] = field(default_factory=list)
    stream_cursor: int = 0
    worker_id: str | None = None
    cancelled: bool = False
    virtual: bool = False
    attempt: int = 0
    status_errors_left: int = 0
    late_results: int = 0
    history: list[tuple[float, str]] = field(default_factory=list)
    changed: Pulse = field(default_factory=Pulse)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def set_status(self, status: str, now: float) -> None:
        self.status = status
        self.history.append((now, status))
        if status in TERMINAL:
            self.finished_at = now
        self.changed.fire()

    def set_output(self, output: Any) -> None:
        self.output, self.has_output = output, True

    def view(self, now: float) -> dict[str, Any]:
        """The job object of ``/status`` and of a finished ``/runsync`` (runpod.md §1.6)."""
        out: dict[str, Any] = {"id": self.id, "status": self.status}
        out.update(self.timings(now))
        if self.has_output:
            out["output"] = self.output
        if self.error is not None:
            out["error"] = self.error
        if self.worker_id is not None:
            out["workerId"] = self.worker_id
        return out

    def timings(self, now: float) -> dict[str, int]:
        if self.started_at is None:
            return {}
        end = self.finished_at if self.finished_at is not None else now
        return {
            "delayTime": _ms(self.started_at - self.queued_at),
            "executionTime": _ms(end - self.started_at),
        }

    def take_stream(self) -> list[dict[str, Any]]:
        """Stream chunks not returned by an earlier ``/stream`` call (runpod.md §1.4)."""
        fresh = self.stream[self.stream_cursor :]
        self.stream_cursor = len(self.stream)
        return [{"output": chunk} for chunk in fresh]

    def inspect(self, now: float, wall: float) -> dict[str, Any]:
        """Everything a test or bench wants to know (``GET /_emulator/jobs``)."""

        def at(t: float | None) -> float | None:
            return None if t is None else round(wall - (now - t), 6)

        return {
            "id": self.id,
            "endpoint_id": self.endpoint_id,
            "kind": self.kind,
            "input": self.input,
            "status": self.status,
            "submitted_at": at(self.submitted_at),
            "queued_at": at(self.queued_at),
            "started_at": at(self.started_at),
            "finished_at": at(self.finished_at),
            "expires_at": at(self.expires_at),
            **self.timings(now),
            "worker_id": self.worker_id,
            "cancelled": self.cancelled,
            "attempt": self.attempt,
            "output": self.output if self.has_output else None,
            "error": self.error,
            "stream_chunks": len(self.stream),
            "late_results": self.late_results,
            "policy": self.policy,
            "webhook": self.webhook,
            "behavior": self.behavior.to_dict(),
            "behavior_source": self.behavior_source,
            "history": [[at(t), s] for t, s in self.history],
        }


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))
