"""The AMI link: one TCP session to Asterisk, kept alive, with actions as awaitables.

Shaped like panoramisk's manager, without its weak spots:
- list answers end on a table of completion events (or `EventList: Complete`),
  never on guessed message text, and each list has its own timeout;
- reconnects use exponential back-off with full jitter, reset after a good
  login, instead of a fixed 2 s retry;
- `Ping` runs only after login and an unanswered ping is a dead link;
- actions waiting when the link drops fail with `AMILinkLost` and are never
  re-sent: re-sending an `Originate` after a reconnect can ring a customer twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from kernel.errors import AMIActionFailed, AMIActionTimeout, AMILinkLost, PBXUnavailable
from pbx_bridge.asterisk.protocol import Message, Parser, encode

log = logging.getLogger("centralita.ami")

OnMessage = Callable[[Message, float], None]
OnConnect = Callable[["AMILink"], Awaitable[None]]
OnState = Callable[[bool, str], None]

# List actions and the event that closes their answer. Any other list whose
# last event says `EventList: Complete` is closed by that header.
LIST_COMPLETIONS: dict[str, str] = {
    "CoreShowChannels": "CoreShowChannelsComplete",
    "Status": "StatusComplete",
    "BridgeList": "BridgeListComplete",
    "QueueStatus": "QueueStatusComplete",
    "QueueSummary": "QueueSummaryComplete",
    "ExtensionStateList": "ExtensionStateListComplete",
    "DeviceStateList": "DeviceStateListComplete",
}

# How many timed-out ActionIDs to remember, so their late answers are dropped.
ABANDONED_KEPT = 1024

# Events that carry an action's ActionID yet belong to everybody: the dialer
# and the call tracker follow an Originate's outcome through this one.
BROADCAST_EVENTS = frozenset({"OriginateResponse"})

Fields = dict[str, str] | list[tuple[str, str]]


def backoff_delay(attempt: int, initial: float, cap: float, rng: random.Random) -> float:
    """Full-jitter back-off: uniform in [0, min(cap, initial * 2**attempt)].

    Jitter spreads the reconnects of many nodes after an Asterisk restart.
    """
    ceiling = min(cap, initial * (2 ** min(attempt, 32)))
    return rng.uniform(0.0, ceiling)


@dataclass
class _Pending:
    """An action waiting for its answer (and, for a list, its items)."""

    action: str
    future: asyncio.Future[Message]
    completion: str | None = None  # set for list actions
    items: list[Message] = field(default_factory=list)


@dataclass
class _Session:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    parser: Parser
    logged_in: bool = False


class AMILink:
    """A self-healing AMI session. Start it once; it reconnects until closed."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        on_message: OnMessage,
        on_connect: OnConnect | None = None,
        on_state: OnState | None = None,
        action_timeout: float = 10.0,
        list_timeout: float = 30.0,
        connect_timeout: float = 5.0,
        ping_interval: float = 20.0,
        ping_timeout: float = 5.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        action_id_prefix: str = "centralita",
        rng: random.Random | None = None,
    ) -> None:
        self.host, self.port, self.username = host, port, username
        self._secret = secret
        self._on_message = on_message
        self._on_connect = on_connect
        self._on_state = on_state
        self.action_timeout, self.list_timeout = action_timeout, list_timeout
        self.connect_timeout = connect_timeout
        self.ping_interval, self.ping_timeout = ping_interval, ping_timeout
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self._prefix = action_id_prefix
        self._counter = itertools.count(1)
        self._rng = rng or random.Random()
        self._pending: dict[str, _Pending] = {}
        self._abandoned: OrderedDict[str, None] = OrderedDict()
        self._session: _Session | None = None
        self._online = False
        self._online_event = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._closing = False
        self.frame_errors = 0
        self.connects = 0
        self.greeting: str | None = None

    # -- public surface -------------------------------------------------

    @property
    def online(self) -> bool:
        """Logged in and resynced (on_connect finished): safe for callers to act."""
        return self._online

    async def start(self) -> None:
        """Begin connecting in the background; returns at once."""
        if self._runner is None:
            self._closing = False
            self._runner = asyncio.create_task(self._run(), name="ami-link")

    async def wait_online(self, timeout: float) -> bool:  # noqa: ASYNC109 (the brief's API)
        """Wait until the link is online; False if it was not within `timeout`."""
        try:
            await asyncio.wait_for(self._online_event.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Log off if we can, fail what still waits, stop the background tasks."""
        self._closing = True
        session = self._session
        if session is not None and session.logged_in:
            with contextlib.suppress(Exception):
                await self._request("Logoff", {}, limit=1.0)
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        self._drop_session("link closed")

    async def send_action(
        self,
        action: str,
        fields: Fields | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the action's own deadline
    ) -> Message:
        """Send one action and return its `Response`.

        Raises PBXUnavailable when not logged in, AMIActionFailed on
        `Response: Error`, AMIActionTimeout without an answer in time and
        AMILinkLost when the link drops first (the action is not re-sent).
        """
        return await self._request(action, fields or {}, limit=timeout)

    async def send_list_action(
        self,
        action: str,
        fields: Fields | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the list's own deadline
    ) -> list[Message]:
        """Send a list action and return its item events, in order."""
        completion = LIST_COMPLETIONS.get(action, "")
        pending = await self._submit(action, fields or {}, completion=completion)
        await self._await(pending, timeout if timeout is not None else self.list_timeout)
        return pending.items

    # -- actions ----------------------------------------------------------

    async def _request(self, action: str, fields: Fields, *, limit: float | None) -> Message:
        pending = await self._submit(action, fields, completion=None)
        return await self._await(pending, limit if limit is not None else self.action_timeout)

    async def _submit(self, action: str, fields: Fields, *, completion: str | None) -> _Pending:
        session = self._session
        if session is None or not (session.logged_in or action == "Login"):
            raise PBXUnavailable(f"AMI link to {self.host}:{self.port} is offline")
        action_id = f"{self._prefix}-{next(self._counter)}"
        pairs = list(fields.items()) if isinstance(fields, dict) else list(fields)
        data = encode(action, [("ActionID", action_id), *pairs])
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        pending = _Pending(action, future, completion)
        self._pending[action_id] = pending
        try:
            session.writer.write(data)
            await session.writer.drain()
        except (ConnectionError, OSError) as err:
            self._pending.pop(action_id, None)
            raise AMILinkLost(f"AMI link lost while sending {action}: {err}") from err
        return pending

    async def _await(self, pending: _Pending, limit: float) -> Message:
        try:
            return await asyncio.wait_for(pending.future, limit)
        except TimeoutError:
            raise AMIActionTimeout(
                f"Asterisk did not answer {pending.action} within {limit:g} s"
            ) from None
        finally:
            self._forget(pending)

    def _forget(self, pending: _Pending) -> None:
        for action_id, other in list(self._pending.items()):
            if other is pending:
                del self._pending[action_id]
                if pending.future.cancelled():  # given up on: drop what still comes
                    self._abandoned[action_id] = None
                    while len(self._abandoned) > ABANDONED_KEPT:
                        self._abandoned.popitem(last=False)
        if not pending.future.done():
            pending.future.cancel()

    # -- incoming ---------------------------------------------------------

    def _dispatch(self, message: Message, received_at: float) -> None:
        """Route one message to the action waiting for it, else to on_message."""
        action_id = message.action_id
        pending = self._pending.get(action_id) if action_id else None
        if (
            pending is None
            and action_id in self._abandoned
            and message.event not in BROADCAST_EVENTS
        ):
            return  # a late answer or list item of an action that timed out
        if pending is None or pending.future.done() or message.event in BROADCAST_EVENTS:
            self._on_message(message, received_at)
            return
        if "Response" in message:
            self._answer(pending, message)
        elif pending.completion is not None:
            event = message.event
            if event == pending.completion or message.get("EventList") == "Complete":
                if not pending.future.done():
                    pending.future.set_result(message)
            else:
                pending.items.append(message)
        else:
            self._on_message(message, received_at)

    @staticmethod
    def _answer(pending: _Pending, message: Message) -> None:
        if message.response == "Error":
            reason = message.get("Message") or "no reason given"
            pending.future.set_exception(
                AMIActionFailed(f"{pending.action} refused by Asterisk: {reason}", reason=reason)
            )
        elif pending.completion is None:
            pending.future.set_result(message)
        # else: a list's "Success": its items and completion event follow

    # -- connection lifecycle ----------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            good_login = False
            try:
                good_login = await self._connect_once()
            except (OSError, TimeoutError) as err:
                log.warning("AMI %s:%s unreachable: %s", self.host, self.port, err)
            except (AMIActionTimeout, AMILinkLost, AMIActionFailed) as err:
                log.warning("AMI session to %s:%s failed: %s", self.host, self.port, err)
            except Exception:
                log.exception("AMI session to %s:%s failed", self.host, self.port)
            finally:
                reason = "link closed" if self._closing else "link lost"
                self._drop_session(reason)
            if self._closing:
                break
            attempt = 0 if good_login else attempt + 1
            delay = backoff_delay(attempt, self.backoff_initial, self.backoff_max, self._rng)
            log.info("AMI reconnect to %s:%s in %.2f s", self.host, self.port, delay)
            await asyncio.sleep(delay)

    async def _connect_once(self) -> bool:
        """One session: connect, log in, resync, then serve until it dies.

        Returns True when the login was accepted (the back-off restarts).
        """
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), self.connect_timeout
        )
        session = _Session(reader, writer, Parser())
        self._session = session
        pump = asyncio.create_task(self._read_loop(session), name="ami-reader")
        try:
            if not await self._login(session):
                return False
            self.connects += 1
            if self._on_connect is not None:
                await self._on_connect(self)
            self._set_online(True, "logged in")
            pinger = asyncio.create_task(self._ping_loop(session), name="ami-ping")
            try:
                await asyncio.wait({pump, pinger}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                pinger.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pinger
            return True
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    async def _login(self, session: _Session) -> bool:
        fields = {"Username": self.username, "Secret": self._secret, "Events": "on"}
        try:
            await self._request("Login", fields, limit=self.action_timeout)
        except AMIActionFailed as err:
            reason = err.details.get("reason", err.message)
            log.error("AMI login refused for user %s: %s", self.username, reason)
            self._notify_state(False, f"login refused: {reason}")
            return False
        session.logged_in = True
        return True

    async def _read_loop(self, session: _Session) -> None:
        try:
            await self._read_chunks(session)
        finally:
            # Whoever waits for an answer learns now, not at its timeout.
            self._fail_pending()

    async def _read_chunks(self, session: _Session) -> None:
        while True:
            try:
                chunk = await session.reader.read(65536)
            except OSError as err:
                log.warning("AMI %s:%s read failed: %s", self.host, self.port, err)
                return
            if not chunk:
                log.warning("AMI %s:%s closed the connection", self.host, self.port)
                return
            received_at = time.time()
            messages = session.parser.feed(chunk)
            if session.parser.errors:
                self._report_frame_errors(session.parser)
            if self.greeting is None and session.parser.greeting is not None:
                self.greeting = session.parser.greeting
            for message in messages:
                try:
                    self._dispatch(message, received_at)
                except Exception:
                    log.exception("AMI message handler failed on %r", message.event)

    def _report_frame_errors(self, parser: Parser) -> None:
        for error in parser.errors:
            log.warning(
                "AMI framing error at byte %d: %s; excerpt %r",
                error.offset, error.reason, error.excerpt,
            )
        self.frame_errors += len(parser.errors)
        parser.errors.clear()

    async def _ping_loop(self, session: _Session) -> None:
        """Ping every interval; a ping without answer means the link is dead."""
        while True:
            await asyncio.sleep(self.ping_interval)
            try:
                await self._request("Ping", {}, limit=self.ping_timeout)
            except AMIActionTimeout:
                log.warning(
                    "AMI %s:%s did not answer Ping within %g s: dropping the link",
                    self.host, self.port, self.ping_timeout,
                )
                return
            except AMIActionFailed:
                continue  # an answer, even an error, proves the link is alive

    def _drop_session(self, reason: str) -> None:
        """Close the socket, fail every waiting action, go offline."""
        session, self._session = self._session, None
        if session is not None:
            session.writer.close()
        self._fail_pending()
        if self._online:
            self._set_online(False, reason)

    def _fail_pending(self) -> None:
        """Fail every waiting action with AMILinkLost; none is ever re-sent."""
        waiting, self._pending = self._pending, {}
        for action_id, pending in waiting.items():
            if not pending.future.done():
                pending.future.set_exception(
                    AMILinkLost(
                        f"AMI link lost while {pending.action} ({action_id}) waited for its"
                        " answer; it was not re-sent"
                    )
                )

    def _set_online(self, online: bool, reason: str) -> None:
        self._online = online
        (self._online_event.set if online else self._online_event.clear)()
        self._notify_state(online, reason)

    def _notify_state(self, online: bool, reason: str) -> None:
        if self._on_state is not None:
            try:
                self._on_state(online, reason)
            except Exception:
                log.exception("AMI on_state callback failed")
