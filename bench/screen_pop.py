"""End to end screen-pop latency: the AMI frame leaving the simulator -> the pop on a widget.

    .venv/bin/python bench/screen_pop.py [--backend sqlite|postgres|both] [--quick]

Two processes at a time (the machine has two cores): this one runs the AMI
simulators and the agent widgets (the `websockets` library); the other holds
the 1,000,000-contact database, the real server (`build_app`) and a bare
relay (panoramisk -> one indexed SQLite lookup -> aiohttp WebSocket) measured
in the same run as the floor. Each backend gets a server process and a relay
of its own: a server measured after another in one process inherits its heap.
Each call is an inbound PSTN call to one agent, round-robin; latency is from
the `DialBegin` that rings the agent leaving the simulator to that agent's
`screen_pop` frame read by its widget, keyed by Linkedid (= the pop's
call_id). Target (issue): p99 within 3x the relay at 50 calls/s, no pop lost
at 200 calls/s.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

from _popbench import server
from _popbench.fleet import Fleet, place_calls, stamp_dial_begins
from phone_lookup import mobile

from pbx_bridge.simulator import Simulator

HIGH_RATE = 200.0
SETTLE_S = 10.0  # a pop later than this after the last call counts as lost (the call is over)


@dataclass(frozen=True)
class Run:
    """One measured phase: calls rung, pops back, and their latencies in ms."""

    label: str
    rate: float
    rung: int
    popped: int
    ms: list[float]
    duplicates: int

    @property
    def lost(self) -> int:
        return self.rung - self.popped

    def pct(self, q: float) -> float:
        ordered = sorted(self.ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")

    @property
    def p50(self) -> float:
        return statistics.median(self.ms) if self.ms else float("nan")

    def line(self) -> str:
        return (f"  {self.label:18} {self.rate:5.0f}/s  p50 {self.p50:7.2f} ms  p99 "
                f"{self.pct(0.99):7.2f} ms  max {max(self.ms, default=float('nan')):8.2f} ms  "
                f"pops {self.popped}/{self.rung} late/lost {self.lost} dup {self.duplicates}")


def caller_for(contacts: int):  # type: ignore[no-untyped-def]
    """A known, non-private contact per call (the agent may see it: a real card pops)."""
    def number(n: int) -> str:
        i = 1 + (n * 104_729) % contacts
        if i % 3 == 2:  # phone_lookup makes every third contact private to its manager
            i -= 1
        return mobile(i).lstrip("+")
    return number


async def measure(label: str, sim: Simulator, sent: dict[str, float], fleet: Fleet,
                  rate: float, seconds: float, contacts: int, offset: int) -> Run:
    """Warm up for a second, then ring at `rate` for `seconds` and collect the pops."""

    extensions = list(fleet.urls)
    await place_calls(sim, min(rate, 20.0), 1.0, extensions, caller_for(contacts), offset)
    await fleet.quiet(0.5)
    sent.clear()
    fleet.pops.clear()
    fleet.popped_on.clear()
    fleet.kinds.clear()
    fleet.duplicates = 0
    await place_calls(sim, rate, seconds, extensions, caller_for(contacts), offset + 1000)
    await fleet.await_pops(list(sent), SETTLE_S)
    ms = [(fleet.pops[c] - t) * 1000 for c, t in sent.items() if c in fleet.pops]
    run = Run(label, rate, len(sent), len(ms), ms, fleet.duplicates)
    print(run.line(), flush=True)
    print(f"  {'':18} cards: {dict(fleet.kinds)}", flush=True)
    return run


def fleet_for(target: dict[str, object], agents: int, relay: bool) -> Fleet:
    port = target["port"]
    extensions = [server.extension_of(u) for u in range(1, agents + 1)]
    if relay:
        urls = {e: f"ws://127.0.0.1:{port}/ws?ext={e}" for e in extensions}
    else:
        tokens: dict[str, str] = target["tokens"]  # type: ignore[assignment]
        urls = {e: f"ws://127.0.0.1:{port}/ws/agent?token={tokens[e]}" for e in extensions}
    return Fleet(urls, origin=f"http://127.0.0.1:{port}", hello=not relay)


async def drive(args: argparse.Namespace, backend: str) -> list[Run]:
    """The relay, then `backend` at the steady and the high rate, on a server process of its own
    (a second backend in the same process would inherit the first one's heap and threads)."""
    sims = {name: Simulator(server.AMI_USER, server.AMI_SECRET) for name in ("relay", backend)}
    sent: dict[str, float] = {}
    for sim in sims.values():
        await sim.start()
        stamp_dial_begins(sim, sent)
    plan = {"contacts": args.contacts, "agents": args.agents, "postgres_url": args.postgres_url,
            "sims": {name: (sim.host, sim.port) for name, sim in sims.items()}}
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=server.main, args=(theirs, plan), name="centralita-under-test")
    proc.start()
    print(f"  server side: pid {proc.pid} (py-spy record -p {proc.pid})", flush=True)
    runs: list[Run] = []
    try:
        ready = await asyncio.to_thread(ours.recv)
        if "error" in ready:
            raise RuntimeError(f"server side failed: {ready['error']}")
        phases = [("relay", args.rate), (backend, args.rate), (backend, HIGH_RATE)]
        fleets: dict[str, Fleet] = {}
        for n, (name, rate) in enumerate(phases):
            if name not in fleets:
                for old in fleets.values():
                    await old.close()
                started = time.perf_counter()
                fleets = {name: fleet_for(ready[name], args.agents, relay=name == "relay")}
                await fleets[name].connect()
                print(f"  {name}: {args.agents} widgets connected and quiet in "
                      f"{time.perf_counter() - started:.1f} s", flush=True)
            label = "relay (bare)" if name == "relay" else f"ours {name}"
            before = await _popper(ours, name)
            runs.append(await measure(label, sims[name], sent, fleets[name], rate,
                                      args.seconds, args.contacts, n * 100_000))
            after = await _popper(ours, name)
            if after[0] > before[0]:
                mean = (after[1] - before[1]) / (after[0] - before[0]) * 1000
                print(f"  {'':18} server's own histogram, ringing event -> pop on the bus: "
                      f"mean {mean:.2f} ms (incl. warm-up)", flush=True)
            await drained(ours, name)
            if fleets[name].closed_early:
                print(f"  !! {len(fleets[name].closed_early)} widgets were cut during {label}")
        for old in fleets.values():
            await old.close()
    finally:
        ours.send("done")
        await asyncio.to_thread(proc.join, 60)
        for sim in sims.values():
            await sim.close()
    return runs


