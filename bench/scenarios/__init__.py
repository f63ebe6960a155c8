"""One module per measurement; each exposes ``run(bench) -> dict`` (JSON-ready summary).

Order matters only for :mod:`bench.scenarios.soak`, which sizes its rates from the capacity
:mod:`bench.scenarios.throughput` measured earlier in the same run (or measures it briefly).
"""
