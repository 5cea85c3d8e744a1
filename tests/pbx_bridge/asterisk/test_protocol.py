"""AMI framing: line ends, chunking, limits, repeated keys, and fuzzing."""

from __future__ import annotations

import bisect
import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pbx_bridge.asterisk.protocol import FrameError, Message, Parser, encode

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ami"
GREETING = "Asterisk Call Manager/11.0.0"


def parse_all(data: bytes, *, greeting: bool = True) -> tuple[Parser, list[Message]]:
    parser = Parser(expect_greeting=greeting)
    return parser, parser.feed(data)


def messages(data: bytes, *, greeting: bool = True) -> list[Message]:
    return parse_all(data, greeting=greeting)[1]


def recorded(name: str) -> bytes:
    return (FIXTURES / f"{name}.ami").read_bytes()


def test_a_recorded_session_parses_whole_with_greeting_and_counts() -> None:
    parser, parsed = parse_all(recorded("actions_misc"))
    assert parser.greeting == GREETING
    assert parser.errors == []
    kinds = [("event" if m.event else "response") for m in parsed]
    assert (kinds.count("event"), kinds.count("response")) == (13, 12)
    assert parsed[0].headers == [
        ("Response", "Success"), ("ActionID", "actions_misc-1"),
        ("Message", "Authentication accepted"),
    ]


def test_every_recording_gives_the_readme_counts() -> None:
    expected = {"blind_transfer": (162, 3), "dialer_outbound": (342, 10), "dtmf": (131, 3)}
    for name, (events, responses) in expected.items():
        parsed = messages(recorded(name))
        # OriginateResponse events carry a Response header too: count by Event.
        assert (sum(1 for m in parsed if m.event), sum(1 for m in parsed if not m.event)) == (
            events, responses,
        ), name


def test_crlf_lf_and_mixed_line_ends_give_the_same_messages() -> None:
    crlf = recorded("hangup_action")
    body = crlf.partition(b"\r\n")[2]
    lf = body.replace(b"\r\n", b"\n")
    mixed = body.replace(b"\r\n\r\n", b"\r\n\n")  # Asterisk's occasional single line end
    want = messages(crlf)
    assert len(want) == 100
    assert messages(lf, greeting=False) == want
    assert messages(mixed, greeting=False) == want


def test_splitting_at_every_byte_boundary_changes_nothing() -> None:
    stream = recorded("actions_misc")
    want = messages(stream)
    for cut in range(len(stream) + 1):
        parser = Parser()
        got = parser.feed(stream[:cut]) + parser.feed(stream[cut:])
        assert got == want, cut
        assert parser.errors == [] and parser.greeting == GREETING


def test_byte_by_byte_feeding_of_mixed_line_ends() -> None:
    stream = b"Event: A\r\nX: 1\r\n\nEvent: B\nY: \n\nEvent: C\r\n\r\n"
    parser = Parser(expect_greeting=False)
    got = [m for i in range(len(stream)) for m in parser.feed(stream[i : i + 1])]
    assert [m.headers for m in got] == [
        [("Event", "A"), ("X", "1")], [("Event", "B"), ("Y", "")], [("Event", "C")],
    ]


def test_repeated_keys_keep_every_value_and_get_returns_the_first() -> None:
    [message] = messages(
        b"Response: Success\r\nActionID: a-5\r\nMessage: Command output follows\r\n"
        b"Output: Channel  Location\r\nOutput: 0 active channels\r\nOutput: 0 active calls\r\n\r\n",
        greeting=False,
    )
    assert message.getall("Output") == ["Channel  Location", "0 active channels", "0 active calls"]
    assert message.get("Output") == "Channel  Location"
    assert (message.response, message.action_id) == ("Success", "a-5")


def test_empty_values_and_values_holding_colons() -> None:
    [message] = messages(
        b"Event: Newchannel\r\nAccountCode: \r\nExten:\r\nMessage: Invalid: a: b\r\n"
        b"Data: Local/1001@agent-answer-0000001b;1,qE\r\n\r\n",
        greeting=False,
    )
    assert message.headers == [
        ("Event", "Newchannel"), ("AccountCode", ""), ("Exten", ""),
        ("Message", "Invalid: a: b"), ("Data", "Local/1001@agent-answer-0000001b;1,qE"),
    ]


