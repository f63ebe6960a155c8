"""The benchmark harness (issue #7): ``python -m bench`` measures the gateway on this machine.

Layout: :mod:`bench.loadgen` (the load generator, its own pinned process), :mod:`bench.server`
(the gateway or the minimal reference gateway in a pinned process with an event-loop lag
sampler), :mod:`bench.reference` (that reference), :mod:`bench.procs` (starting, pinning and
reading processes from ``/proc``), :mod:`bench.scenarios` (one module per measurement),
:mod:`bench.report` (JSON, Markdown, plots, goals) and :mod:`bench.peers` (LiteLLM side by side).
"""
