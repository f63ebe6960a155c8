"""Which tool names we answer, and how (issue #3): a RunPod job, or a small local handler.

Model-backed tools (those in the assistant template, plus ``RUNPOD_TOOLS``; ``*`` sends any name
to RunPod) become one job each. Local handlers answer simple lookups without a GPU:
``list_transfer_destinations`` reads the template's transfer destinations. A name in neither is
answered with a per-result ``error`` string (vapi.md §2.2), never a crash and never a job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from app.vapi.toolcalls import ToolCall, ToolResult

Kind = Literal["runpod", "local"]
LocalTool = Callable[[ToolCall], Awaitable[ToolResult]]


@dataclass(frozen=True, slots=True)
class ToolRegistry:
    runpod: frozenset[str] = frozenset()
    local: Mapping[str, LocalTool] = field(default_factory=dict)
    any_to_runpod: bool = False

    def kind(self, name: str) -> Kind | None:
        if name in self.local:
            return "local"
        if name in self.runpod or self.any_to_runpod:
            return "runpod"
        return None

    def names(self) -> list[str]:
        return sorted({*self.runpod, *self.local})


def template_tool_names(assistant: Mapping[str, Any] | None) -> set[str]:
    """Function-tool names declared in an assistant config (``model.tools[].function.name``)."""
    model = assistant.get("model") if isinstance(assistant, Mapping) else None
    tools = model.get("tools") if isinstance(model, Mapping) else None
    names = set()
    for tool in tools if isinstance(tools, list) else []:
        fn = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            names.add(fn["name"])
    return names


def destinations_tool(destinations: Mapping[str, Mapping[str, Any]]) -> LocalTool:
    """A local tool that tells the assistant where it can transfer the caller."""

    async def list_transfer_destinations(call: ToolCall) -> ToolResult:
        described = [
            str(d.get("description") or name).rstrip(".")
            for name, d in destinations.items()
            if name != "default"
        ]
        if not described:
            return ToolResult(call, result="No transfer destinations are configured.")
        return ToolResult(call, result="I can transfer the caller to: " + "; ".join(described))

    return list_transfer_destinations


def build_registry(
    *,
    template_tools: Iterable[str],
    configured: Iterable[str],
    destinations: Mapping[str, Mapping[str, Any]],
) -> ToolRegistry:
    configured = [n.strip() for n in configured if n.strip()]
    return ToolRegistry(
        runpod=frozenset({*template_tools, *(n for n in configured if n != "*")}),
        local={"list_transfer_destinations": destinations_tool(destinations)},
        any_to_runpod="*" in configured,
    )
