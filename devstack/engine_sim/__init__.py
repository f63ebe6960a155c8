"""Engine simulator: Ollama's and an OpenAI-compatible server's real wire formats, no GPU, no model.

``create_engine_sim(EngineSimConfig(...))`` returns a Starlette app speaking (runpod.md §4.1, §4.2;
``ollama.py``, ``openai.py``; reply planning, pacing and faults in ``core.py``):

* Ollama: ``GET /`` ("Ollama is running"), ``GET /api/version``, ``GET /api/tags``,
  ``POST /api/show``, ``POST /api/pull`` (NDJSON status lines ending ``{"status":"success"}``),
  ``POST /api/chat`` and ``POST /api/generate`` (``stream`` defaults to true: NDJSON lines, then a
  ``"done": true`` line with ``done_reason`` and token counts; ``stream: false`` gives one object).
  ``options.num_predict`` caps the reply; ``keep_alive`` is accepted.
* OpenAI-compatible (as vLLM and llama.cpp serve it): ``GET /v1/models``, ``GET /health``,
  ``POST /v1/chat/completions`` (SSE ``chat.completion.chunk`` events, ``choices`` in every one,
  role first, content deltas, a ``finish_reason`` chunk, a usage chunk when
  ``stream_options.include_usage``, then ``data: [DONE]``; or one ``chat.completion``).

The reply is derived from the last user message (same input, same words), its first token comes
after ``ttft_ms`` and the rest at ``tokens_per_s``. When the request carries ``tools`` and the last
user message names one of them, the reply is a tool call in the engine's own format. Unknown models
get the engine's 404 until ``/api/pull`` adds them.

Scripted faults for tests (``fault``; switch at run time with ``POST /_sim/config``): ``http500``,
``malformed`` (broken JSON / SSE after ``fault_after`` pieces), ``cut`` (connection dropped after
``fault_after`` pieces), ``stall`` (holds the connection open after ``fault_after`` pieces),
``slow`` (first token after ``slow_ttft_ms``). ``GET /_sim/stats`` (and ``app.state.sim``) count
requests, completed streams and client disconnects; ``POST /_sim/reset`` starts afresh. It is
labelled a simulator wherever it speaks: the model name, ``/api/version``, a start-up log line.

Run it: ``python -m devstack.engine_sim --host 127.0.0.1 --port 11435 [--ttft-ms 150]
[--tokens-per-s 40] [--model pete-simulator] [--fault cut --fault-after 3]``.
"""

from devstack.engine_sim.app import create_engine_sim, main
from devstack.engine_sim.core import FAULTS, LABEL, EngineSimConfig, Fault, SimState, SimulatedCut

__all__ = [
    "FAULTS",
    "LABEL",
    "EngineSimConfig",
    "Fault",
    "SimState",
    "SimulatedCut",
    "create_engine_sim",
    "main",
]