def test_an_oversize_frame_is_reported_and_the_next_one_parsed() -> None:
    big = b"Event: Big\r\n" + b"Pad: " + b"x" * 5000 + b"\r\n\r\n"
    stream = b"Event: A\r\n\r\n" + big + b"Event: B\r\n\r\n"
    for chunk in (len(stream), 700, 1):
        parser = Parser(max_frame=1024, expect_greeting=False)
        got = [m for i in range(0, len(stream), chunk) for m in parser.feed(stream[i : i + chunk])]
        assert [m.event for m in got] == ["A", "B"], chunk
        assert [(e.offset, e.reason) for e in parser.errors] == [
            (12, "frame longer than the limit")
        ], chunk
        assert stream[12:].startswith(parser.errors[0].excerpt)


def test_a_stream_without_boundaries_never_grows_the_buffer_past_the_limit() -> None:
    parser = Parser(max_frame=8192, expect_greeting=False)
    for _ in range(256):  # 1 MiB with no line end at all
        assert parser.feed(b"x" * 4096) == []
        assert parser.buffered <= 8192 + 4096
    assert [m.headers for m in parser.feed(b"\r\n\r\nEvent: After\r\n\r\n")] == [
        [("Event", "After")]
    ]
    assert [(e.offset, e.reason) for e in parser.errors] == [(0, "frame longer than the limit")]


def test_garbage_is_reported_where_it_is_and_parsing_resumes() -> None:
    stream = b"Event: A\r\n\r\nEvent: B\r\nthis is not a header\r\n\r\nEvent: C\r\n\r\n"
    parser, parsed = parse_all(stream, greeting=False)
    assert [m.event for m in parsed] == ["A", "C"]
    assert parser.errors == [
        FrameError(22, "line is not 'Key: Value': 'this is not a header'",
                   b"this is not a header"),
    ]


def test_non_utf8_bytes_are_kept_as_latin1() -> None:
    [message] = messages(b"Event: X\r\nCallerIDName: Mu\xf1oz\r\n\r\n", greeting=False)
    assert message["CallerIDName"] == "Muñoz"


def test_encode_writes_crlf_and_refuses_line_breaks() -> None:
    assert encode("Hangup", {"ActionID": "c-1", "Channel": "PJSIP/1"}) == (
        b"Action: Hangup\r\nActionID: c-1\r\nChannel: PJSIP/1\r\n\r\n"
    )
    try:
        encode("Originate", [("Variable", "A=1\r\nAction: Hangup")])
    except ValueError as err:
        assert "line break" in str(err)
    else:
        raise AssertionError("a header with a line break was encoded")


# -- fuzzing ---------------------------------------------------------------

def _sentinel(n: int) -> bytes:
    return b"Event: Sentinel\r\nSeq: %d\r\n\r\n" % n


def _good_frames() -> list[bytes]:
    body = recorded("dialer_outbound").partition(b"\r\n")[2]
    return [f for f in body.split(b"\r\n\r\n") if f][:300]


def _mutate(rng: random.Random, frame: bytes) -> tuple[bytes, bool]:
    """A damaged frame body and whether it is certainly invalid."""
    kind = rng.randrange(8)
    lines = frame.split(b"\r\n")
    if kind == 0:  # truncated anywhere
        return frame[: rng.randrange(len(frame))], False
    if kind == 1:  # a line without a colon
        lines.insert(rng.randrange(len(lines) + 1), b"garbage line")
        return b"\r\n".join(lines), True
    if kind == 2:  # a key with a space
        lines[rng.randrange(len(lines))] = b"Bad Key: v"
        return b"\r\n".join(lines), True
    if kind == 3:  # random bytes spliced in
        at = rng.randrange(len(frame) + 1)
        return frame[:at] + rng.randbytes(rng.randrange(1, 12)) + frame[at:], False
    if kind == 4:  # bytes flipped
        data = bytearray(frame)
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data), False
    if kind == 5:  # line ends mangled
        return frame.replace(b"\r\n", rng.choice([b"\n", b"\r", b"\r\r\n", b"\n\r"]), 1), False
    if kind == 6:  # oversize
        return frame + b"\r\nPad: " + b"z" * 2100, True
    return b"\xff\xfe" + frame[rng.randrange(len(frame)) :], False  # mid-frame start, bad bytes


