"""``python -m bench.gcwrap MODULE [ARGS...]``: run ``python -m MODULE`` with a lazier cyclic GC.

For the upstream stand-ins only (the RunPod emulator, the engine simulator), never for a server
under test. The emulator keeps every job object until it expires, and with CPython's default
thresholds its generation-2 collections paused it for 40–200 ms at 2,000 jobs/s: that stall showed
up as p99 on the direct *and* the gateway path and hid the gateway's own tail. Raising the
generation-0 threshold to 100,000 made those pauses disappear (direct p99 at 16 concurrent:
70 ms → 11 ms) without changing what the stand-ins do.
"""

from __future__ import annotations

import gc
import runpy
import sys

THRESHOLDS = (100_000, 50, 1000)


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m bench.gcwrap MODULE [ARGS...]")
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    gc.set_threshold(*THRESHOLDS)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
