"""Every registered route, asked by everyone: anonymous, two agents, a supervisor, an admin.

The walk reads `app.router.routes()` of the real application, so a route added
tomorrow is checked tomorrow: it must declare its roles (`require`/`public`)
or this test names it. Requests use ids that do not exist, so nothing is
destroyed and an admitted caller gets a 404/422, never 401/403.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import web

from crm_core.auth import PUBLIC, ROLES, roles_of
from tests.crm_core.test_http_support import Crm, start_crm

ASKERS = {"agent": "ana", "another agent": "bruno", "supervisor": "sara", "admin": "root"}
ROLE_OF = {"ana": "agent", "bruno": "agent", "sara": "supervisor", "root": "admin"}

# What an admitted caller gets from our own routes with an empty body / unknown id.
ADMITTED = {
    ("POST", "/api/auth/login"): 422,
    ("POST", "/api/auth/logout"): 200,
    ("GET", "/api/me"): 200,
    ("PATCH", "/api/me"): 200,
    ("POST", "/api/auth/widget-token"): 201,
    ("POST", "/api/auth/api-token"): 201,
    ("GET", "/api/auth/csrf"): 200,
    ("GET", "/api/auth/tokens"): 200,
    ("DELETE", "/api/auth/tokens/{id}"): 404,
    ("GET", "/api/users"): 200,
    ("POST", "/api/users"): 422,
    ("GET", "/api/users/{id}"): 404,
    ("PATCH", "/api/users/{id}"): 404,
    ("DELETE", "/api/users/{id}"): 404,
    ("GET", "/api/contacts"): 200,
    ("POST", "/api/contacts"): 422,
    ("GET", "/api/contacts/lookup"): 422,
    ("GET", "/api/contacts/{id}"): 404,
    ("PATCH", "/api/contacts/{id}"): 404,
    ("DELETE", "/api/contacts/{id}"): 404,
    ("GET", "/api/contacts/{id}/timeline"): 404,
    ("POST", "/api/contacts/{id}/notes"): 422,
    ("GET", "/api/leads/{id}/timeline"): 404,
    ("POST", "/api/leads/{id}/notes"): 422,
    ("GET", "/api/leads"): 200,
    ("POST", "/api/leads/intake"): 403,
    ("GET", "/api/lead-forms"): 200,
    ("POST", "/api/lead-forms"): 422,
    ("DELETE", "/api/lead-forms/{id}"): 404,
    ("POST", "/api/leads"): 422,
    ("GET", "/api/leads/{id}"): 404,
    ("POST", "/api/leads/{id}/claim"): 404,
    ("POST", "/api/leads/{id}/convert"): 404,
    ("GET", "/api/calls"): 200,
    ("GET", "/api/calls/{call_id}"): 404,
    ("GET", "/api/openapi.json"): 200,
}


@pytest.fixture
async def crm(aiohttp_client, database_url: str) -> Crm:
    return await start_crm(aiohttp_client, database_url)


def walk(app: web.Application) -> list[tuple[str, str, Any]]:
    """(method, canonical path, handler) of every route but HEAD and static files."""
    out = []
    for route in app.router.routes():
        resource = route.resource
        if route.method == "HEAD" or resource is None:
            continue
        if isinstance(resource, web.StaticResource):
            continue  # public assets: no handler of ours behind them
        out.append((route.method, resource.canonical, route.handler))
    return out


def concrete(path: str) -> str:
    """A path with every parameter replaced by something that does not exist."""
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        return "999999" if name == "id" or (name.endswith("_id") and name != "call_id") else (
            "no-such-thing"
        )
    return re.sub(r"{(\w+)(?::[^}]*)?}", fill, path)


def declared(path: str, handler: Any) -> frozenset[str] | None:
    return roles_of(handler)


async def ask(crm: Crm, method: str, path: str, who: str | None) -> tuple[int, Any]:
    headers = await crm.fresh_bearer(who) if who else {}
    body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
    resp = await crm.client.request(
        method, concrete(path), json=body, headers=headers, allow_redirects=False
    )
    text = await resp.text()
    return resp.status, (resp.headers.get("Location"), text[:200])


def expected_anonymous(path: str, roles: frozenset[str] | str) -> set[int] | None:
    if roles == "public" or roles == frozenset({PUBLIC}):
        return None
    if path.startswith("/api/") or path.startswith("/ws/") or path == "/metrics":
        return {401}
    return {401, 302, 303}  # pages send the anonymous to /login


async def test_every_route_declares_who_may_call_it(crm: Crm) -> None:
    undeclared = [
        f"{method} {path}" for method, path, handler in walk(crm.app)
        if declared(path, handler) is None
    ]
    assert undeclared == []
    # And our own routes are all in the expectation table, so none is asserted loosely.
    ours = {(m, p) for m, p, _ in walk(crm.app) if (m, p) in ADMITTED}
    missing = set(ADMITTED) - ours
    assert missing == set()


async def test_the_access_matrix(crm: Crm) -> None:
    failures = []
    for method, path, handler in walk(crm.app):
        roles = declared(path, handler)
        assert roles is not None
        status, detail = await ask(crm, method, path, None)
        wanted = expected_anonymous(path, roles)
        if wanted is not None and status not in wanted:
            failures.append((method, path, "anonymous", status, detail))
        if wanted is None and status >= 500:
            failures.append((method, path, "anonymous", status, detail))
        for label, who in ASKERS.items():
            status, detail = await ask(crm, method, path, who)
            if not admitted_as_expected(method, path, roles, ROLE_OF[who], status, detail):
                failures.append((method, path, label, status, detail))
    assert failures == []


def admitted_as_expected(
    method: str, path: str, roles: frozenset[str] | str, role: str, status: int, detail: Any
) -> bool:
    open_to = set(ROLES) if roles in ("public", frozenset({PUBLIC})) else set(roles)
    if role not in open_to:
        return status == 403
    if (method, path) in ADMITTED:
        return status == ADMITTED[(method, path)]
    # Another package's route: admitted means neither 401/403 nor a crash.
    return status not in (401, 403) and status != 500


async def test_every_cookie_write_without_the_csrf_header_is_refused(crm: Crm) -> None:
    """Each unsafe route, asked with ana's session cookie alone: 403 before anything happens."""
    await crm.login("ana")
    unsafe = [
        (m, p) for m, p, h in walk(crm.app)
        if m in ("POST", "PUT", "PATCH", "DELETE")
        and isinstance(declared(p, h), frozenset) and declared(p, h) != frozenset({PUBLIC})
    ]
    assert ("POST", "/api/auth/logout") in unsafe and ("PATCH", "/api/me") in unsafe
    answers = []
    for method, path in unsafe:
        resp = await crm.client.request(method, concrete(path), json={})
        answers.append((method, path, resp.status, (await resp.json())["error"]["code"]))
    assert answers == [(m, p, 403, "csrf-token-invalid") for m, p in unsafe]
    # The refused logout did not sign ana out.
    assert (await crm.client.get("/api/me")).status == 200


