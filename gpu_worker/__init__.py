"""The RunPod GPU worker.

`gpu_worker.contract` is pure (no runpod import) and is shared with the gateway, which builds
jobs from it; the rest of the package is the worker process (`python -m gpu_worker`).
"""
