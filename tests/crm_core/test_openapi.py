"""`/api/openapi.json` matches the router, and schemathesis finds no 5xx behind it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode

from crm_core.http.users import UPDATE_USER
from tests.crm_core.test_http_support import Crm, start_crm

EXAMPLES = {GenerationMode.POSITIVE: 10, GenerationMode.NEGATIVE: 5}
NO_PBX = "pbx-unavailable"
"""The test app has no PBX: call control answering 503 `pbx-unavailable` is right, not a crash."""


def server_error(status: int, text: str) -> bool:
    return status >= 500 and not (status == 503 and f'"{NO_PBX}"' in text)


@pytest.fixture
async def crm(aiohttp_client, database_url: str) -> Crm:
    return await start_crm(aiohttp_client, database_url)


async def document(crm: Crm) -> dict[str, Any]:
    resp = await crm.client.get("/api/openapi.json", headers=crm.bearer("ana"))
    assert resp.status == 200
    doc: dict[str, Any] = await resp.json()
    return doc


async def test_the_document_lists_exactly_the_routes_of_the_router(crm: Crm) -> None:
    doc = await document(crm)
    assert doc["openapi"] == "3.1.0"
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    routed = {
        (r.method, r.resource.canonical) for r in crm.app.router.routes()
        if r.resource is not None and r.resource.canonical.startswith("/api/")
        and r.method != "HEAD"
    }
    assert documented == routed
    users = doc["paths"]["/api/users/{id}"]["patch"]
    assert users["x-roles"] == ["admin"]
    assert users["parameters"] == [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
    ]
    assert users["requestBody"]["content"]["application/json"]["schema"] == UPDATE_USER
    login = doc["paths"]["/api/auth/login"]["post"]
    assert (login["security"], login["x-roles"]) == ([], ["public"])
    assert doc["paths"]["/api/contacts"]["get"]["x-roles"] == ["admin", "agent", "supervisor"]


async def test_the_document_is_for_signed_in_users_only(crm: Crm) -> None:
    resp = await crm.client.get("/api/openapi.json")
    assert resp.status == 401


class Bearer:
    """An admin token, replaced when a fuzzed logout or password change revokes it."""

    def __init__(self, fresh: Callable[[], dict[str, str]]) -> None:
        self.fresh = fresh
        self.headers = fresh()

    def __call__(self) -> dict[str, str]:
        return self.headers

    def revoked(self) -> None:
        self.headers = self.fresh()


def fuzz(doc: dict[str, Any], base_url: str, bearer: Bearer) -> list[str]:
    """Every operation, positive and negative examples; the 5xx answers, described."""
    schema = schemathesis.openapi.from_dict(doc)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        # Each example of a password route costs an argon2 hash (~0.2 s of CPU): fewer of them.
        hashing = "password" in str(operation.definition.raw)
        for mode, examples in EXAMPLES.items():
            count = max(2, examples // 2) if hashing else examples
            strategy = operation.as_strategy(generation_mode=mode)

            @hypothesis.given(case=strategy)
            @hypothesis.settings(
                max_examples=count, deadline=None, database=None, derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Any) -> None:
                response = case.call(base_url=base_url, headers=bearer())
                if response.status_code == 401:
                    bearer.revoked()
                if server_error(response.status_code, response.text):
                    failures.append(
                        f"{case.method} {case.formatted_path} {case.query} {case.body!r} -> "
                        f"{response.status_code} {response.text[:200]}"
                    )

            check()
    return failures


async def test_schemathesis_finds_no_server_error(crm: Crm) -> None:
    doc = await document(crm)
    loop = asyncio.get_running_loop()

    def fresh() -> dict[str, str]:
        return asyncio.run_coroutine_threadsafe(crm.fresh_bearer("root"), loop).result(10)

    base_url = str(crm.client.make_url("")).rstrip("/")
    bearer = await asyncio.to_thread(Bearer, fresh)
    failures = await asyncio.to_thread(fuzz, doc, base_url, bearer)
    assert failures == []
