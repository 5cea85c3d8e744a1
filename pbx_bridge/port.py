"""What the rest of the product may ask of a PBX: one interface, one implementation per PBX.

Services and pages (click-to-call, the widget's call controls, the dialer, the
supervisor page) depend on this protocol only, never on AMI or Twilio.
Every method raises a `kernel.errors.PBXError` subclass with a clear message
when the PBX refuses or cannot be reached.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from kernel.errors import PBXUnavailable

TransferMode = Literal["blind", "attended"]
SpyMode = Literal["listen", "whisper", "barge"]


@dataclass(frozen=True, slots=True)
class OriginateRequest:
    """Ring `agent_extension` first; when it answers, dial `number`.

    With no agent (the dialer), the customer is dialled first and connected to
    `context`/`exten` (a queue) when answered.
    """

    number: str
    agent_extension: str | None = None
    caller_id: str | None = None
    timeout_s: float = 30.0
    context: str | None = None
    exten: str | None = None
    variables: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class OriginateTicket:
    """What an accepted originate returns: the id its outcome event will carry."""

    action_id: str


class PbxPort(Protocol):
    name: str

    @property
    def online(self) -> bool: ...

    async def originate(self, request: OriginateRequest) -> OriginateTicket: ...

    async def hangup(self, call_id: str) -> None: ...

    async def transfer(self, call_id: str, to: str, mode: TransferMode = "blind") -> None: ...

    async def hold(self, call_id: str) -> None: ...

    async def resume(self, call_id: str) -> None: ...

    async def mute(self, call_id: str, muted: bool) -> None: ...

    async def send_dtmf(self, call_id: str, digits: str) -> None: ...

    async def start_recording(self, call_id: str) -> str: ...

    async def stop_recording(self, call_id: str) -> None: ...

    async def spy(self, call_id: str, supervisor_extension: str, mode: SpyMode) -> None: ...


class NoPbx:
    """The port when no PBX is configured: every request says so clearly."""

    name = "none"
    online = False

    def _refuse(self) -> PBXUnavailable:
        return PBXUnavailable("no PBX is configured: set CENTRALITA_AMI_HOST or the Twilio keys")

    async def originate(self, request: OriginateRequest) -> OriginateTicket:
        raise self._refuse()

    async def hangup(self, call_id: str) -> None:
        raise self._refuse()

    async def transfer(self, call_id: str, to: str, mode: TransferMode = "blind") -> None:
        raise self._refuse()

    async def hold(self, call_id: str) -> None:
        raise self._refuse()

    async def resume(self, call_id: str) -> None:
        raise self._refuse()

    async def mute(self, call_id: str, muted: bool) -> None:
        raise self._refuse()

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        raise self._refuse()

    async def start_recording(self, call_id: str) -> str:
        raise self._refuse()

    async def stop_recording(self, call_id: str) -> None:
        raise self._refuse()

    async def spy(self, call_id: str, supervisor_extension: str, mode: SpyMode) -> None:
        raise self._refuse()