async def _popper(conn: Connection, name: str) -> tuple[float, float, int]:
    """The server's screen-pop histogram (count, sum of seconds) and bus backlog."""
    if name == "relay":
        return 0.0, 0.0, 0
    conn.send(name)
    answer: tuple[float, float, int] = await asyncio.to_thread(conn.recv)
    return answer


async def drained(conn: Connection, name: str, within_s: float = 300.0) -> None:
    """Let a late server finish its backlog, so it does not slow the next phase."""
    for _ in range(int(within_s / 0.5)):
        if (await _popper(conn, name))[2] == 0:
            return
        await asyncio.sleep(0.5)


def report(groups: list[list[Run]], args: argparse.Namespace) -> None:
    print(f"\n{args.contacts} contacts, {args.agents} agent widgets, {args.seconds:g} s per phase")
    print(f"\nREADME: screen pop, AMI frame -> widget, {args.agents} agents, {args.contacts} "
          f"contacts: " + "; ".join(_summary(runs) for runs in groups))


def _summary(runs: list[Run]) -> str:
    """One backend's runs against the relay measured in the same process."""
    relay = runs[0]
    print(f"  relay at {relay.rate:g}/s: p50 {relay.p50:.2f} ms, p99 {relay.pct(0.99):.2f} ms")
    parts = []
    for run in runs[1:]:
        if run.rate == relay.rate:
            ratio = run.pct(0.99) / relay.pct(0.99)
            verdict = "OK" if ratio <= 3 else "over 3x"
            print(f"  {run.label}: p99 {ratio:.1f}x the relay ({verdict})")
            parts.append(f"{run.label.split()[-1]} p50 {run.p50:.1f} / p99 {run.pct(0.99):.1f} ms"
                         f" ({ratio:.1f}x relay)")
        else:
            print(f"  {run.label} at {run.rate:g}/s: {run.lost} of {run.rung} pops lost")
            parts.append(f"{run.lost} lost of {run.rung} at {run.rate:g}/s")
    return (f"{relay.rate:g} calls/s: " + ", ".join(parts)
            + f", bare relay p50 {relay.p50:.1f} / p99 {relay.pct(0.99):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--agents", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--quick", action="store_true",
                        help="20,000 contacts, 100 agents, 5 s per phase: under a minute")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "CENTRALITA_BENCH_POSTGRES_URL", os.environ.get("CENTRALITA_TEST_POSTGRES_URL", "")))
    args = parser.parse_args()
    if args.quick:
        args.contacts, args.agents, args.seconds = 20_000, 100, 5.0
    if args.backend != "sqlite" and not args.postgres_url:
        parser.error("PostgreSQL needs --postgres-url (or eval \"$(./scripts/services.sh)\")")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    report([asyncio.run(drive(args, backend)) for backend in backends], args)


if __name__ == "__main__":
    main()
