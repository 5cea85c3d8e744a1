from pathlib import Path

from aiohttp.test_utils import TestClient

from centralita.app import build_app
from config import Secret, Settings


def settings_for(tmp_path: Path, **extra: object) -> Settings:
    return Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", **extra)  # type: ignore[arg-type]


async def test_healthz_and_readyz_when_the_database_is_up(aiohttp_client, tmp_path: Path) -> None:
    client: TestClient = await aiohttp_client(build_app(settings_for(tmp_path)))
    resp = await client.get("/healthz")
    assert (resp.status, await resp.json()) == (200, {"status": "ok"})
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 200
    assert body["status"] == "ok" and body["database"] == "up"


async def test_readyz_is_503_when_the_database_is_down(aiohttp_client, tmp_path: Path) -> None:
    app = build_app(settings_for(tmp_path))
    client: TestClient = await aiohttp_client(app)
    import crm_core

    await app[crm_core.DATABASE].engine.dispose()
    (tmp_path / "c.db").unlink()
    (tmp_path / "c.db").mkdir()  # a directory where the file was: SQLite cannot open it
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 503
    assert body["status"] == "degraded" and body["database"] == "down"


async def test_metrics_need_the_scrape_token_or_an_admin(aiohttp_client, tmp_path: Path) -> None:
    app = build_app(settings_for(tmp_path, metrics_token=Secret("scrape-me")))
    client: TestClient = await aiohttp_client(app)
    assert (await client.get("/metrics")).status == 401
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401  # neither the scrape token nor anyone's token
    assert (await wrong.json())["error"]["code"] == "not-authenticated"
    ok = await client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert ok.status == 200
    assert ok.headers["Content-Type"].startswith("text/plain")


async def test_unknown_route_is_a_json_404(aiohttp_client, tmp_path: Path) -> None:
    client: TestClient = await aiohttp_client(build_app(settings_for(tmp_path)))
    resp = await client.get("/nope")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not-found"
