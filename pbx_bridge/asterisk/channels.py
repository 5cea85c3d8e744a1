"""Asterisk channel names and who is behind them.

A channel name says which device or dial string a leg uses:
`PJSIP/1001-0000000a` is phone 1001, `PJSIP/trunk-00000003` an outside line,
`Local/1001@agent-answer-00000001;1` one half of a Local pair whose other
half is `;2`. The two halves are one leg for the call model, so the leg key is
the name without `;1`/`;2`. Whether a party is ours is decided from this and
from numbers (a known or extension-like number), never from context names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from pbx_bridge.calls import CAUSE_BUSY, CAUSE_NO_ANSWER, FAILURE_CAUSES, Party

_LOCAL_SUFFIX = re.compile(r"-[0-9a-fA-F]{8}(;[12])?$")
_SEQ_SUFFIX = re.compile(r"-[0-9a-fA-F]+$")  # PJSIP/1001-0000000a, IAX2/1001-3456
_DIGITS = re.compile(r"\+?\d{2,}")
_UNKNOWN = frozenset({"", "<unknown>", "unknown", "anonymous"})


def leg_key(name: str) -> str:
    """The same key for both halves of a Local pair; the name itself otherwise."""
    if name.startswith("Local/") and name[-2:] in (";1", ";2"):
        return name[:-2]
    return name


def local_half(name: str) -> int:
    """1 or 2 for a Local channel half, 0 for any other channel."""
    if name.startswith("Local/") and name[-2:] in (";1", ";2"):
        return int(name[-1])
    return 0


def is_local(name: str) -> bool:
    return name.startswith("Local/")


def endpoint(name: str) -> str:
    """`PJSIP/1001-0000000a` -> `1001`; `Local/2001@queue-agents/n` -> `2001`."""
    _, slash, rest = name.partition("/")
    if not slash:
        return name
    rest = (_LOCAL_SUFFIX if name.startswith("Local/") else _SEQ_SUFFIX).sub("", rest)
    sep = "@" if name.startswith("Local/") else "/"  # PJSIP/trunk/sip:... -> trunk
    return rest.partition(sep)[0]


def known_number(value: str) -> str:
    """A caller-id number, or "" when Asterisk does not know it."""
    return "" if value.strip().lower() in _UNKNOWN else value.strip()


def dialed_number(dial_string: str) -> str:
    """The number inside a dial string (`34987654321@trunk`, `trunk/sip:+34...@h`)."""
    target = dial_string.split(",", 1)[0]
    local = target.rpartition("/")[2] if target.startswith("Local/") else target
    exten = local.partition("@")[0]
    if exten and (exten.isdigit() or exten.lstrip("+").isdigit()):
        return exten
    runs = _DIGITS.findall(target)
    return max(runs, key=len) if runs else exten


class PartyRules:
    """Tells our extensions from outside numbers and lines.

    `is_trunk` (or `trunk_patterns`, fnmatch globs of channel names: setting
    `ami_trunk_patterns`) names the outside lines. A number of 2 to
    `max_extension_len` digits is ours (`PJSIP/1001-...`, `Local/600@...`).
    Without a list of `agents`, each such number is an agent's. With one (the
    users' extensions: `know_agents`), a listed number is an agent's whatever its
    length, a phone of its own (`PJSIP/1050-...`) is still a person, and an
    unlisted number reached through the dialplan (`Local/600@ext-queues`, a
    transfer to 600) is a queue or IVR: nobody answers a call there.
    """

    def __init__(self, is_trunk: Callable[[str], bool] | None = None,
                 trunk_patterns: Iterable[str] = (), agents: Iterable[str] | None = None,
                 max_extension_len: int = 6) -> None:
        self._is_trunk = is_trunk
        self.trunk_patterns = tuple(trunk_patterns)
        self.agents: frozenset[str] | None = None
        self.max_extension_len = max_extension_len
        if agents is not None:
            self.know_agents(agents)

    def know_agents(self, extensions: Iterable[str]) -> None:
        """The agents' extensions from now on; none known means every extension is one."""
        self.agents = frozenset(extensions) or None

    def is_trunk(self, channel: str) -> bool:
        if self._is_trunk is not None and self._is_trunk(channel):
            return True
        return any(fnmatchcase(channel, pattern) for pattern in self.trunk_patterns)

    def looks_internal(self, number: str) -> bool:
        return number.isdigit() and 2 <= len(number) <= self.max_extension_len

    def of_number(self, number: str) -> Party:
        """An agent's extension, another internal number (a queue, an IVR), or outside.

        With a list of agents, only those are agents; without one, every
        extension-like number is.
        """
        if self.agents is not None and number in self.agents:
            return Party.extension(number)
        if self.looks_internal(number):
            return Party.service(number) if self.agents is not None else Party.extension(number)
        return Party(number)

    def of_channel(self, channel: str) -> Party | None:
        """Who a channel belongs to when that is one of ours; None for an outside line."""
        if self.is_trunk(channel):
            return None
        number = endpoint(channel)
        party = self.of_number(number)
        if party.agent is None and not party.outside and not is_local(channel):
            return Party.extension(number)  # a phone on its own line: a person, listed or not
        return None if party.outside else party

    def of_member(self, interface: str, member_name: str) -> Party:
        """A queue member is one of ours by definition: name it by extension."""
        ext = endpoint(interface) if interface else ""
        if not (self.looks_internal(ext) or (self.agents is not None and ext in self.agents)):
            runs = _DIGITS.findall(member_name)
            ext = runs[-1] if runs else (ext or member_name)
        return Party.extension(ext)


@dataclass(slots=True)
class Chan:
    """One live Asterisk channel as the tracker knows it."""

    name: str
    uniqueid: str
    call_id: str
    leg: str
    state: int = 0
    cid: str = ""
    exten: str = ""
    originated: bool = False  # rung by an Originate (its DialBegin had no calling channel)
    active: bool = False  # it ran Dial or Queue itself
    bridge: str = ""
    dial_string: str = ""
    hint: int = 0  # the cause DialEnd gave (BUSY, CONGESTION...) before the Hangup
    epoch: int = 0  # the AMI session (FullyBooted count) that last mentioned it


@dataclass(slots=True)
class CallView:
    """The tracker's AMI-side view of one call (Linkedid): legs and their channels."""

    origin: str | None = None
    origin_exten: str = ""
    placed: bool = False
    by_pbx: bool = False
    legs: dict[str, set[str]] = field(default_factory=dict)
    parties: dict[str, Party] = field(default_factory=dict)
    members: dict[str, Party] = field(default_factory=dict)  # queue members named by Interface
    causes: dict[str, int] = field(default_factory=dict)
    recording: str | None = None


def _cause_rank(cause: int) -> int:
    if cause == CAUSE_BUSY:
        return 3
    if cause in FAILURE_CAUSES:
        return 2
    if cause == CAUSE_NO_ANSWER:
        return 1
    return 0


def worse_cause(a: int, b: int) -> int:
    """The cause that says more about why a leg ended (busy > failure > no answer > normal)."""
    if _cause_rank(b) > _cause_rank(a) or (a == 0 and _cause_rank(b) == _cause_rank(a)):
        return b
    return a
