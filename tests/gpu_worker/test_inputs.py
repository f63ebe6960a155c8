"""Every accepted input shape parses to one normalised request; bad inputs name the field."""

from __future__ import annotations

from typing import Any

import pytest

from gpu_worker.contract import ContractError, build_job_input, parse_job_input
from gpu_worker.inputs import (
    Admin,
    AnswerToolCalls,
    Generate,
    OpenAIProxy,
    parse_request,
)

from .conftest import JOB_FILES, load_job

KINDS = {
    "text": Generate,
    "tool_calls": Generate,
    "results": AnswerToolCalls,
    "admin": Admin,
    "sse": OpenAIProxy,
    "models": OpenAIProxy,
}


@pytest.mark.parametrize("path", JOB_FILES, ids=lambda p: p.stem)
def test_every_example_file_parses_to_its_shape(path):
    """Each file in tests/fixtures/jobs parses to the shape it is named after."""
    job = load_job(path)
    request = parse_request(job["input"])
    assert request.shape == job["expect"]["shape"] == path.stem.removesuffix("_tools")
    assert isinstance(request, KINDS[job["expect"]["output"]])


@pytest.mark.parametrize(
    "path", [p for p in JOB_FILES if p.stem.startswith("v1_")], ids=lambda p: p.stem
)
def test_v1_examples_are_what_the_gateway_builds(path):
    """The gateway's build_job_input reproduces every v1 example exactly (one contract)."""
    raw = load_job(path)["input"]
    job = parse_job_input(raw)
    built = build_job_input(
        type=job.type,
        messages=job.messages,
        tool_name=job.tool.name if job.tool else None,
        tool_arguments=job.tool.arguments if job.tool else None,
        model=job.model,
        max_tokens=job.max_tokens,
        temperature=job.temperature,
        stream=job.stream,
        call_id=job.call_id,
        tools=job.tools,
    )
    assert built == {"messages": [], **raw}


def test_v1_tool_job_carries_the_contract_tool_instruction():
    """A v1 tool job becomes the conversation plus the contract's tool instruction."""
    request = parse_request(load_job(next(p for p in JOB_FILES if p.stem == "v1_tool"))["input"])
    assert isinstance(request, Generate)
    assert request.messages[-1]["role"] == "system"
    assert "check_availability" in request.messages[-1]["content"]


def test_warmups_ask_for_one_token():
    """v1 warmup, {"warmup": true} are tiny engine requests."""
    for raw in ({"v": 1, "type": "warmup"}, {"warmup": True}):
        request = parse_request(raw)
        assert isinstance(request, Generate) and request.warmup and request.max_tokens == 1


def test_legacy_knobs_from_options_and_sampling_params():
    """Ollama options and worker-vllm sampling_params set max_tokens and temperature."""
    a = parse_request({"prompt": "hi", "options": {"num_predict": 12, "temperature": 0.1}})
    b = parse_request(
        {"messages": [{"role": "user", "content": "hi"}], "sampling_params": {"max_tokens": 7}}
    )
    c = parse_request({"prompt": "hi", "options": {"num_predict": -1}, "system": "Be brief."})
    assert (a.max_tokens, a.temperature) == (12, 0.1)
    assert b.max_tokens == 7
    assert c.max_tokens is None and c.messages[0] == {"role": "system", "content": "Be brief."}


def test_legacy_chat_keeps_history_and_system_prompt():
    """{"type": "chat", "message"} puts system, history and the new turn in order."""
    request = parse_request(
        {
            "type": "chat",
            "message": "And on Monday?",
            "system_prompt": "S",
            "history": [
                {"role": "user", "content": "Open Sunday?"},
                {"role": "assistant", "content": "Yes."},
            ],
        }
    )
    assert [m["role"] for m in request.messages] == ["system", "user", "assistant", "user"]
    assert request.messages[-1]["content"] == "And on Monday?"


def test_vapi_webhook_reads_every_tool_call_shape():
    """toolCallList, legacy toolCalls and toolWithToolCallList all give the same calls."""
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "lookup", "arguments": '{"q": "x"}'},
    }
    messages = [
        {"type": "tool-calls", "toolCallList": [call]},
        {"type": "tool-calls", "toolCalls": [call]},
        {"type": "tool-calls", "toolWithToolCallList": [{"type": "function", "toolCall": call}]},
        {
            "type": "tool-calls",
            "toolCallList": [{"id": "c1", "name": "lookup", "parameters": {"q": "x"}}],
        },
    ]
    for message in messages:
        request = parse_request({"type": "vapi_webhook", "message": message})
        assert isinstance(request, AnswerToolCalls)
        assert [(c.id, c.name, c.arguments) for c in request.calls] == [
            ("c1", "lookup", {"q": "x"})
        ]


def test_vapi_webhook_keeps_spoken_context_only():
    """The engine sees the last user/assistant turns, not tool plumbing."""
    path = next(p for p in JOB_FILES if p.stem == "legacy_vapi_webhook")
    request = parse_request(load_job(path)["input"])
    assert [m["role"] for m in request.context] == ["assistant", "user"]


def test_openai_passthrough_routes():
    """openai_route with or without /v1; models is a GET without a body."""
    chat = parse_request(
        {"openai_route": "/v1/chat/completions", "openai_input": {"messages": [], "stream": True}}
    )
    models = parse_request({"openai_route": "/v1/models"})
    assert (chat.route, chat.method, chat.stream) == ("/chat/completions", "POST", True)
    assert (models.route, models.method, models.body) == ("/models", "GET", None)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("just a string", "input"),
        ({}, "input"),
        ({"v": 2, "type": "chat", "messages": []}, "v"),
        ({"v": 1, "type": "chat", "messages": []}, "messages"),
        (
            {"v": 1, "type": "chat", "messages": [{"role": "bot", "content": "x"}]},
            "messages[0].role",
        ),
        ({"v": 1, "type": "tool", "messages": []}, "tool"),
        (
            {
                "v": 1,
                "type": "chat",
                "messages": [{"role": "user", "content": "x"}],
                "max_tokens": 0,
            },
            "max_tokens",
        ),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x", "options": {"temperature": 9}}, "options.temperature"),
        ({"prompt": "x", "sampling_params": {"max_tokens": "many"}}, "sampling_params.max_tokens"),
        ({"prompt": "x", "stream": "yes"}, "stream"),
        ({"type": "chat", "message": ""}, "message"),
        ({"type": "chat", "message": "x", "history": [{"role": "x"}]}, "history[0].role"),
        ({"type": "admin", "action": "reboot"}, "action"),
        ({"type": "vapi_webhook", "message": {"type": "status-update"}}, "message.type"),
        ({"type": "vapi_webhook", "message": "tool-calls"}, "message"),
        ({"type": "vapi_webhook", "message": {"type": "tool-calls"}}, "message.toolCallList"),
        ({"openai_route": "/v1/embeddings", "openai_input": {}}, "openai_route"),
        ({"openai_route": "/v1/chat/completions"}, "openai_input"),
        ({"openai_route": "/v1/chat/completions", "openai_input": []}, "openai_input"),
        ({"type": "bogus"}, "type"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_inputs_name_the_field(raw: Any, field: str):
    """Every rejected input raises ContractError naming the offending field."""
    with pytest.raises(ContractError) as caught:
        parse_request(raw)
    assert caught.value.field == field
