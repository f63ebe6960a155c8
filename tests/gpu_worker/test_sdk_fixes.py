"""The runpod SDK work-around applies to the SDK we pin, fixes the count, and only once."""

from __future__ import annotations

import asyncio

from runpod.serverless.modules import rp_scale

from gpu_worker.sdk_fixes import fix_occupancy_double_count


def test_queued_jobs_count_once_after_the_fix() -> None:
    """Two taken jobs, both still queued: occupancy is 2, not 4."""
    original = rp_scale.JobScaler.current_occupancy
    try:
        patched = fix_occupancy_double_count()
        scaler = rp_scale.JobScaler({"handler": lambda job: job})
        scaler.jobs_queue = asyncio.Queue(maxsize=8)
        taken = [{"id": "a"}, {"id": "b"}]
        for job in taken:
            scaler.jobs_queue.put_nowait(job)
            scaler.job_progress.add(job)
        try:
            assert scaler.current_occupancy() == 2
            if patched:
                assert fix_occupancy_double_count() is False  # already fixed: left alone
        finally:
            for job in taken:
                scaler.job_progress.remove(job)
    finally:
        rp_scale.JobScaler.current_occupancy = original
