"""The demo stack end to end in Chromium: the simulated Asterisk rings a signed-in agent.

Everything is the product: `centralita.demo.seed`, `build_app` with the AMI
link to the simulator (real AMI over TCP), the CRM's screen-pop, the hub, the
widget. The agent's phone is the simulator's `Local/<ext>@agent-answer`, and
click-to-call runs the recorded `outbound` context (fixtures README).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, expect

from centralita.app import build_app
from centralita.demo import seed
from config import Secret, Settings
from pbx_bridge.asterisk.protocol import Message
from pbx_bridge.simulator.server import Simulator
from tests.web_widget.support import until

pytestmark = pytest.mark.browser
KNOWN = "34912345678"  # Lucía Martín, a demo contact
UNKNOWN = "34699000111"



@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator("centralita", "e2e-secret", speed=1.0)
    await simulator.start()
    yield simulator
    await simulator.close()


@pytest.fixture
async def base(aiohttp_server: Any, sim: Simulator, tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    settings = Settings(
        database_url=url, ami_host=sim.host, ami_port=sim.port, ami_secret=Secret("e2e-secret"),
        ami_originate_channel="Local/{extension}@agent-answer", ami_originate_context="outbound",
    )
    await seed(url, settings.default_region)
    server = await aiohttp_server(build_app(settings))
    return str(server.make_url("")).rstrip("/")


async def sign_in(browser: Browser, base: str, username: str, password: str) -> Page:
    page = await browser.new_page(viewport={"width": 1280, "height": 860})
    await page.goto(base + "/login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(base + "/")
    await expect(page.locator("centralita-phone .link-dot.up")).to_have_count(1, timeout=15_000)
    return page


def sent(sim: Simulator, action: str) -> list[Message]:
    return [m for m in sim.actions if m.get("Action") == action]


async def bearer(base: str, username: str, password: str) -> dict[str, str]:
    async with aiohttp.ClientSession() as http:
        login = await http.post(base + "/api/auth/login",
                                json={"username": username, "password": password})
        return {"Authorization": f"Bearer {(await login.json())['token']}"}


async def test_a_known_caller_pops_by_name_and_an_unknown_one_becomes_a_lead(
    browser: Browser, sim: Simulator, base: str
) -> None:
    page = await sign_in(browser, base, "ana", "demo-ana-1001")
    await sim.inbound(caller=KNOWN, did="912000002", give_up_after=4)  # rings 1001, unanswered
    card = page.locator("centralita-phone .card")
    await expect(card.locator(".name")).to_have_text("Lucía Martín", timeout=15_000)
    await expect(card.locator(".company")).to_have_text("Ferretería Martín")

    await expect(card).to_have_count(0, timeout=15_000)  # the caller gave up: the card goes
    await sim.inbound(caller=UNKNOWN, did="912000002", give_up_after=20)
    await expect(card.locator(".name")).to_have_text("Nuevo lead", timeout=15_000)
    await page.screenshot(path="/tmp/e2e.png")
    async with aiohttp.ClientSession() as http:
        leads = await http.get(base + "/api/leads?status=unhandled",
                               headers=await bearer(base, "ana", "demo-ana-1001"))
        body = await leads.json()
    numbers = [p["number"] for lead in body["items"] for p in lead["phones"]]
    assert numbers == ["+34699000111"]


async def test_a_tel_link_rings_the_agents_extension_first_then_the_call_is_controlled(
    browser: Browser, sim: Simulator, base: str
) -> None:
    for number in ("34912345678", "+34912345678"):  # the customer talks until hung up
        sim.set_customer_behaviour(number, "answer", answer_after=1.0, talk=120.0)
    page = await sign_in(browser, base, "ana", "demo-ana-1001")
    link = page.locator("a.tel", has_text="+34912345678")
    await link.click()
    await until(lambda: len(sent(sim, "Originate")) == 1, within=15)
    originate = sent(sim, "Originate")[0]
    assert originate.get("Channel") == "Local/1001@agent-answer"  # the agent's phone first
    assert originate.get("Exten") == "+34912345678" or originate.get("Exten") == "34912345678"
    controls = page.locator("centralita-phone .controls button")
    await expect(controls.first).to_have_text("Colgar", timeout=15_000)
    await page.locator("centralita-phone .controls button", has_text="Teclado").click()
    await page.locator("centralita-phone .key:not([data-key])", has_text="5").click()
    await until(lambda: len(sent(sim, "PlayDTMF")) == 1)
    assert sent(sim, "PlayDTMF")[0].get("Digit") == "5"
    call_id = await page.locator("centralita-phone .card").get_attribute("data-call")
    await page.locator("centralita-phone .controls button", has_text="Espera").click()
    await until(lambda: len(sent(sim, "Redirect")) == 1)
    redirect = sent(sim, "Redirect")[0]
    assert redirect.get("Context") == "centralita-hold"
    await page.locator("centralita-phone .controls button", has_text="Reanudar").click()
    await until(lambda: len(sent(sim, "Bridge")) == 1)
    await page.locator("centralita-phone .controls button", has_text="Transferir").click()
    teammate = page.locator("centralita-phone .transfer li", has_text="Luis Pérez · 1002")
    await teammate.locator("button", has_text="Ciega").click()
    await until(lambda: len(sent(sim, "BlindTransfer")) == 1)
    assert sent(sim, "BlindTransfer")[0].get("Exten") == "1002"
    await page.fill("centralita-phone textarea.notes", "Pide presupuesto para marzo")
    await page.locator("centralita-phone button", has_text="Guardar nota").click()
    headers = await bearer(base, "ana", "demo-ana-1001")
    async with aiohttp.ClientSession() as http:
        found = await (await http.get(base + "/api/contacts/lookup?phone=912345678",
                                      headers=headers)).json()

        async def noted() -> bool:
            resp = await http.get(base + f"/api/contacts/{found['id']}/timeline", headers=headers)
            items = (await resp.json())["items"]
            return any(i["type"] == "note" and i["note"]["text"] == "Pide presupuesto para marzo"
                       and i["note"]["call_id"] == call_id for i in items)

        for _ in range(150):
            if await noted():
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the note never reached the contact's timeline")
