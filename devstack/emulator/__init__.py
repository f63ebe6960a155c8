"""A local RunPod control plane: the client API and the worker job API of a serverless endpoint.

``create_emulator(EmulatorConfig(...))`` returns a Starlette app (``app.state.emulator`` is the
live :class:`Emulator`); ``python -m devstack.emulator`` serves one. Jobs either wait for real
SDK workers (``runpod.serverless.start`` pointed at it, devstack/processes.py) or run in-process
with a scripted :class:`Behavior` (``virtual_worker``) or a seeded :class:`FaultMix`.
Spec: /work/shared/specs/runpod.md §1 (client API) and §3.6 (worker job API).
"""

from devstack.emulator.app import create_emulator
from devstack.emulator.behavior import Behavior, default_output, stream_text
from devstack.emulator.config import RUNPOD_LIMITS, EmulatorConfig, OpLimit
from devstack.emulator.faults import FaultMix, Latency
from devstack.emulator.state import Emulator

__all__ = [
    "RUNPOD_LIMITS",
    "Behavior",
    "Emulator",
    "EmulatorConfig",
    "FaultMix",
    "Latency",
    "OpLimit",
    "create_emulator",
    "default_output",
    "stream_text",
]
