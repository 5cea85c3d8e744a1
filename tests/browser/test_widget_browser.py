"""The widget in Debian's Chromium: renders, opens, pops, click-to-call, another origin."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, expect

from kernel.events import (
    CallAnswered,
    CallEnded,
    CallInfo,
    CallRinging,
    CallState,
    Direction,
    Disposition,
    PbxOffline,
)
from tests.web_widget.support import (
    BUS,
    PASSWORD,
    RecordingPort,
    seed_users,
    until,
    widget_app,
)
from web_widget import HUB
from web_widget.sockets import close_sockets

pytestmark = pytest.mark.browser
expect.set_options(timeout=15_000)  # two shared cores: give Chromium room under load
SHOTS = Path(__file__).parents[2] / "var" / "screenshots"  # git-ignored: to look at, not to keep
CONTACT = {"kind": "person", "first_name": "Ana", "last_name": "García",
           "company_name": "Acme Ibérica", "tags": ["VIP", "Madrid"],
           "phones": [{"number": "911 23 45 67", "kind": "work"}]}



@pytest.fixture
async def port():
    return RecordingPort()


@pytest.fixture
async def server(aiohttp_server, tmp_path, port):
    app = widget_app(tmp_path / "b.db", port, allowed_origins=())
    server = await aiohttp_server(app)
    await seed_users(app)
    return server


async def signed_in_page(browser: Browser, base: str, username: str = "ana") -> Page:
    page = await browser.new_page(viewport={"width": 1280, "height": 860})
    page.on("pageerror", lambda e: print("PAGEERROR", e))
    await page.goto(base + "/login")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(base + "/")
    await expect(page.locator("centralita-phone .link-dot.up")).to_have_count(1)
    return page


def base_url(server) -> str:
    return str(server.make_url("")).rstrip("/")


async def add_contact(base: str) -> int:
    """Ana's client, written through the CRM's own API: the real screen-pop will find it."""
    async with aiohttp.ClientSession() as http:
        login = await http.post(base + "/api/auth/login",
                                json={"username": "ana", "password": PASSWORD})
        bearer = {"Authorization": f"Bearer {(await login.json())['token']}"}
        made = await http.post(base + "/api/contacts", json=CONTACT, headers=bearer)
        assert made.status == 201, await made.text()
        contact_id: int = (await made.json())["id"]
        return contact_id


async def ring(server, agents=("1001",)) -> None:
    """A call rings 1001: the CRM's screen-pop listener looks the caller up and pops the card."""
    call = CallInfo("call-b1", Direction.INBOUND, "+34911234567", "900", CallState.RINGING,
                    ringing=agents, started_at=1.0)
    await server.app[BUS].publish(CallRinging(call=call))


async def test_anonymous_visitors_go_to_login_and_the_widget_renders_and_opens(browser, server):
    base = base_url(server)
    page = await browser.new_page()
    await page.goto(base + "/")
    assert page.url == base + "/login"
    page = await signed_in_page(browser, base)
    launcher = page.locator("centralita-phone .launcher")
    await expect(launcher).to_be_visible()
    panel = page.locator("centralita-phone .panel")
    await expect(panel).to_be_hidden()
    await launcher.click()
    await expect(panel).to_be_visible()
    await expect(page.locator("centralita-phone .tabs button")).to_have_text(
        ["Contactos", "Historial", "Equipo", "Marcador"])
    await expect(page.locator("centralita-phone .key")).to_have_count(12)
    sms = page.locator("centralita-phone .sms-toggle")  # no SMS channel: says why, posts nothing
    await expect(sms).to_be_disabled()
    await expect(sms).to_have_attribute("title", re.compile("SMS no disponible.*Twilio"))
    await page.locator("centralita-phone [data-tab=team]").click()
    await expect(page.locator("centralita-phone [data-pane=team] .name")).to_contain_text(
        ["Ana Agente (tú)", "Luis Agente", "Sara Supervisora"])
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / "widget_team.png"))


