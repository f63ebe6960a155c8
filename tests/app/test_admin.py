"""The /admin/* routes: token gate, status, warm-up, purge, jobs, config, action (issue #6).

One gateway with ADMIN_TOKEN set serves the whole module (``admin``); tests that look at RunPod's
jobs reset the emulator first. Tests needing other settings build their own stack.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from devstack.emulator import Behavior
from tests.app.conftest import API_KEY, Stack, stack

TOKEN = "admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

ROUTES = [
    pytest.param("GET", "/admin/status", None, id="status"),
    pytest.param("POST", "/admin/warmup", {"count": 1}, id="warmup"),
    pytest.param("POST", "/admin/purge-queue", None, id="purge-queue"),
    pytest.param("GET", "/admin/jobs/{job}", None, id="job-status"),
    pytest.param("POST", "/admin/jobs/{job}/cancel", None, id="job-cancel"),
    pytest.param("GET", "/admin/config", None, id="config"),
    pytest.param("POST", "/admin/action", {"action": "status"}, id="action"),
]


async def submit_job(s: Stack, **behavior: Any) -> str:
    """A job on the emulated endpoint, submitted straight to RunPod's client API."""
    body: dict[str, Any] = {"input": {"v": 1, "type": "warmup", "messages": []}}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    if behavior:
        headers["X-Emulator-Behavior"] = json.dumps(Behavior(**behavior).to_dict())
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{s.runpod_url}/run", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


async def call(
    s: Stack, method: str, path: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    if "{job}" in path:
        path = path.format(job=await submit_job(s))
    return await s.client.request(method, path, json=body, headers=headers)


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def admin() -> AsyncIterator[Stack]:
    async with stack(ADMIN_TOKEN=TOKEN) as s:
        yield s


@pytest_asyncio.fixture(loop_scope="module")
async def fresh(admin: Stack) -> Stack:
    """The module's gateway, with the emulated endpoint's jobs and counts forgotten."""
    admin.emulator.reset()
    return admin


async def test_admin_routes_do_not_exist_without_a_token() -> None:
    """With ADMIN_TOKEN unset every admin route is a plain 404, whatever the caller sends."""
    async with stack() as s:
        for param in ROUTES:
            method, path, body = param.values
            r = await call(s, method, path, body, AUTH)
            assert (r.status_code, r.text) == (404, "Not Found"), path


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_admin_routes_need_the_right_token(
    admin: Stack, method: str, path: str, body: Any
) -> None:
    """A wrong or missing token is 401 (and counted); the right one gets a 200 JSON answer."""
    before = await auth_failures(admin)
    wrong = await call(admin, method, path, body, {"Authorization": "Bearer not-the-token"})
    missing = await call(admin, method, path, body, {})
    right = await call(admin, method, path, body, AUTH)
    assert wrong.status_code == missing.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Bearer")
    assert await auth_failures(admin) == before + 2
    assert right.status_code == 200, right.text
    assert isinstance(right.json(), dict)


async def auth_failures(s: Stack) -> float:
    text = (await s.client.get("/metrics")).text
    prefix = 'pete_webhook_auth_failures_total{reason="admin_bad_token"} '
    return next(
        (float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)), 0.0
    )


async def test_status_reports_health_breaker_load_budgets_and_version(admin: Stack) -> None:
    """/admin/status shows RunPod health, the breaker, turns in flight, budgets and version."""
    body = (await admin.client.get("/admin/status", headers=AUTH)).json()
    assert body["breaker"]["state"] == "closed"
    assert body["inflight_turns"] == 0
    assert body["budgets_ms"]["chat"] == 15000 and body["budgets_ms"]["tool"] == 6000
    assert body["version"]
    assert set(body["runpod"]) >= {"latest", "age_s", "cold", "last_error"}


async def test_warmup_submits_n_warmup_jobs_with_run(fresh: Stack) -> None:
    """POST /admin/warmup {"count": 3} submits three `warmup` jobs through /run."""
    r = await fresh.client.post("/admin/warmup", json={"count": 3}, headers=AUTH)
    assert r.status_code == 200
    assert r.json()["requested"] == 3 and len(r.json()["submitted"]) == 3
    assert [job.input["type"] for job in fresh.emulator.jobs()] == ["warmup"] * 3
    assert fresh.emulator.traffic.snapshot()["requests"].get("run") == 3


async def test_warmup_without_a_body_submits_one_job(fresh: Stack) -> None:
    """An empty warm-up body means one job."""
    r = await fresh.client.post("/admin/warmup", headers=AUTH)
    assert r.status_code == 200 and len(r.json()["submitted"]) == 1


