"""Assistant templates and the ``assistant-request`` reply (vapi.md §2.1, §6 config, §0 item 8).

A template is a JSON or YAML file in the repo (``app/assistants/default.yaml`` is the
property-management demo). Top-level keys:

``assistant``            a transient VAPI assistant (``firstMessage``, ``model``, ``voice``, tools…)
``assistantId``          a saved assistant instead (wins over ``assistant``, like VAPI's own rule)
``assistantOverrides``   sent with either (``variableValues`` …)
``destination``          transfer every call at once, no AI (number or sip)
``error``                refuse every call with this spoken sentence
``destinations``         named transfer targets for transfer/handoff requests
                         (:func:`app.vapi.replies.answer_transfer`)
``overrides``            ``phoneNumbers`` (keyed by the called VAPI number or its id) and
                         ``customers`` (keyed by the caller's number): partial entries with the
                         five keys above, deep-merged onto the base (mappings merge, lists and
                         scalars replace, ``null`` deletes); the caller's entry is applied last
``variables``            defaults for ``{NAME}`` placeholders
``description``, ``version``  free text

Placeholders are single-brace upper-case names such as ``{PUBLIC_URL}`` or ``{MODEL_NAME}``;
VAPI's own ``{{customer.number}}`` templates are left alone. Every placeholder but
``{PUBLIC_URL}`` is filled at load from ``variables=`` (the caller's, e.g. settings) over the
file's ``variables:``; ``{PUBLIC_URL}`` is filled per reply by :func:`build_assistant_reply`.

Validation happens at load, for the base and for every override merged onto it: an unknown key,
an unknown placeholder, a model without ``provider`` (or a ``custom-llm`` one without ``url`` and
``model``), a malformed tool or destination, an unknown ``serverMessages`` value — each raises
:class:`TemplateError` naming the file and the path. After a successful load,
:func:`build_assistant_reply` is pure and never raises: the reply precedence is VAPI's (§2.1):
``error`` > ``destination`` > ``assistantId`` > ``assistant``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from app.vapi.destinations import (
    DestinationError,
    Destinations,
    load_destinations,
    validate_destination,
)
from app.vapi.messages import KNOWN_TYPES, ServerMessage
from app.vapi.replies import (
    assistant_destination_reply,
    assistant_error_reply,
    assistant_id_reply,
    assistant_reply,
)

PUBLIC_URL: Final = "PUBLIC_URL"
ENTRY_KEYS: Final = ("assistant", "assistantId", "assistantOverrides", "destination", "error")
TEMPLATE_KEYS: Final = frozenset(
    {*ENTRY_KEYS, "destinations", "overrides", "variables", "description", "version"}
)
OVERRIDE_SECTIONS: Final = ("phoneNumbers", "customers")
SERVER_MESSAGES: Final = KNOWN_TYPES - {
    # Sent to dedicated servers or always sent: not subscribable via serverMessages (vapi.md §1).
    "assistant-request",
    "knowledge-base-request",
    "campaign.predial",
    "call.endpointing.request",
    "voice-request",
}
"""``assistant.serverMessages`` values VAPI accepts (vapi.md §1; SDK 3.0.0 enum + the default
``assistant.started``)."""

_PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Z][A-Z0-9_]*)\}(?!\})")
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_PHONE_PUNCTUATION = re.compile(r"[\s().\-]")


class TemplateError(ValueError):
    """The template file cannot be used; the message names the file and the offending path."""


@dataclass(frozen=True, slots=True)
class AssistantTemplate:
    """A validated template. ``base`` and override entries hold only :data:`ENTRY_KEYS`."""

    source: str
    base: Mapping[str, Any]
    destinations: Destinations = field(default_factory=dict)
    phone_numbers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    customers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    description: str | None = None

    def entry_for(self, message: ServerMessage) -> dict[str, Any]:
        """The base deep-merged with the called number's, then the caller's, override."""
        entry: dict[str, Any] = dict(self.base)
        for key in (message.phone_number, message.phone_number_id):
            override = self.phone_numbers.get(normalise_number(key)) if key else None
            if override is not None:
                entry = deep_merge(entry, override)
                break
        if message.customer_number:
            override = self.customers.get(normalise_number(message.customer_number))
            if override is not None:
                entry = deep_merge(entry, override)
        return entry


def load_template(
    path: str | Path, *, variables: Mapping[str, str] | None = None
) -> AssistantTemplate:
    """Read, fill and validate a ``.json``/``.yaml``/``.yml`` template; :class:`TemplateError`."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{source}: cannot read: {exc}") from None
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            raise TemplateError(f"{source}: must end in .json, .yaml or .yml")
    except (ValueError, yaml.YAMLError) as exc:
        if isinstance(exc, TemplateError):
            raise
        raise TemplateError(f"{source}: not valid {suffix[1:].upper()}: {exc}") from None
    return parse_template(data, source=source, variables=variables)


