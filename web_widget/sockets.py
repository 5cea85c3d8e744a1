"""`GET /ws/agent`: one widget's socket onto its agent's numbered stream.

Order of checks: Origin first (403 before the upgrade), then credentials
(session cookie, bearer, or `?token=` widget token; 401 before the upgrade).
The widget says where it left off with `?resume=<seq>&epoch=<epoch>` or a
first `{"type": "hello", "last_seq": n, "epoch": e}`; it pings every
`heartbeat_s`, may set its presence, and may send in-call commands
(`{"type": "call.hold", "call_id": ..., "ref": ...}`, answered by a
`command.result` with the same `ref`), checked exactly as the REST routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import WSMsgType, web

from kernel.errors import CentralitaError, Unauthorized, ValidationFailed
from web_widget.control import HUB, perform
from web_widget.guards import OriginGuard
from web_widget.hub import Outbox
from web_widget.identity import (
    Principal,
    agent_key,
    principal_from_request,
    principal_from_token,
    signed_in_socket,
)

log = logging.getLogger("centralita.ws")
routes = web.RouteTableDef()
ORIGIN_GUARD = web.AppKey("ws_origin_guard", OriginGuard)
OPEN_SOCKETS = web.AppKey("agent_sockets", set)
HELLO_WAIT_S = 5.0


async def _authenticate(request: web.Request) -> Principal:
    token = request.query.get("token")
    principal = await principal_from_token(request.app, token) if token else None
    if principal is None and not token:
        principal = await principal_from_request(request)
    if principal is None:
        raise Unauthorized("sign in or give a valid widget token")
    return principal


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValidationFailed("resume must be a message number", field="resume")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValidationFailed("resume must be a message number", field="resume") from None


@routes.get("/ws/agent")
@signed_in_socket
async def agent_socket(request: web.Request) -> web.StreamResponse:
    request.app[ORIGIN_GUARD].check(request)
    principal = await _authenticate(request)
    resume = request.query.get("resume")
    last_seq = _int_or_none(resume)
    hub = request.app[HUB]
    ws = web.WebSocketResponse(heartbeat=None, max_msg_size=64 * 1024)
    await ws.prepare(request)
    epoch = request.query.get("epoch")
    if resume is None:
        last_seq, epoch = await _read_hello(ws)
    key = agent_key(principal)
    outbox = Outbox()
    await ws.send_json({"type": "hello", "agent": key, "epoch": hub.epoch,
                        "heartbeat_s": hub.heartbeat_s, "user": principal.username,
                        "name": principal.name, "role": principal.role,
                        "sms": False})  # no SMS channel yet (T14 comes with Twilio)
    hub.attach(key, outbox, last_seq=last_seq, epoch=epoch, name=principal.name,
               role=principal.role)
    writer = asyncio.create_task(_write(ws, outbox), name=f"ws:{key}")
    request.app[OPEN_SOCKETS].add(ws)
    session = _Session(request.app, principal, key, outbox)
    try:
        await _read(ws, session)
    finally:
        request.app[OPEN_SOCKETS].discard(ws)
        hub.detach(key, outbox)
        outbox.close()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await writer
        await ws.close()
    return ws


async def _read_hello(ws: web.WebSocketResponse) -> tuple[int | None, str | None]:
    """A widget that did not say `?resume=` may say it first thing; others start fresh."""
    try:
        msg = await ws.receive(timeout=HELLO_WAIT_S)
    except TimeoutError:
        return None, None
    if msg.type != WSMsgType.TEXT:
        return None, None
    try:
        data = json.loads(msg.data)
    except json.JSONDecodeError:
        return None, None
    if not isinstance(data, dict) or data.get("type") != "hello":
        return None, None
    try:
        last = _int_or_none(data.get("last_seq"))
    except ValidationFailed:
        last = None
    epoch = data.get("epoch")
    return last, epoch if isinstance(epoch, str) else None


async def _write(ws: web.WebSocketResponse, outbox: Outbox) -> None:
    while True:
        message = await outbox.queue.get()
        if message is None or ws.closed:
            if outbox.overflowed:
                await ws.close(code=4008, message=b"too slow; resume")
            return
        await ws.send_str(message)


class _Session:
    """One socket's reader side: who it is, where replies go, commands in flight."""

    def __init__(self, app: web.Application, principal: Principal, key: str,
                 outbox: Outbox) -> None:
        self.app, self.principal, self.key, self.outbox = app, principal, key, outbox
        self.hub = app[HUB]
        self.pending: set[asyncio.Task[None]] = set()

    def handle(self, data: dict[str, Any]) -> None:
        """Replies go through the outbox too, so one task alone writes to the socket."""
        kind = data.get("type")
        if kind == "ping":
            self.hub.heartbeat(self.key)
            self.reply({"type": "pong", "t": data.get("t")})
        elif kind == "presence":
            try:
                self.hub.set_presence(self.key, str(data.get("status")))
            except ValueError as err:
                self.reply({"type": "error", "code": "invalid-input", "message": str(err)})
        elif isinstance(kind, str) and kind.startswith("call."):
            # Run apart from the reader: a slow PBX must not hold up this socket's pings.
            task = asyncio.create_task(self._call_command(kind[5:], data))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)
        elif kind != "hello":  # a late hello (after ?resume=) changes nothing
            self.reply({"type": "error", "code": "unknown-command",
                        "message": f"unknown message type {kind!r}"})

    async def _call_command(self, verb: str, data: dict[str, Any]) -> None:
        """`{"type": "call.hold", "call_id": ..., "ref": ...}` -> `command.result` with `ref`."""
        reply: dict[str, Any] = {"type": "command.result", "ref": data.get("ref")}
        try:
            answer = await perform(self.app, self.principal, str(data.get("call_id", "")),
                                   verb, data)
            reply.update(ok=True, result=answer)
        except CentralitaError as err:
            reply.update(ok=False, **err.to_json())
        self.reply(reply)

    def reply(self, message: dict[str, Any]) -> None:
        """An unnumbered answer to this socket alone (not replayed on resume)."""
        self.outbox.put(json.dumps(message))


async def _read(ws: web.WebSocketResponse, session: _Session) -> None:
    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            continue
        try:
            data = json.loads(msg.data)
        except json.JSONDecodeError:
            session.reply({"type": "error", "code": "invalid-input", "message": "not JSON"})
            continue
        if isinstance(data, dict):
            session.handle(data)
    for task in list(session.pending):
        task.cancel()


async def close_sockets(app: web.Application) -> None:
    """On shutdown, tell every widget to come back later (1001) instead of holding the exit."""
    sockets: set[web.WebSocketResponse] = app[OPEN_SOCKETS]
    for ws in list(sockets):
        await ws.close(code=1001, message=b"server shutting down")