async def test_every_route_of_a_private_contact_is_closed_to_other_agents(crm: Crm) -> None:
    """Ana's private contact, asked for through every `/api/contacts/{id}...` route there is."""
    resp = await crm.client.post(
        "/api/contacts", headers=crm.bearer("ana"),
        json={"first_name": "Carmen", "phones": ["+34 600 123 456"], "tags": ["vip"]},
    )
    cid = (await resp.json())["id"]
    by_id = [(m, p) for m, p, _ in walk(crm.app) if p.startswith("/api/contacts/{id}")]
    assert len(by_id) >= 5  # get, patch, delete, timeline, notes at least
    for who in ("bruno", "sara"):
        for method, path in by_id:
            body: dict[str, str] | None = None
            if path.endswith("/notes"):
                body = {"text": "peeking"}
            elif method in ("POST", "PATCH"):
                body = {"first_name": "Peeked"}
            resp = await crm.client.request(
                method, path.replace("{id}", str(cid)), json=body,
                headers=await crm.fresh_bearer(who),
            )
            assert (method, path, who, resp.status in (403, 404)) == (method, path, who, True)
        for query in ("", "q=carmen", "q=600123456", "tag=vip", "mine=0"):
            resp = await crm.client.get(f"/api/contacts?{query}", headers=crm.bearer(who))
            assert (query, (await resp.json())["items"]) == (query, [])
        resp = await crm.client.get(
            "/api/contacts/lookup?phone=600123456", headers=crm.bearer(who)
        )
        assert resp.status == 404
    # Nothing of it changed, and its manager still sees it whole.
    resp = await crm.client.get(f"/api/contacts/{cid}", headers=crm.bearer("ana"))
    assert (resp.status, (await resp.json())["first_name"]) == (200, "Carmen")


async def test_the_anonymous_get_json_401s_with_the_error_shape(crm: Crm) -> None:
    resp = await crm.client.get("/api/contacts")
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="centralita"'
    assert await resp.json() == {"error": {
        "code": "not-authenticated",
        "message": "sign in first: a session cookie or Authorization: Bearer <token>",
    }}
    resp = await crm.client.get("/api/users", headers=crm.bearer("sara"))
    assert resp.status == 403
    assert await resp.json() == {
        "error": {"code": "forbidden", "message": "this needs the role admin"}
    }
