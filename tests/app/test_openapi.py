"""GET /openapi.json: an OpenAPI 3 document that covers exactly the routes the app serves."""

from __future__ import annotations

import json
from typing import Any

from prometheus_client import CollectorRegistry
from starlette.routing import Route

from app.main import create_app
from app.openapi import openapi_document
from app.settings import Settings
from tests.app.conftest import stack

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def app_operations() -> set[tuple[str, str]]:
    app = create_app(Settings.from_env({"RUNPOD_ENDPOINT_ID": "x"}), registry=CollectorRegistry())
    ops = set()
    for route in app.routes:
        assert isinstance(route, Route), f"unexpected route type {route!r}"
        for method in route.methods or ():
            if method != "HEAD":  # Starlette adds HEAD to every GET
                ops.add((route.path, method.lower()))
    return ops


def documented_operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, m) for path, item in doc["paths"].items() for m in item if m in HTTP_METHODS}


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def test_every_registered_route_is_documented_and_nothing_else() -> None:
    """The document lists each (path, method) the app serves, and no route that does not exist."""
    doc = openapi_document()
    assert documented_operations(doc) == app_operations()


def test_the_document_is_openapi_3_json() -> None:
    """The document is JSON-serialisable OpenAPI 3.1 with info, paths and responses everywhere."""
    doc = json.loads(json.dumps(openapi_document()))
    assert doc["openapi"].startswith("3.")
    assert doc["info"]["title"] and doc["info"]["version"]
    for path, item in doc["paths"].items():
        assert path.startswith("/")
        for method, op in item.items():
            assert method in HTTP_METHODS, (path, method)
            assert op["summary"] and op["responses"], (path, method)
            for code in op["responses"]:
                assert code.isdigit() and 100 <= int(code) < 600, (path, method, code)
            params = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert params == {s.strip("{}") for s in path.split("/") if s.startswith("{")}
            for requirement in op.get("security", []):
                assert set(requirement) <= set(doc["components"]["securitySchemes"])


def test_every_ref_resolves() -> None:
    """Each $ref points at a schema defined under components."""
    doc = openapi_document()
    schemas = doc["components"]["schemas"]
    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref


def test_bodies_are_described() -> None:
    """The webhook, LLM, chat and admin bodies have schemas with their required fields."""
    schemas = openapi_document()["components"]["schemas"]
    assert schemas["VapiEnvelope"]["required"] == ["message"]
    assert schemas["VapiMessage"]["required"] == ["type"]
    assert "toolCallList" in schemas["VapiMessage"]["properties"]
    assert schemas["ChatCompletionRequest"]["required"] == ["messages"]
    assert schemas["ChatRequest"]["required"] == ["message"]
    assert schemas["AdminAction"]["properties"]["action"]["enum"] == [
        "status",
        "warmup",
        "purge_queue",
        "config",
    ]


async def test_openapi_json_is_served() -> None:
    """GET /openapi.json serves the same document."""
    async with stack() as s:
        r = await s.client.get("/openapi.json")
    assert r.status_code == 200
    assert r.json() == json.loads(json.dumps(openapi_document()))
