"""AMI framing: bytes in, messages out, no I/O (so it can be fuzzed and replayed).

Asterisk ends every line with CRLF and every message with an empty line, but
some versions and proxies send bare LF or a mixed CRLF LF; all three are
accepted. A frame longer than `max_frame` or a line that is not `Key: Value`
is reported with its byte offset and skipped, and parsing resumes at the next
message boundary, so one bad frame never loses the good ones after it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

MAX_FRAME = 64 * 1024
# One whole `Key: Value` line, found after the line's "\n": a key without
# spaces or colons, then ": ". Used only on frames without a lone CR or LF,
# so a value always runs to its line's CRLF.
_PAIR = re.compile(r"\n([^ :\r\n]+): ([^\r\n]*)")


class Message:
    """One AMI message: ordered headers, repeated keys kept (`Output:` lines)."""

    __slots__ = ("_first", "headers")

    def __init__(self, headers: list[tuple[str, str]]) -> None:
        self.headers = headers
        first = dict(headers)
        if len(first) != len(headers):  # a repeated key: the first value wins
            first = {}
            for key, value in headers:
                first.setdefault(key, value)
        self._first = first

    @classmethod
    def of(cls, **fields: str) -> Message:
        return cls(list(fields.items()))

    def get(self, key: str, default: str = "") -> str:
        return self._first.get(key, default)

    def __getitem__(self, key: str) -> str:
        return self._first[key]

    def __contains__(self, key: object) -> bool:
        return key in self._first

    def getall(self, key: str) -> list[str]:
        return [v for k, v in self.headers if k == key]

    @property
    def event(self) -> str:
        return self._first.get("Event", "")

    @property
    def response(self) -> str:
        return self._first.get("Response", "")

    @property
    def action_id(self) -> str:
        return self._first.get("ActionID", "")

    def as_dict(self) -> dict[str, str]:
        return dict(self._first)

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and other.headers == self.headers

    def __repr__(self) -> str:
        return f"Message({self.headers!r})"


@dataclass(frozen=True, slots=True)
class FrameError:
    """What was wrong with a frame and where it started in the stream."""

    offset: int
    reason: str
    excerpt: bytes


def encode(action: str, fields: dict[str, str] | list[tuple[str, str]]) -> bytes:
    """One action as Asterisk expects it: CRLF lines and a closing empty line."""
    pairs = fields.items() if isinstance(fields, dict) else fields
    lines = [f"Action: {action}"]
    for key, value in pairs:
        if "\r" in value or "\n" in value:
            raise ValueError(f"AMI header {key} may not contain a line break")
        lines.append(f"{key}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def encode_message(message: Message) -> bytes:
    body = "".join(f"{k}: {v}\r\n" for k, v in message.headers)
    return (body + "\r\n").encode()


class Parser:
    """Incremental AMI parser: `feed()` bytes, get the complete messages back."""

    def __init__(self, max_frame: int = MAX_FRAME, expect_greeting: bool = True) -> None:
        self.max_frame = max_frame
        self.greeting: str | None = None
        self.errors: list[FrameError] = []
        self._want_greeting = expect_greeting
        self._buf = b""
        self._offset = 0  # stream offset of _buf[0]
        self._skipping = False  # inside an oversized frame: drop until a boundary

    @property
    def buffered(self) -> int:
        """Bytes held for an unfinished frame (bounded by about `max_frame`)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Message]:
        buf = self._buf + data
        out: list[Message] = []
        if self._want_greeting:
            nl = buf.find(b"\n")
            if nl < 0:
                self._buf = buf
                return out
            self.greeting = buf[:nl].rstrip(b"\r").decode("utf-8", "replace")
            self._want_greeting = False
            buf = buf[nl + 1 :]
            self._offset += nl + 1
        crlf = buf.count(b"\r\n")
        # A read may end between CR and LF: that CR waits for the next feed.
        lone_cr = buf.count(b"\r") - crlf - buf.endswith(b"\r")
        if not lone_cr and b"\n\n" not in buf and buf.count(b"\n") == crlf:
            return self._feed_crlf(buf, out)
        return self._feed_any(buf, out)

    def _feed_crlf(self, buf: bytes, out: list[Message]) -> list[Message]:
        """Fast path for what Asterisk really sends: CRLF lines only, split in C.

        A frame is taken whole by one regex when it has one `Key: Value` pair
        per line; anything else goes to the general path, which decides or
        reports it.
        """
        if self._skipping:
            return self._feed_any(buf, out)
        frames = buf.split(b"\r\n\r\n")
        rest = frames.pop()  # after the last boundary: an unfinished frame, or b""
        offset = self._offset
        pairs_of = _PAIR.findall
        limit = self.max_frame
        for raw in frames:
            if raw and len(raw) <= limit:
                try:
                    text = raw.decode()
                except UnicodeDecodeError:
                    text = ""
                pairs = pairs_of("\n" + text)
                if pairs and len(pairs) == text.count("\r\n") + 1:
                    out.append(Message(pairs))
                else:
                    self._frame(raw, offset, out)
            elif raw:
                self._frame(raw, offset, out)
            offset += len(raw) + 4
        self._offset = offset
        return self._keep(rest, out)

    def _keep(self, rest: bytes, out: list[Message]) -> list[Message]:
        """Hold an unfinished frame for the next feed, within the size limit."""
        if len(rest) > self.max_frame:
            self._error(self._offset, "frame longer than the limit", rest)
            self._skipping = True
            self._offset += len(rest) - 4
            rest = rest[-4:]  # keep what could start a boundary
        self._buf = rest
        return out

    def _feed_any(self, buf: bytes, out: list[Message]) -> list[Message]:
        """Any mix of CRLF, LF and CRLF LF line ends, and resynchronisation."""
        pos = 0
        # Every boundary holds "\n\n" (LF, mixed) or "\n\r\n" (CRLF); remember where
        # each next occurs so a long buffer is scanned once, not once per frame.
        lf = crlf = -2
        while True:
            if lf != -1 and lf < pos:
                lf = buf.find(b"\n\n", pos)
            if crlf != -1 and crlf < pos:
                crlf = buf.find(b"\n\r\n", pos)
            if lf < 0 and crlf < 0:
                break
            nl = lf if crlf < 0 or 0 <= lf < crlf else crlf
            after = nl + (2 if nl == lf else 3)
            end = nl - 1 if nl > pos and buf[nl - 1] == 13 else nl
            if self._skipping:
                self._skipping = False
            elif end > pos:
                self._frame(buf[pos:end], self._offset + pos, out)
            pos = after
        rest = buf[pos:]
        if len(rest) > self.max_frame:
            if not self._skipping:
                self._error(self._offset + pos, "frame longer than the limit", rest)
            self._skipping = True
            rest = rest[-4:]  # keep what could start a boundary
            pos = len(buf) - len(rest)
        self._offset += pos
        self._buf = rest
        return out

    def _frame(self, raw: bytes, offset: int, out: list[Message]) -> None:
        """The general frame reader: any line end, `Key:value` without the space.

        A bad line rejects its whole frame, reported at the line's own offset.
        """
        if len(raw) > self.max_frame:
            self._error(offset, "frame longer than the limit", raw)
            return
        pairs = _plain_pairs(raw)
        if pairs is not None:
            out.append(Message(pairs))
            return
        headers: list[tuple[str, str]] = []
        start = 0
        for chunk in raw.split(b"\n"):
            at, start = start, start + len(chunk) + 1
            chunk = chunk.rstrip(b"\r")
            if not chunk:
                continue
            try:
                line = chunk.decode("utf-8")
            except UnicodeDecodeError:
                line = chunk.decode("latin-1")  # never fails: one char per byte
            key, colon, value = line.partition(":")
            if not colon or not key or " " in key:
                self._error(offset + at, f"line is not 'Key: Value': {line[:60]!r}", raw[at:])
                return
            headers.append((key, value[1:] if value.startswith(" ") else value))
        if headers:
            out.append(Message(headers))

    def _error(self, offset: int, reason: str, raw: bytes) -> None:
        self.errors.append(FrameError(offset, reason, raw[:80]))
        if len(self.errors) > 1000:
            del self.errors[:500]


def _plain_pairs(raw: bytes) -> list[tuple[str, str]] | None:
    """The headers of a frame of plain `Key: Value` lines (CRLF or LF), else None."""
    try:
        text = raw.decode().replace("\r\n", "\n")
    except UnicodeDecodeError:
        return None
    if "\r" in text:
        return None
    pairs: list[tuple[str, str]] = _PAIR.findall("\n" + text)
    return pairs if pairs and len(pairs) == text.count("\n") + 1 else None
