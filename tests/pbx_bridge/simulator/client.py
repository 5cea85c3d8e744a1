"""A bare AMI client on a real socket for the simulator tests, parsing with the repo's parser."""

from __future__ import annotations

import asyncio
import contextlib
from typing import ClassVar

from pbx_bridge.asterisk.protocol import Message, Parser, encode
from pbx_bridge.simulator import Simulator


class Client:
    """A bare AMI client on a real socket, parsing with the repo's parser."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.parser = Parser()
        self.messages: list[Message] = []

    opened: ClassVar[list[Client]] = []  # closed after each test by the conftest

    @classmethod
    async def connect(cls, sim: Simulator) -> Client:
        client = cls(*await asyncio.open_connection(sim.host, sim.port))
        cls.opened.append(client)
        return client

    @classmethod
    async def close_all(cls) -> None:
        while cls.opened:
            writer = cls.opened.pop().writer
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def until(self, match, wait_s: float = 5.0) -> Message:
        async def scan() -> Message:
            while True:
                for message in self.messages:
                    if match(message):
                        return message
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("closed")
                self.messages.extend(self.parser.feed(data))

        return await asyncio.wait_for(scan(), wait_s)

    async def send(self, action: str, **fields: str) -> Message:
        self.writer.write(encode(action, fields))
        aid = fields["ActionID"]
        return await self.until(lambda m: m.action_id == aid and bool(m.response))

    async def login(self, action_id: str = "login") -> Message:
        return await self.send(
            "Login", ActionID=action_id, Username="centralita", Secret="not-a-secret"
        )
