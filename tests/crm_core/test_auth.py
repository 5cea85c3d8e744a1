"""Sign-in, sessions, bearer and widget tokens, CSRF and the login throttle (R5)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
from alembic import command
from sqlalchemy import inspect

from crm_core.auth import AUTH, SESSION_COOKIE, principal_from_token
from crm_core.auth.principal import Principal
from crm_core.auth.tokens import SESSION, WIDGET, issue_token
from crm_core.db import Database, alembic_config
from crm_core.users import deactivate_user
from tests.crm_core.test_http_support import PASSWORD, Crm, start_crm


@pytest.fixture
async def crm(aiohttp_client, database_url: str) -> Crm:
    return await start_crm(aiohttp_client, database_url)


ANA = {
    "id": 1, "username": "ana", "name": "Ana Agent", "role": "agent", "extension": "1001",
    "email": None, "working_hours": {}, "active": True,
}


def session_cookie(resp) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for header in resp.headers.getall("Set-Cookie"):
        jar.load(header)
    return jar


async def test_login_sets_a_strict_cookie_and_returns_token_user_and_csrf(crm: Crm) -> None:
    resp = await crm.client.post("/api/auth/login", json={"username": "ana", "password": PASSWORD})
    body = await resp.json()
    assert resp.status == 200
    assert sorted(body) == ["csrf_token", "expires_at", "token", "user"]
    assert body["user"] == {**ANA, "id": crm.ids["ana"]}
    assert body["token"].startswith("cts_") and len(body["csrf_token"]) >= 32
    morsel = session_cookie(resp)[SESSION_COOKIE]
    assert morsel.value == body["token"]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert morsel["secure"] == ""
    assert morsel["path"] == "/"
    assert int(morsel["max-age"]) == 12 * 3600
    # The cookie alone now signs the client in; the token works as a bearer too.
    me = await crm.client.get("/api/me")
    assert (me.status, (await me.json())["username"]) == (200, "ana")
    crm.client.session.cookie_jar.clear()
    me = await crm.client.get("/api/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert (me.status, (await me.json())["username"]) == (200, "ana")


async def test_the_cookie_is_secure_when_the_settings_say_so(aiohttp_client, database_url) -> None:
    secure = await start_crm(aiohttp_client, database_url, auth_secure_cookies=True)
    resp = await secure.client.post(
        "/api/auth/login", json={"username": "ana", "password": PASSWORD}
    )
    assert resp.status == 200
    assert session_cookie(resp)[SESSION_COOKIE]["secure"] is True


@pytest.mark.parametrize("username", ["ana", "nobody"])
async def test_wrong_credentials_are_one_indistinct_401(crm: Crm, username: str) -> None:
    resp = await crm.client.post(
        "/api/auth/login", json={"username": username, "password": "not the password"}
    )
    assert resp.status == 401
    assert await resp.json() == {
        "error": {"code": "not-authenticated", "message": "wrong username or password"}
    }
    assert "Set-Cookie" not in resp.headers


async def test_a_malformed_login_names_the_field(crm: Crm) -> None:
    resp = await crm.client.post("/api/auth/login", json={"username": "ana"})
    assert resp.status == 422
    assert (await resp.json())["error"]["field"] == "password"
    resp = await crm.client.post("/api/auth/login", json={"username": 7, "password": "x"})
    assert (await resp.json())["error"] == {
        "code": "invalid-input", "message": "username must be string", "field": "username",
    }


async def test_anonymous_requests_are_401_and_garbage_tokens_too(crm: Crm) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic YTpi"}):
        resp = await crm.client.get("/api/me", headers=headers)
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "not-authenticated"


async def test_five_failures_then_429_with_retry_after(crm: Crm) -> None:
    now = [1000.0]
    crm.app[AUTH].throttle.clock = lambda: now[0]
    wrong = {"username": "ana", "password": "guess-guess"}
    statuses = [(await crm.client.post("/api/auth/login", json=wrong)).status for _ in range(5)]
    assert statuses == [401] * 5
    now[0] += 10
    # Locked: even the right password is refused until the window has passed.
    resp = await crm.client.post("/api/auth/login", json={"username": "ana", "password": PASSWORD})
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "290"
    assert (await resp.json())["error"]["code"] == "rate-limited"
    # Another username from the same address is not punished for ana's guesses.
    await crm.login("bruno")
    now[0] += 291
    await crm.login("ana")


async def test_a_cookie_post_without_the_csrf_header_is_refused(crm: Crm) -> None:
    session = await crm.login("ana")
    resp = await crm.client.post("/api/auth/widget-token")
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "csrf-token-invalid"
    resp = await crm.client.post("/api/auth/widget-token", headers={"X-CSRF-Token": "forged"})
    assert resp.status == 403
    resp = await crm.client.post(
        "/api/auth/widget-token", headers={"X-CSRF-Token": session["csrf_token"]}
    )
    assert resp.status == 201
    # A page that lost the token asks for it again; the answer is the same token.
    again = await crm.client.get("/api/auth/csrf")
    assert await again.json() == {"csrf_token": session["csrf_token"]}
    assert await (await crm.client.get("/api/auth/csrf", headers=crm.bearer("ana"))).json() == {
        "csrf_token": None
    }
    # Reads need no CSRF token; bearer writes are exempt (a page cannot forge a header).
    assert (await crm.client.get("/api/me")).status == 200
    crm.client.session.cookie_jar.clear()
    resp = await crm.client.post("/api/auth/widget-token", headers=crm.bearer("bruno"))
    assert resp.status == 201


async def test_logout_ends_the_session_and_clears_the_cookie(crm: Crm) -> None:
    session = await crm.login("ana")
    csrf = {"X-CSRF-Token": session["csrf_token"]}
    resp = await crm.client.post("/api/auth/logout", headers=csrf)
    assert (resp.status, await resp.json()) == (200, {"status": "signed-out"})
    assert session_cookie(resp)[SESSION_COOKIE].value == ""
    bearer = {"Authorization": f"Bearer {session['token']}"}
    assert (await crm.client.get("/api/me", headers=bearer)).status == 401
    # Logging out with a bearer token revokes that token only.
    resp = await crm.client.post("/api/auth/logout", headers=crm.bearer("bruno"))
    assert resp.status == 200
    assert (await crm.client.get("/api/me", headers=crm.bearer("bruno"))).status == 401
    assert (await crm.client.get("/api/me", headers=crm.bearer("sara"))).status == 200


async def test_logout_everywhere_ends_every_token_of_the_user_only(crm: Crm) -> None:
    phone = await crm.login("ana")
    laptop = await crm.fresh_bearer("ana")
    resp = await crm.client.post(
        "/api/auth/logout", json={"everywhere": True}, headers=crm.bearer("ana")
    )
    assert resp.status == 200
    for headers in (crm.bearer("ana"), laptop, {"Authorization": f"Bearer {phone['token']}"}):
        assert (await crm.client.get("/api/me", headers=headers)).status == 401
    assert (await crm.client.get("/api/me", headers=crm.bearer("bruno"))).status == 200


async def test_widget_tokens_are_short_bearers_that_cannot_renew_themselves(crm: Crm) -> None:
    resp = await crm.client.post("/api/auth/widget-token", headers=crm.bearer("ana"))
    body = await resp.json()
    assert resp.status == 201
    assert body["token"].startswith("ctw_") and body["expires_in"] == 900
    widget = {"Authorization": f"Bearer {body['token']}"}
    assert (await (await crm.client.get("/api/me", headers=widget)).json())["username"] == "ana"
    resp = await crm.client.post("/api/auth/widget-token", headers=widget)
    assert resp.status == 403
    # Not a session: as a cookie it signs nobody in.
    crm.client.session.cookie_jar.update_cookies({SESSION_COOKIE: body["token"]})
    assert (await crm.client.get("/api/me")).status == 401


async def test_principal_from_token_knows_every_kind_and_nothing_else(crm: Crm) -> None:
    widget = await issue_token(crm.db, crm.ids["sara"], WIDGET, timedelta(minutes=15))
    expected = Principal(
        user_id=crm.ids["sara"], username="sara", name="Sara Supervisor", role="supervisor",
        extension="1003",
    )
    assert await principal_from_token(crm.app, widget.token) == expected
    assert await principal_from_token(crm.app, crm.tokens["sara"]) == expected
    assert await principal_from_token(crm.app, "ctw_unknown") is None
    assert await principal_from_token(crm.app, "") is None
    expired = await issue_token(crm.db, crm.ids["sara"], SESSION, timedelta(seconds=-1))
    assert await principal_from_token(crm.app, expired.token) is None
    resp = await crm.client.get("/api/me", headers={"Authorization": f"Bearer {expired.token}"})
    assert resp.status == 401


async def test_a_deactivated_user_loses_every_token_and_cannot_sign_in(crm: Crm) -> None:
    await crm.login("bruno")
    await deactivate_user(crm.db, crm.ids["bruno"])
    assert (await crm.client.get("/api/me", headers=crm.bearer("bruno"))).status == 401
    resp = await crm.client.post(
        "/api/auth/login", json={"username": "bruno", "password": PASSWORD}
    )
    assert resp.status == 401


async def test_passwords_and_tokens_never_reach_the_log(
    crm: Crm, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await crm.client.post("/api/auth/login", json={"username": "ana", "password": "wrong-secret"})
    session = await crm.login("ana")
    widget = await crm.client.post("/api/auth/widget-token", headers=crm.bearer("ana"))
    token = (await widget.json())["token"]
    await crm.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    logged = caplog.text
    assert caplog.records, "the requests above should have logged something"
    for secret in ("wrong-secret", PASSWORD, session["token"], session["csrf_token"], token):
        assert secret not in logged


async def test_api_tokens_last_and_work_as_bearers(crm: Crm) -> None:
    session = await crm.login("sara")
    resp = await crm.client.post(
        "/api/auth/api-token", json={"days": 30}, headers={"X-CSRF-Token": session["csrf_token"]}
    )
    body = await resp.json()
    assert (resp.status, body["expires_in"]) == (201, 30 * 86400)
    assert body["token"].startswith("cta_")
    crm.client.session.cookie_jar.clear()
    me = await crm.client.get("/api/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert (await me.json())["username"] == "sara"
    resp = await crm.client.post(
        "/api/auth/api-token", json={"days": 400}, headers=crm.bearer("sara")
    )
    assert (resp.status, (await resp.json())["error"]["field"]) == (422, "days")
    widget = await (await crm.client.post(
        "/api/auth/widget-token", headers=crm.bearer("sara"))).json()
    resp = await crm.client.post(
        "/api/auth/api-token", headers={"Authorization": f"Bearer {widget['token']}"}
    )
    assert resp.status == 403


async def test_migration_0003_goes_down_and_up_again(database_url: str) -> None:
    async def tables() -> set[str]:
        db = Database(database_url)
        async with db.engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        await db.close()
        return names

    assert {"auth_tokens", "lead_forms"} <= await tables()
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0002")
    assert not {"auth_tokens", "lead_forms"} & await tables()
    await asyncio.to_thread(command.upgrade, alembic_config(database_url), "head")
    assert {"auth_tokens", "lead_forms"} <= await tables()


async def test_users_see_their_tokens_without_values_and_revoke_one(crm: Crm) -> None:
    session = await crm.login("bruno")
    crm.client.session.cookie_jar.clear()
    resp = await crm.client.get("/api/auth/tokens", headers=crm.bearer("bruno"))
    items = (await resp.json())["items"]
    assert [(i["kind"], i["current"]) for i in items] == [("session", False), ("api", True)]
    assert all(sorted(i) == ["created_at", "current", "expires_at", "id", "kind"] for i in items)
    other = await crm.client.delete(
        f"/api/auth/tokens/{items[0]['id']}", headers=crm.bearer("ana")
    )
    assert other.status == 404  # not ana's to revoke
    resp = await crm.client.delete(
        f"/api/auth/tokens/{items[0]['id']}", headers=crm.bearer("bruno")
    )
    assert (resp.status, await resp.json()) == (200, {"status": "revoked"})
    bearer = {"Authorization": f"Bearer {session['token']}"}
    assert (await crm.client.get("/api/me", headers=bearer)).status == 401
    assert (await crm.client.get("/api/me", headers=crm.bearer("bruno"))).status == 200
