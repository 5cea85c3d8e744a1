"""The README's first command: `centralita demo` shows a ringing call with a pop within a minute."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[str]:
    port = free_port()
    env = {**os.environ, "CENTRALITA_HTTP_PORT": str(port),
           "CENTRALITA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "centralita.cli", "demo", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    banner: list[str] = []
    async with asyncio.timeout(60):
        async for raw in proc.stdout:
            banner.append(raw.decode())
            if banner[-1].startswith("A simulated call rings"):
                break
    drain = asyncio.create_task(proc.stdout.read())  # keep the pipe from filling up
    yield "".join(banner)
    proc.terminate()
    assert await proc.wait() == 0
    await drain


async def test_the_demo_prints_its_url_and_logins_and_a_call_pops_within_a_minute(
    demo: str, browser: Browser,
) -> None:
    url = next(line.split(" at ")[1].strip() for line in demo.splitlines() if " at http" in line)
    assert "ana    / demo-ana-1001" in demo and "admin  / demo-admin-0000" in demo
    up = time.monotonic()
    page = await browser.new_page()
    await page.goto(url + "login")
    await page.fill("#username", "ana")
    await page.fill("#password", "demo-ana-1001")
    await page.click("button[type=submit]")
    ringing = page.locator("centralita-phone .card.state-ringing .name")
    await expect(ringing).not_to_have_text("", timeout=60_000)
    assert time.monotonic() - up < 60