async def test_a_screen_pop_shows_the_card_the_pbx_banner_and_call_controls(
    browser, server, port
):
    contact_id = await add_contact(base_url(server))
    page = await signed_in_page(browser, base_url(server))
    await ring(server)
    card = page.locator("centralita-phone .card")
    await expect(card.locator(".name")).to_have_text("Ana García")
    await expect(card.locator(".company")).to_have_text("Acme Ibérica")
    await expect(card.locator(".tag")).to_have_text(["madrid", "vip"])  # tags are stored lower-case
    profile = base_url(server) + f"/contacts/{contact_id}"
    await expect(card.locator(".profile")).to_have_attribute("href", profile)
    await server.app[BUS].publish(PbxOffline(pbx="asterisk", reason="link lost"))
    await expect(page.locator("centralita-phone .banner")).to_have_text(
        "Centralita: PBX desconectada")
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / "widget_pop.png"))
    answered = CallInfo("call-b1", Direction.INBOUND, "+34911234567", "900", CallState.UP,
                        agent="1001", ringing=("1001",), started_at=1.0, answered_at=2.0)
    await server.app[BUS].publish(CallAnswered(call=answered))
    await expect(card.locator(".pill")).to_have_text("En llamada")
    await expect(page.locator("centralita-phone .controls button")).to_have_text(
        ["Colgar", "Espera", "Silenciar", "Transferir", "Teclado"])
    await page.locator("centralita-phone .controls button", has_text="Espera").click()
    await until(lambda: port.requests == [("hold", "call-b1")])
    await page.locator("centralita-phone .controls button", has_text="Transferir").click()
    mate = page.locator("centralita-phone .transfer li", has_text="Luis Agente · 1002")
    await mate.locator("button", has_text="Atendida").click()
    await until(lambda: port.requests[-1] == ("transfer", "call-b1", "1002", "attended"))
    await page.screenshot(path=str(SHOTS / "widget_incall.png"))


async def test_tel_links_call_once_on_a_double_click_and_several_numbers_ask_which(
    browser, server, port
):
    page = await signed_in_page(browser, base_url(server))
    await page.locator("a.tel").first.dblclick()
    await until(lambda: len(port.requests) >= 1)
    # A contact with two numbers: the widget asks which one.
    await page.locator("button[data-centralita-call='+34911234567,+34622334455']").click()
    await page.locator("centralita-phone .picker button", has_text="+34622334455").click()
    await until(lambda: len(port.requests) >= 2, within=15)
    await page.wait_for_load_state("networkidle")
    assert port.requests == [("originate", "+34911234567", "1001"),
                             ("originate", "+34622334455", "1001")]


async def host_page(aiohttp_server, page: dict[str, str]):
    """A page on ANOTHER origin; its HTML is filled in once Centralita's port is known.

    `/token` plays the host's back end handing its user a fresh widget token.
    """

    async def index(_request: web.Request) -> web.Response:
        return web.Response(text=page["html"], content_type="text/html")

    async def token(_request: web.Request) -> web.Response:
        return web.json_response({"token": page["fresh_token"]})

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/token", token)
    return await aiohttp_server(app)


def embedding(centralita: str, token: str, token_url: str = "") -> str:
    refresh = f' data-token-url="{token_url}"' if token_url else ""
    return (f'<!doctype html><html><body><h1>Partner CRM</h1>'
            f'<a id="num" href="tel:+34911234567">+34 911 23 45 67</a>'
            f'<script src="{centralita}/widget.js" data-server="{centralita}" '
            f'data-token="{token}"{refresh}></script></body></html>')


async def widget_token(base: str, username: str) -> str:
    async with aiohttp.ClientSession() as http:
        login = await http.post(base + "/api/auth/login",
                                json={"username": username, "password": PASSWORD})
        bearer = (await login.json())["token"]
        minted = await http.post(base + "/api/auth/widget-token",
                                 headers={"Authorization": f"Bearer {bearer}"})
        assert minted.status == 201
        token: str = (await minted.json())["token"]
        return token


