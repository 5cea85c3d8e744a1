"""The Origin guard, CORS for embedding pages, and the Idempotency-Key store on their own."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import make_mocked_request

from kernel.errors import Conflict, Forbidden
from tests.web_widget.support import PARTNER_ORIGIN, RecordingPort, seed_users, widget_app
from web_widget.guards import OriginGuard, normalise_origin
from web_widget.idempotency import Answer, IdempotencyStore


def request_from(origin: str | None, host: str = "crm.example.com"):
    headers = {"Host": host}
    if origin is not None:
        headers["Origin"] = origin
    return make_mocked_request("GET", "/ws/agent", headers=headers)


def test_origins_compare_by_scheme_host_and_port():
    assert normalise_origin("HTTPS://CRM.Example.com:443") == "https://crm.example.com"
    assert normalise_origin("http://crm.example.com:8080/") == "http://crm.example.com:8080"
    assert normalise_origin("http://[::1]:8080") == "http://[::1]:8080"
    with pytest.raises(ValueError):
        normalise_origin("null")


def test_the_guard_admits_its_own_origin_and_the_list_only():
    guard = OriginGuard("https://crm.example.com", ["https://intranet.example.com"])
    assert guard.permits(request_from("https://crm.example.com"))
    assert guard.permits(request_from("https://intranet.example.com"))
    assert guard.permits(request_from(None))  # not a browser: it has no ambient cookies
    behind_proxy = request_from("http://crm.example.com", host="10.0.0.5:8080")
    assert guard.permits(behind_proxy) is False  # the scheme differs from the public URL
    assert guard.permits(request_from("https://crm.example.com.evil.io")) is False
    assert guard.permits(request_from("null")) is False
    with pytest.raises(Forbidden):
        guard.check(request_from("https://evil.example"))


def test_without_a_public_url_the_requests_own_host_is_same_origin():
    guard = OriginGuard(None)
    assert guard.permits(request_from("http://10.0.0.5:8080", host="10.0.0.5:8080"))
    assert guard.permits(request_from("http://10.0.0.6:8080", host="10.0.0.5:8080")) is False


async def test_cors_answers_allowed_embedding_pages_only(aiohttp_client, tmp_path):
    app = widget_app(tmp_path / "c.db", RecordingPort())
    client = await aiohttp_client(app)
    await seed_users(app)
    preflight = {"Origin": PARTNER_ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, idempotency-key"}
    ok = await client.options("/api/calls", headers=preflight)
    assert ok.status == 204
    assert ok.headers["Access-Control-Allow-Origin"] == PARTNER_ORIGIN
    assert "Idempotency-Key" in ok.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in ok.headers  # tokens, never cookies
    stranger = await client.options("/api/calls", headers={**preflight,
                                                           "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in stranger.headers
    denied = await client.get("/api/widget/team", headers={"Origin": PARTNER_ORIGIN})
    assert (denied.status, denied.headers["Access-Control-Allow-Origin"]) == (401, PARTNER_ORIGIN)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_an_idempotency_key_expires_after_its_ttl():
    clock = Clock()
    store = IdempotencyStore(ttl_s=60, clock=clock)
    runs: list[int] = []

    async def action() -> Answer:
        runs.append(1)
        return Answer(202, {"n": len(runs)})

    assert await store.run(1, "k", "f", action) == (Answer(202, {"n": 1}), False)
    clock.now = 59
    assert await store.run(1, "k", "f", action) == (Answer(202, {"n": 1}), True)
    clock.now = 61
    assert await store.run(1, "k", "f", action) == (Answer(202, {"n": 2}), False)
    with pytest.raises(Conflict):
        await store.run(1, "k", "other request", action)


async def test_a_failed_first_request_fails_its_waiters_and_frees_the_key():
    store = IdempotencyStore()
    release = asyncio.Event()

    async def failing() -> Answer:
        await release.wait()
        raise RuntimeError("PBX refused")

    first = asyncio.create_task(store.run(1, "k", "f", failing))
    await asyncio.sleep(0)
    second = asyncio.create_task(store.run(1, "k", "f", failing))
    for _ in range(100):
        if store.waiting == 1:
            break
        await asyncio.sleep(0)
    release.set()
    for task in (first, second):
        with pytest.raises(RuntimeError, match="PBX refused"):
            await task
    assert len(store) == 0
