"""The gateway understands the outputs of workers it did not build (contract.normalize_output)."""

from __future__ import annotations

from typing import Any

import pytest

from gpu_worker.contract import StreamAccumulator, normalize_output

SSE = (
    'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,'
    '"delta":{"role":"assistant","content":"Rent "},"finish_reason":null}]}\n\n'
    'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,'
    '"delta":{"content":"is due."},"finish_reason":null}]}\n\n'
    'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,'
    '"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
)
NDJSON = (
    '{"model":"llama3.2","message":{"role":"assistant","content":"Rent "},"done":false}\n'
    '{"model":"llama3.2","message":{"role":"assistant","content":"is due."},"done":false}\n'
    '{"model":"llama3.2","message":{"role":"assistant","content":""},"done":true,'
    '"done_reason":"stop"}\n'
)

SHAPES: list[tuple[str, Any]] = [
    ("ours-v1", {"text": "Rent is due.", "model": "m", "finish_reason": "stop"}),
    ("ours-pieces", [{"text": "Rent "}, {"text": "is due."}, {"text": "", "done": True}]),
    ("plain-string", "Rent is due."),
    ("ancestor-response", {"response": "Rent is due."}),
    (
        "openai-completion",
        {
            "object": "chat.completion",
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Rent is due."},
                    "finish_reason": "stop",
                }
            ],
        },
    ),
    (
        "ollama-chat",
        {
            "model": "llama3.2",
            "message": {"role": "assistant", "content": "Rent is due."},
            "done": True,
        },
    ),
    ("ollama-generate", {"model": "llama3.2", "response": "Rent is due.", "done": True}),
    (
        "vllm-legacy-batches",
        [{"choices": [{"tokens": ["Rent ", "is "]}]}, {"choices": [{"tokens": ["due."]}]}],
    ),
    ("runpod-vllm-text", {"text": ["Rent is due."], "input_tokens": 3}),
    ("worker-vllm-sse-whole", [SSE]),
    ("worker-vllm-sse-split", [SSE[:37], SSE[37:150], SSE[150:]]),
    ("worker-ollama-ndjson-lines", NDJSON.splitlines(keepends=True)),
    ("runpod-stream-elements", [{"output": {"text": "Rent "}}, {"output": {"text": "is due."}}]),
]


@pytest.mark.parametrize(("shape", "output"), SHAPES, ids=[s for s, _ in SHAPES])
def test_every_known_output_shape_yields_the_text(shape: str, output: Any) -> None:
    """Each worker family's output normalises to the same spoken text."""
    result = normalize_output(output)
    assert result.error is None, shape
    assert result.text == "Rent is due."


@pytest.mark.parametrize(
    "output",
    [None, 42, {"unexpected": True}, {"error": "CUDA out of memory"}, {"error": {"message": "x"}}],
    ids=["none", "number", "unknown-object", "error-string", "error-object"],
)
def test_unusable_outputs_become_errors_not_exceptions(output: Any) -> None:
    """Anything unusable is reported as an error with no text, never raised."""
    result = normalize_output(output)
    assert result.text == "" and result.error


def test_stream_accumulator_returns_deltas_as_they_arrive() -> None:
    """Raw SSE split mid-event still yields each delta exactly once, in order."""
    acc = StreamAccumulator()
    deltas = [acc.feed(SSE[i : i + 29]) for i in range(0, len(SSE), 29)]
    assert "".join(deltas) == "Rent is due."
    assert acc.done and acc.result().finish_reason == "stop"


def test_tool_calls_split_across_chunks_are_reassembled() -> None:
    """OpenAI streamed tool-call arguments arrive in pieces and are joined per index."""
    acc = StreamAccumulator()
    for args in ('{"unit"', ': "4B"}'):
        acc.feed(
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "call_1" if args.startswith("{") else None,
                                    "function": {
                                        "name": "lookup_rent" if args.startswith("{") else None,
                                        "arguments": args,
                                    },
                                }
                            ]
                        },
                    }
                ]
            }
        )
    calls = acc.result().tool_calls
    assert calls == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "lookup_rent", "arguments": '{"unit": "4B"}'},
        }
    ]
