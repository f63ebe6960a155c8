"""A work-around for one measured runpod SDK bug, applied only where its code is what we measured.

runpod-python's ``JobScaler.current_occupancy`` (1.12.0, ``rp_scale.py``) returns
``jobs_queue.qsize() + job_progress.get_job_count()``, but every taken job is added to
``job_progress`` when it is queued, so a queued job counts twice. After a batch take the worker
believes it is fuller than it is, sleeps a full second (``get_jobs``: "Queue is full"), and jobs
of a burst wait at RunPod with slots free. Measured through the real SDK loop against the local
RunPod: 8 one-second jobs on one worker with MAX_CONCURRENCY=8 took 2.05–2.12 s; with this fix
see tests/gpu_worker/test_worker_loop.py.

The fix counts taken-but-unfinished jobs once (``job_progress`` alone). It is applied only when
the method's source still has the double count, so a fixed SDK release is left alone.
"""

from __future__ import annotations

import inspect
from typing import Any


def fix_occupancy_double_count() -> bool:
    """Patch ``JobScaler.current_occupancy`` if it double-counts; True when patched."""
    from runpod.serverless.modules import rp_scale

    scaler: Any = rp_scale.JobScaler
    try:
        source = inspect.getsource(scaler.current_occupancy)
    except (AttributeError, OSError, TypeError):
        return False
    if "jobs_queue.qsize()" not in source or "job_progress.get_job_count()" not in source:
        return False

    def current_occupancy(self: Any) -> int:
        # job_progress holds every job from take to finish; the queue holds a subset of them.
        return int(self.job_progress.get_job_count())

    scaler.current_occupancy = current_occupancy
    return True