def parse_template(
    data: Any, *, source: str = "<template>", variables: Mapping[str, str] | None = None
) -> AssistantTemplate:
    """Validate already-decoded template data (see the module docstring for the keys)."""
    if not isinstance(data, Mapping):
        raise TemplateError(f"{source}: the template must be a mapping")
    unknown = sorted(str(k) for k in data if k not in TEMPLATE_KEYS)
    if unknown:
        raise TemplateError(f"{source}: unknown key(s) {', '.join(unknown)}")
    values = _variables(data.get("variables"), variables, source)
    filled = _fill(
        {k: v for k, v in data.items() if k != "variables"}, values, source=source, path=""
    )
    base = {k: filled[k] for k in ENTRY_KEYS if filled.get(k) is not None}
    where = f"{source}: "
    try:
        destinations = load_destinations(filled.get("destinations"))
    except DestinationError as exc:
        raise TemplateError(f"{where}{exc}") from None
    _check_entry(base, where, partial=False)
    sections = filled.get("overrides") or {}
    if not isinstance(sections, Mapping):
        raise TemplateError(f"{where}overrides: must be a mapping")
    extra = sorted(str(k) for k in sections if k not in OVERRIDE_SECTIONS)
    if extra:
        raise TemplateError(f"{where}overrides: unknown section(s) {', '.join(extra)}")
    tables = {name: _overrides(base, sections.get(name), where, name) for name in OVERRIDE_SECTIONS}
    for customer_key, customer in tables["customers"].items():
        for number_key, number in tables["phoneNumbers"].items():
            combined = deep_merge(deep_merge(base, number), customer)
            _check_entry(
                combined,
                f"{where}overrides.phoneNumbers.{number_key}+customers.{customer_key}: ",
                partial=False,
            )
    description = data.get("description")
    return AssistantTemplate(
        source=source,
        base=base,
        destinations=destinations,
        phone_numbers=tables["phoneNumbers"],
        customers=tables["customers"],
        description=description if isinstance(description, str) else None,
    )