def _check_errors(errors: list[FrameError], stream: bytes) -> None:
    """Each error says what, and where: its excerpt is the stream at its offset."""
    for error in errors:
        assert error.reason and stream.startswith(error.excerpt, error.offset), error


def test_fuzz_a_hundred_thousand_damaged_frames_never_lose_the_next_good_one() -> None:
    rng = random.Random(20261124)
    good = _good_frames()
    total = 0
    for batch in range(50):
        parts: list[bytes] = []
        certainly_bad: list[tuple[int, int]] = []
        size = 0
        for n in range(2000):
            damaged, bad = _mutate(rng, rng.choice(good))
            piece = damaged + b"\r\n\r\n"
            if bad:
                certainly_bad.append((size, size + len(piece)))
            parts += [piece, _sentinel(n)]
            size += len(piece) + len(_sentinel(n))
        stream = b"".join(parts)
        parser = Parser(max_frame=2048, expect_greeting=False)
        cuts = sorted(rng.sample(range(1, len(stream)), 40))
        got: list[Message] = []
        errors: list[FrameError] = []
        for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            got += parser.feed(stream[a:b])
            errors += parser.errors  # drained as the link does, so none is dropped
            parser.errors.clear()
        seqs = [int(m["Seq"]) for m in got if m.event == "Sentinel" and "Seq" in m]
        assert seqs == list(range(2000)), batch
        _check_errors(errors, stream)
        offsets = sorted(e.offset for e in errors)
        # Each certainly-bad frame has an error that points inside it.
        assert all(
            (i := bisect.bisect_left(offsets, lo)) < len(offsets) and offsets[i] < hi
            for lo, hi in certainly_bad
        ), batch
        total += 2000
    assert total >= 100_000


@settings(max_examples=400, deadline=None)
@given(garbage=st.binary(max_size=300), cut=st.integers(min_value=0, max_value=400))
def test_hypothesis_garbage_then_a_good_frame(garbage: bytes, cut: int) -> None:
    stream = garbage + b"\r\n\r\n" + _sentinel(7)
    parser = Parser(max_frame=256, expect_greeting=False)
    cut = min(cut, len(stream))
    got = parser.feed(stream[:cut]) + parser.feed(stream[cut:])
    assert got[-1].headers == [("Event", "Sentinel"), ("Seq", "7")]
    _check_errors(parser.errors, stream)


@settings(max_examples=200, deadline=None)
@given(
    frames=st.lists(
        st.lists(
            st.tuples(
                st.text(st.characters(exclude_characters=" :\r\n", codec="utf-8"), min_size=1,
                        max_size=8),
                st.text(st.characters(exclude_characters="\r\n", codec="utf-8"), max_size=12),
            ),
            min_size=1, max_size=5,
        ),
        min_size=1, max_size=6,
    ),
    ending=st.sampled_from([b"\r\n", b"\n"]),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=5),
)
def test_hypothesis_any_valid_frames_round_trip_in_any_chunks(
    frames: list[list[tuple[str, str]]], ending: bytes, cuts: list[int]
) -> None:
    stream = b"".join(
        b"".join(f"{k}: {v}".encode() + ending for k, v in headers) + ending
        for headers in frames
    )
    parser = Parser(expect_greeting=False)
    points = sorted({min(c, len(stream)) for c in cuts})
    got = [m for a, b in zip([0, *points], [*points, len(stream)], strict=True)
           for m in parser.feed(stream[a:b])]
    assert [m.headers for m in got] == frames
    assert parser.errors == []