@pytest.mark.parametrize(
    "count",
    [
        pytest.param(0, id="zero"),
        pytest.param(11, id="too-many"),
        pytest.param("2", id="string"),
        pytest.param(True, id="bool"),
    ],
)
async def test_warmup_count_out_of_range_is_422_naming_count(fresh: Stack, count: Any) -> None:
    """A count outside 1..10 is refused with 422 naming the field, and submits nothing."""
    r = await fresh.client.post("/admin/warmup", json={"count": count}, headers=AUTH)
    assert (r.status_code, r.json()["field"]) == (422, "count")
    assert fresh.emulator.jobs() == []


async def test_purge_queue_removes_queued_jobs(fresh: Stack) -> None:
    """POST /admin/purge-queue passes on RunPod's count of removed queued jobs."""
    for _ in range(2):
        await submit_job(fresh, queue_s=30)
    r = await fresh.client.post("/admin/purge-queue", headers=AUTH)
    assert r.status_code == 200
    assert r.json()["removed"] == 2


async def test_job_status_passes_on_runpods_job_and_404_for_unknown(fresh: Stack) -> None:
    """GET /admin/jobs/{id} returns RunPod's job object; unknown is 404, malformed 422."""
    job_id = await submit_job(fresh, queue_s=30)
    known = await fresh.client.get(f"/admin/jobs/{job_id}", headers=AUTH)
    unknown = await fresh.client.get("/admin/jobs/no-such-job", headers=AUTH)
    malformed = await fresh.client.get("/admin/jobs/bad.id", headers=AUTH)
    assert known.status_code == 200
    assert known.json()["id"] == job_id and known.json()["status"] == "IN_QUEUE"
    assert unknown.status_code == 404
    assert malformed.status_code == 422


async def test_cancel_stops_a_queued_job(fresh: Stack) -> None:
    """POST /admin/jobs/{id}/cancel cancels the job on RunPod."""
    job_id = await submit_job(fresh, queue_s=30)
    r = await fresh.client.post(f"/admin/jobs/{job_id}/cancel", headers=AUTH)
    assert r.json() == {"id": job_id, "cancelled": True}
    assert fresh.emulator.job(job_id).status == "CANCELLED"


async def test_config_masks_every_secret() -> None:
    """GET /admin/config shows the settings with secrets as *** and never their values."""
    async with stack(ADMIN_TOKEN=TOKEN, VAPI_SECRET="vapi-secret-value-42") as s:
        r = await s.client.get("/admin/config", headers=AUTH)
    body = r.json()
    assert body["admin_token"] == body["vapi_secret"] == body["runpod_api_key"] == "***"
    assert body["metrics_token"] == ""  # unset
    assert TOKEN not in r.text and "vapi-secret-value-42" not in r.text and API_KEY not in r.text


@pytest.mark.parametrize(
    ("action", "key"),
    [
        pytest.param("status", "breaker", id="status"),
        pytest.param("warmup", "submitted", id="warmup"),
        pytest.param("purge_queue", "removed", id="purge_queue"),
        pytest.param("config", "admin_token", id="config"),
    ],
)
async def test_action_maps_onto_the_admin_routes(admin: Stack, action: str, key: str) -> None:
    """The ancestor's POST /admin/action answers like the matching route."""
    r = await admin.client.post("/admin/action", json={"action": action}, headers=AUTH)
    assert r.status_code == 200 and key in r.json()


@pytest.mark.parametrize(
    ("content", "status", "field"),
    [
        pytest.param(b'{"action": "reboot"}', 422, "action", id="unknown-action"),
        pytest.param(b'{"action": "warmup", "count": 99}', 422, "count", id="bad-count"),
        pytest.param(b"[1]", 422, "body", id="not-an-object"),
        pytest.param(b"{nope", 400, None, id="not-json"),
    ],
)
async def test_action_refuses_bad_bodies(
    admin: Stack, content: bytes, status: int, field: str | None
) -> None:
    """Bad action bodies are 400 (not JSON) or 422 naming the field."""
    r = await admin.client.post("/admin/action", content=content, headers=AUTH)
    assert r.status_code == status
    assert r.json().get("field") == field


async def test_runpod_down_is_a_502_not_a_crash() -> None:
    """With RunPod refusing every request, the admin routes answer 502 with a reason."""
    async with stack(ADMIN_TOKEN=TOKEN, RUNPOD_API_KEY="rotated-elsewhere") as s:  # all 401
        purge = await s.client.post("/admin/purge-queue", headers=AUTH)
        warmup = await s.client.post("/admin/warmup", json={"count": 2}, headers=AUTH)
        status = await s.client.get("/admin/jobs/some-job", headers=AUTH)
    assert purge.status_code == warmup.status_code == status.status_code == 502
    assert warmup.json()["submitted"] == [] and len(warmup.json()["failed"]) == 2
