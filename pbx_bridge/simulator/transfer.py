"""Transfers as the traces show them: blind/redirect move a channel, attended merges bridges.

A blind transfer or Redirect keeps the caller's channel (same Uniqueid and
Linkedid): it leaves its bridge, the other side hangs up, and the same channel
dials again. An attended transfer (features `*2` via the Atxfer action) puts
the caller on hold music, dials the target through a new
`Local/<exten>@from-internal` pair in a consultation bridge, and completes when
the transferer hangs up: the consultation bridge merges into the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass

from pbx_bridge.simulator import flows
from pbx_bridge.simulator.channels import Bridge, Channel, Pbx
from pbx_bridge.simulator.dialplan import Dialplan
from pbx_bridge.simulator.flows import ANSWER, Leg


def move(
    pbx: Pbx,
    dialplan: Dialplan,
    targets: list[tuple[Channel, str, str]],
) -> None:
    """Take each channel out of its bridge, end the parties left behind, and run
    `context,exten` on it (Redirect with ExtraChannel moves two at once)."""
    moving = [chan for chan, _, _ in targets]
    for chan in moving:
        bridge = chan.bridge
        if bridge is None:
            continue
        for other in [c for c in bridge.members if c not in moving]:
            pbx.bridge_leave(bridge, other)
            flows.teardown(pbx, other, 16, how="ami")
        pbx.bridge_leave(bridge, chan)
        if not bridge.members:
            pbx.bridge_destroy(bridge)
    for chan, context, exten in targets:
        dialplan.spawn(dialplan.run_at(chan, context, exten))


@dataclass(eq=False)
class Consultation:
    """An attended transfer in progress, remembered on the transferer's channel."""

    transferer: Channel
    transferee: Channel
    original: Bridge
    consult: Bridge
    target: Leg


def held_party(transferer: Channel) -> Channel | None:
    bridge = transferer.bridge
    if bridge is None:
        return None
    return next((c for c in bridge.members if c is not transferer), None)


async def attended(pbx: Pbx, dialplan: Dialplan, transferer: Channel, exten: str) -> None:
    """Atxfer: `*2` + digits, hold, consult `exten`; completion waits for a Hangup."""
    transferee, original = held_party(transferer), transferer.bridge
    if transferee is None or original is None:
        return
    for digit in "*2":
        pbx.dtmf(transferer, digit, "Received", 100)
    pbx.event("Hold", "call,all", transferer.fields())
    pbx.event("MusicOnHoldStart", "call,all", [*transferee.fields(), ("Class", "default")])
    for digit in exten:
        await pbx.sleep(0.25)
        pbx.dtmf(transferer, digit, "Received", 100)
    one, two = pbx.local_pair(exten, "from-internal", transferer.linkedid)
    two.dialplan = True
    consult = pbx.bridge_create()
    pbx.caller_id(two, transferer.cid_num, transferer.cid_name)
    pbx.local_bridge(one, two)
    target = Leg(None, one, two)
    target.on_ringing = lambda: _move_transferer(pbx, transferer, original, consult)
    dialplan.start_far_end(target)
    update_connected(pbx, one, transferer.cid_num, transferer.cid_name)
    pbx.bridge_enter(consult, one)
    transferer.consultation = Consultation(transferer, transferee, original, consult, target)
    if await flows.wait_outcome(pbx, target, None) == ANSWER:
        pbx.dial_end(None, one, ANSWER)


def _move_transferer(pbx: Pbx, transferer: Channel, original: Bridge, consult: Bridge) -> None:
    """The target rings: the transferer joins the consultation bridge to hear it."""
    if transferer.bridge is original:
        pbx.bridge_leave(original, transferer)
        pbx.bridge_enter(consult, transferer)
        update_connected(pbx, transferer, "<unknown>", "<unknown>")


def complete(pbx: Pbx, consultation: Consultation) -> None:
    """The transferer hung up while consulting: merge the bridges (AttendedTransfer)."""
    transferer, transferee = consultation.transferer, consultation.transferee
    original, consult, target = consultation.original, consultation.consult, consultation.target.one
    if transferer.bridge is not None:
        pbx.bridge_leave(transferer.bridge, transferer)
    if transferer.partner is not None and not transferer.partner.gone:
        pbx.hangup_request(transferer.partner, 16)
    pbx.event("MusicOnHoldStop", "call,all", transferee.fields())
    merge = [(f"To{k}", v) for k, v in original.fields()]
    merge += [(f"From{k}", v) for k, v in consult.fields()]
    pbx.event("BridgeMerge", "call,all", merge)
    pbx.bridge_leave(consult, target)
    pbx.bridge_enter(original, target)
    pbx.event("AttendedTransfer", "call,all", _attended_fields(consultation))
    for half in (target, target.partner):
        if half is not None:
            pbx.varset(half, "ATTENDEDTRANSFER", transferer.name)
    pbx.bridge_destroy(consult)
    partner = transferer.partner
    pbx.hangup(transferer, 16)
    update_connected(pbx, target, transferee.cid_num, transferee.cid_name)
    if partner is not None and not partner.gone:
        pbx.hangup_request(partner, 16, soft=True)
        flows.hangup_flushing(pbx, partner, 16)
    update_connected(pbx, transferee, target.cid_num, target.cid_name)
    far = held_party(target.partner) if target.partner is not None else None
    if far is not None:
        update_connected(pbx, far, transferee.cid_num, transferee.cid_name)


def _attended_fields(c: Consultation) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = [("Result", "Success")]
    fields += c.transferer.fields("OrigTransferer")
    fields += [(f"Orig{k}", v) for k, v in c.original.fields()]
    fields += c.transferer.fields("SecondTransferer")
    fields += [(f"Second{k}", v) for k, v in c.consult.fields()]
    fields += c.transferee.fields("Transferee")
    fields += c.target.one.fields("TransferTarget")
    fields += [("IsExternal", "No"), ("DestType", "Bridge")]
    return [*fields, ("DestBridgeUniqueid", c.original.uniqueid)]


def update_connected(pbx: Pbx, chan: Channel, num: str, name: str) -> None:
    """A connected-line change on a Local half reaches the other half as a caller ID.

    From ;2 to ;1 it shows at once; from ;1 to ;2 the update waits in the ;2's
    queue until that channel next runs, which in the traces is its hangup.
    """
    pbx.connected_line(chan, num, name)
    partner = chan.partner
    if partner is None or partner.gone:
        return
    if chan.name.endswith(";2"):
        pbx.caller_id(partner, num, name)
    else:
        partner.pending_callerid = (num, name)