async def test_another_origin_embeds_the_widget_and_a_stranger_is_refused(
    browser, aiohttp_server, tmp_path, port
):
    partner_html: dict[str, str] = {}
    partner = await host_page(aiohttp_server, partner_html)
    stranger = await host_page(aiohttp_server, {"html": "<!doctype html><p>stranger</p>"})
    app = widget_app(tmp_path / "x.db", port, allowed_origins=(base_url(partner),))
    centralita = await aiohttp_server(app)
    await seed_users(app)
    base = base_url(centralita)
    token = await widget_token(base, "ana")
    partner_html["html"] = embedding(base, token)

    page = await browser.new_page()
    await page.goto(base_url(partner) + "/")
    await expect(page.locator("centralita-phone .link-dot.up")).to_have_count(1)
    await add_contact(base)
    await ring(centralita)
    await expect(page.locator("centralita-phone .card .name")).to_have_text("Ana García")
    await page.locator("#num").click()
    await until(lambda: port.requests == [("originate", "+34911234567", "1001")])

    other = await browser.new_page()
    await other.goto(base_url(stranger) + "/")
    outcome = await other.evaluate(
        """(url) => new Promise((done) => {
             const ws = new WebSocket(url);
             ws.onopen = () => done("open");
             ws.onclose = (e) => done("closed:" + e.code);
           })""",
        base.replace("http", "ws") + "/ws/agent?resume=0&token=" + token)
    assert outcome == "closed:1006"
    assert app[HUB].channel("1001").sockets and len(app[HUB].channel("1001").sockets) == 1


async def test_a_missed_call_in_history_is_called_back_in_one_click(browser, server, port):
    bus = server.app[BUS]
    rang = CallInfo("call-m1", Direction.INBOUND, "+34933112233", "900", CallState.RINGING,
                    ringing=("1001",), started_at=1_790_000_000.0)
    missed = CallInfo("call-m1", Direction.INBOUND, "+34933112233", "900", CallState.ENDED,
                      agent="1001", ringing=("1001",), started_at=1_790_000_000.0,
                      ended_at=1_790_000_020.0, disposition=Disposition.MISSED)
    await bus.publish(CallRinging(call=rang))
    await bus.publish(CallEnded(call=missed))
    await bus.drain()
    page = await signed_in_page(browser, base_url(server))
    await page.locator("centralita-phone .launcher").click()
    await page.locator("centralita-phone [data-tab=history]").click()
    row = page.locator("centralita-phone [data-pane=history] li.missed")
    await expect(row.locator(".sub")).to_contain_text("Perdida")
    await row.locator("button.callback").click()
    await until(lambda: port.requests == [("originate", "+34933112233", "1001")], within=15)


async def test_presence_chosen_in_one_widget_shows_in_a_teammates(browser, server):
    ana = await signed_in_page(browser, base_url(server), "ana")
    luis = await signed_in_page(browser, base_url(server), "luis")
    await luis.locator("centralita-phone .launcher").click()
    await luis.locator("centralita-phone [data-tab=team]").click()
    await ana.locator("centralita-phone .launcher").click()
    await ana.locator("centralita-phone select.presence").select_option("away")
    row = luis.locator("centralita-phone [data-pane=team] li", has_text="Ana Agente")
    await expect(row.locator(".dot")).to_have_class("dot away")
    await expect(row.locator(".sub")).to_have_text("1001 · Ausente")


