"""Debian's Chromium, headless, for every browser test (Playwright cannot fetch its own here)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                            args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()
