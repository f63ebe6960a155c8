"""The gateway's normalize_output folds every output shape this worker produces."""

from __future__ import annotations

import json

from gpu_worker.contract import StreamAccumulator, normalize_output

FINAL = {
    "text": "",
    "done": True,
    "model": "m",
    "usage": {"completion_tokens": 3},
    "finish_reason": "stop",
}


def test_streamed_pieces_fold_to_text_and_metadata():
    """[{"text"}, ..., final] (what /runsync returns for a streamed job) folds to one output."""
    out = normalize_output([{"text": "Hel"}, {"text": "lo."}, FINAL])
    assert (out.text, out.model, out.finish_reason, out.error) == ("Hello.", "m", "stop", None)
    assert out.usage == {"completion_tokens": 3}


def test_a_non_stream_job_is_a_one_piece_list():
    """A whole reply is one piece; the list of one folds like the piece itself."""
    piece = {**FINAL, "text": "Hello."}
    assert normalize_output([piece]) == normalize_output(piece)


def test_final_tool_calls_survive_the_fold():
    """OpenAI-shaped tool_calls on the final piece come out unchanged."""
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "lookup", "arguments": '{"q": "x"}'},
    }
    out = normalize_output([{**FINAL, "finish_reason": "tool_calls", "tool_calls": [call]}])
    assert out.tool_calls == [call] and out.finish_reason == "tool_calls"


def test_an_error_piece_after_text_is_reported():
    """Text then {"error"} (engine failed mid-stream) keeps the text and reports the error."""
    out = normalize_output([{"text": "Hel"}, {"error": "engine connection broke"}])
    assert out.text == "Hel" and out.error == "engine connection broke"


def test_vapi_results_piece_has_text():
    """The VAPI tool-calls answer folds to its spoken text."""
    piece = {**FINAL, "text": "Open nine to five.", "results": [{"toolCallId": "a"}]}
    assert normalize_output([piece]).text == "Open nine to five."


def _sse(*deltas: str) -> str:
    chunks = [
        {"choices": [{"index": 0, "delta": {"content": d}, "finish_reason": None}]} for d in deltas
    ]
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"


def test_passthrough_sse_split_anywhere_folds_the_same():
    """Raw SSE split anywhere after its first "data:" (even a lone newline piece) folds the same."""
    raw = _sse("Hi", " there", "!")
    for cut in range(len("data:"), len(raw)):
        acc = StreamAccumulator()
        for piece in (raw[:cut], raw[cut:]):
            acc.feed(piece)
        assert acc.result().text == "Hi there!", cut
    pieces = [raw[: raw.index("\n") + 1], "\n", raw[raw.index("\n") + 2 :]]
    assert normalize_output(pieces).text == "Hi there!"