async def test_the_widget_reconnects_and_resumes_from_its_last_message(browser, server):
    page = await signed_in_page(browser, base_url(server))
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    await page.evaluate("""() => { window.seqs = [];
        document.querySelector("centralita-phone").addEventListener("centralita:message",
            (e) => window.seqs.push(e.detail.seq)); }""")
    hub = server.app[HUB]
    before = hub.channel("1001").seq
    await close_sockets(server.app)  # the server drops every widget's socket
    await ring(server)  # published while the widget is away or coming back
    await expect(page.locator("centralita-phone .card .name")).to_have_text("Nuevo lead")
    await until(lambda: len(sockets) == 1 and len(hub.channel("1001").sockets) == 1, within=15)
    assert f"epoch={hub.epoch}" in sockets[0] and "resume=" in sockets[0]
    assert await page.locator("centralita-phone .card").count() == 1
    handled = await page.evaluate("() => window.seqs")
    assert handled == list(range(before + 1, hub.channel("1001").seq + 1))  # no gap, no repeat


async def test_contacts_tab_finds_a_client_and_calls_the_chosen_number(browser, server, port):
    await add_contact(base_url(server))
    page = await signed_in_page(browser, base_url(server))
    await page.locator("centralita-phone .launcher").click()
    await page.locator("centralita-phone .search").fill("garcía")
    row = page.locator("centralita-phone [data-pane=contacts] li", has_text="Ana García")
    await expect(row.locator(".sub")).to_have_text("Acme Ibérica")
    await row.locator("button.call-chip", has_text="+34911234567").click()
    await until(lambda: port.requests == [("originate", "+34911234567", "1001")], within=15)
    await page.screenshot(path=str(SHOTS / "widget_contacts.png"))


async def test_when_a_teammate_answers_the_card_is_withdrawn(browser, server):
    ana = await signed_in_page(browser, base_url(server), "ana")
    luis = await signed_in_page(browser, base_url(server), "luis")
    await ring(server, agents=("1001", "1002"))
    for page in (ana, luis):
        await expect(page.locator("centralita-phone .card .pill")).to_have_text("Sonando")
    answered = CallInfo("call-b1", Direction.INBOUND, "+34911234567", "900", CallState.UP,
                        agent="1002", ringing=("1001", "1002"), started_at=1.0, answered_at=2.0)
    await server.app[BUS].publish(CallAnswered(call=answered))
    await expect(luis.locator("centralita-phone .card .pill")).to_have_text("En llamada")
    await expect(ana.locator("centralita-phone .card")).to_have_count(0)
    await expect(ana.locator("centralita-phone .toast")).to_have_text("Atendida por Luis Agente")


async def test_an_expired_widget_token_is_renewed_from_the_host_page(
    browser, aiohttp_server, tmp_path, port
):
    partner_html: dict[str, str] = {}
    partner = await host_page(aiohttp_server, partner_html)
    app = widget_app(tmp_path / "t.db", port, allowed_origins=(base_url(partner),))
    centralita = await aiohttp_server(app)
    await seed_users(app)
    base = base_url(centralita)
    partner_html["fresh_token"] = await widget_token(base, "ana")
    partner_html["html"] = embedding(base, "wt_expired", token_url="/token")
    page = await browser.new_page()
    await page.goto(base_url(partner) + "/")
    await expect(page.locator("centralita-phone .link-dot.up")).to_have_count(1)
    await page.locator("#num").click()
    await until(lambda: port.requests == [("originate", "+34911234567", "1001")], within=15)


async def test_without_a_token_on_centralitas_origin_the_widget_signs_in_itself(browser, server):
    base = base_url(server)
    page = await browser.new_page()
    await page.goto(base + "/login")  # any Centralita page, nobody signed in
    await page.add_script_tag(url=base + "/widget.js")
    form = page.locator("centralita-phone form.signin")
    await expect(form).to_be_visible()
    await form.locator("input[name=username]").fill("luis")
    await form.locator("input[name=password]").fill("wrong")
    await form.locator("button[type=submit]").click()
    await expect(form.locator(".error")).to_have_text("Usuario o contraseña incorrectos")
    await form.locator("input[name=password]").fill(PASSWORD)
    await form.locator("button[type=submit]").click()
    await expect(page.locator("centralita-phone .link-dot.up")).to_have_count(1)
    await expect(page.locator("centralita-phone .whoami")).to_have_text("Luis Agente · 1002")
    await expect(form).to_be_hidden()