def build_assistant_reply(
    template: AssistantTemplate, message: ServerMessage, public_url: str
) -> dict[str, Any]:
    """The ``assistant-request`` reply for this call, with ``{PUBLIC_URL}`` filled in.

    Precedence (vapi.md §2.1): ``error`` > ``destination`` > ``assistantId`` > ``assistant``.
    """
    entry = _fill_public_url(template.entry_for(message), public_url.rstrip("/"))
    overrides = entry.get("assistantOverrides")
    overrides = overrides if isinstance(overrides, Mapping) else None
    if entry.get("error"):
        return assistant_error_reply(entry["error"])
    if isinstance(entry.get("destination"), Mapping):
        try:
            return assistant_destination_reply(entry["destination"])
        except DestinationError:  # validated at load; kept so the function is total
            return assistant_error_reply()
    if isinstance(entry.get("assistantId"), str):
        return assistant_id_reply(entry["assistantId"], overrides=overrides)
    if isinstance(entry.get("assistant"), Mapping):
        return assistant_reply(entry["assistant"], overrides=overrides)
    return assistant_error_reply()  # unreachable after validation; keeps the function total


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merge recursively; lists and scalars replace; ``None`` in ``override`` deletes."""
    merged: dict[str, Any] = dict(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def normalise_number(value: str) -> str:
    """``+1 (202) 555-0143`` → ``+12025550143``; ids and other keys pass through unchanged."""
    stripped = _PHONE_PUNCTUATION.sub("", value)
    return stripped if stripped.lstrip("+").isdigit() else value


# --- loading helpers ----------------------------------------------------------------------------


def _variables(defaults: Any, given: Mapping[str, str] | None, source: str) -> dict[str, str]:
    if defaults is not None and not isinstance(defaults, Mapping):
        raise TemplateError(f"{source}: variables: must be a mapping of NAME to text")
    values: dict[str, str] = {}
    for name, value in {**(defaults or {}), **(given or {})}.items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            raise TemplateError(f"{source}: variables: {name!r} is not an UPPER_CASE name")
        if name == PUBLIC_URL:
            raise TemplateError(f"{source}: variables: PUBLIC_URL is filled per reply")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise TemplateError(f"{source}: variables.{name}: must be text")
        values[name] = str(value)
    return values


def _fill(value: Any, values: Mapping[str, str], *, source: str, path: str) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name == PUBLIC_URL:
                return match.group(0)
            if name not in values:
                raise TemplateError(
                    f"{source}: {path or '<root>'}: unknown placeholder {{{name}}}"
                    " (give it under variables: or pass it at load)"
                )
            return values[name]

        return _PLACEHOLDER.sub(replace, value)
    if isinstance(value, Mapping):
        return {
            k: _fill(v, values, source=source, path=f"{path}.{k}" if path else str(k))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_fill(v, values, source=source, path=f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _fill_public_url(value: Any, public_url: str) -> Any:
    if isinstance(value, str):
        return value.replace("{PUBLIC_URL}", public_url) if "{PUBLIC_URL}" in value else value
    if isinstance(value, Mapping):
        return {k: _fill_public_url(v, public_url) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_public_url(v, public_url) for v in value]
    return value


def _overrides(
    base: Mapping[str, Any], table: Any, where: str, section: str
) -> dict[str, Mapping[str, Any]]:
    if table is None:
        return {}
    if not isinstance(table, Mapping):
        raise TemplateError(f"{where}overrides.{section}: must be a mapping")
    out: dict[str, Mapping[str, Any]] = {}
    for key, entry in table.items():
        label = f"{where}overrides.{section}.{key}: "
        if not isinstance(key, str) or not key:
            raise TemplateError(f"{label}keys must be strings (quote phone numbers in YAML)")
        if not isinstance(entry, Mapping):
            raise TemplateError(f"{label}must be a mapping")
        extra = sorted(str(k) for k in entry if k not in ENTRY_KEYS)
        if extra:
            raise TemplateError(f"{label}unknown key(s) {', '.join(extra)}")
        _check_entry(entry, label, partial=True)
        _check_entry(deep_merge(base, entry), label, partial=False)
        normalised = normalise_number(str(key))
        if normalised in out:
            raise TemplateError(f"{label}duplicates another key once normalised")
        out[normalised] = dict(entry)
    return out


def _check_entry(entry: Mapping[str, Any], where: str, *, partial: bool) -> None:
    if not partial and not any(
        entry.get(k) for k in ("assistant", "assistantId", "destination", "error")
    ):
        raise TemplateError(f"{where}needs one of assistant, assistantId, destination, error")
    for key in ("assistantId", "error"):
        value = entry.get(key)
        if value is not None and not (isinstance(value, str) and value.strip()):
            raise TemplateError(f"{where}{key}: must be a non-empty string")
    if entry.get("assistantOverrides") is not None and not isinstance(
        entry["assistantOverrides"], Mapping
    ):
        raise TemplateError(f"{where}assistantOverrides: must be a mapping")
    if entry.get("destination") is not None:
        try:
            validate_destination(
                entry["destination"], purpose="assistant-request", where="destination"
            )
        except DestinationError as exc:
            raise TemplateError(f"{where}{exc}") from None
    assistant = entry.get("assistant")
    if assistant is not None:
        if not isinstance(assistant, Mapping):
            raise TemplateError(f"{where}assistant: must be a mapping")
        if not partial:
            _check_assistant(assistant, f"{where}assistant.")


def _check_assistant(assistant: Mapping[str, Any], where: str) -> None:
    for key in ("firstMessage", "name", "endCallMessage", "voicemailMessage"):
        if assistant.get(key) is not None and not isinstance(assistant[key], str):
            raise TemplateError(f"{where}{key}: must be a string")
    model = assistant.get("model")
    if not isinstance(model, Mapping) or not isinstance(model.get("provider"), str):
        raise TemplateError(f"{where}model: needs a provider")
    if model["provider"] == "custom-llm":
        for key in ("url", "model"):
            if not isinstance(model.get(key), str) or not model[key]:
                raise TemplateError(f"{where}model.{key}: required for custom-llm")
        _check_url(model["url"], f"{where}model.url")
    messages = model.get("messages", [])
    if not isinstance(messages, list) or not all(
        isinstance(m, Mapping) and isinstance(m.get("role"), str) for m in messages
    ):
        raise TemplateError(f"{where}model.messages: must be a list of {{role, content}}")
    tools = model.get("tools", [])
    if not isinstance(tools, list):
        raise TemplateError(f"{where}model.tools: must be a list")
    for i, tool in enumerate(tools):
        _check_tool(tool, f"{where}model.tools[{i}]")
    for key in ("voice", "transcriber", "server"):
        if assistant.get(key) is not None and not isinstance(assistant[key], Mapping):
            raise TemplateError(f"{where}{key}: must be a mapping")
    voice = assistant.get("voice")
    if isinstance(voice, Mapping) and not isinstance(voice.get("provider"), str):
        raise TemplateError(f"{where}voice.provider: required")
    server = assistant.get("server")
    if isinstance(server, Mapping):
        if not isinstance(server.get("url"), str):
            raise TemplateError(f"{where}server.url: required")
        _check_url(server["url"], f"{where}server.url")
    messages_sent = assistant.get("serverMessages")
    if messages_sent is not None:
        if not isinstance(messages_sent, list):
            raise TemplateError(f"{where}serverMessages: must be a list")
        bad = [m for m in messages_sent if m not in SERVER_MESSAGES]
        if bad:
            raise TemplateError(f"{where}serverMessages: unknown value(s) {bad}")


def _check_tool(tool: Any, where: str) -> None:
    if not isinstance(tool, Mapping) or not isinstance(tool.get("type"), str):
        raise TemplateError(f"{where}: a tool needs a type")
    if tool["type"] == "function":
        fn = tool.get("function")
        name = fn.get("name") if isinstance(fn, Mapping) else None
        if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
            raise TemplateError(f"{where}.function.name: required, ^[a-zA-Z0-9_-]{{1,64}}$")
        parameters = fn.get("parameters")
        if parameters is not None and not isinstance(parameters, Mapping):
            raise TemplateError(f"{where}.function.parameters: must be a JSON schema object")
    if tool["type"] == "transferCall":
        destinations = tool.get("destinations", [])
        if not isinstance(destinations, list):
            raise TemplateError(f"{where}.destinations: must be a list")
        for i, destination in enumerate(destinations):
            try:
                validate_destination(destination, where=f"destinations[{i}]")
            except DestinationError as exc:
                raise TemplateError(f"{where}.{exc}") from None


def _check_url(url: str, where: str) -> None:
    if not url.startswith(("https://", "http://", "{PUBLIC_URL}")):
        raise TemplateError(f"{where}: must be an http(s) URL or start with {{PUBLIC_URL}}")
