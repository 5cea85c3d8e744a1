"""List actions (CoreShowChannels, Status, BridgeList, QueueStatus, ...) over live state.

Asterisk answers a list with `EventList: start`, one item event per entry
carrying the ActionID, and a `...Complete` event with `ListItems`; nothing
else is interleaved, so each list is written in one go.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from pbx_bridge.asterisk.protocol import Message

if TYPE_CHECKING:
    from pbx_bridge.simulator.server import Session, Simulator

Items = list[tuple[str, list[tuple[str, str]]]]


def _send_list(
    session: Session,
    request: Message,
    message: str,
    items: Items,
    complete: str,
    extra: list[tuple[str, str]] | None = None,
) -> None:
    session.respond(request, EventList="start", Message=message)
    aid = [("ActionID", request.action_id)] if request.action_id else []
    for event, fields in items:
        session.send(Message([("Event", event), *fields]))
    tail = [("Event", complete), *aid, ("EventList", "Complete"), ("ListItems", str(len(items)))]
    session.send(Message(tail + (extra or [])))


def _duration(created: float) -> str:
    seconds = int(time.monotonic() - created)
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


async def core_show_channels(sim: Simulator, session: Session, request: Message) -> None:
    aid = [("ActionID", request.action_id)]
    items: Items = []
    for chan in sim.live_channels():
        bridge = chan.bridge.uniqueid if chan.bridge else ""
        extra = [("Application", chan.application), ("ApplicationData", chan.app_data)]
        items.append(
            (
                "CoreShowChannel",
                [
                    *aid,
                    *chan.fields(),
                    *extra,
                    ("Duration", _duration(chan.created)),
                    ("BridgeId", bridge),
                ],
            )
        )
    _send_list(session, request, "Channels will follow", items, "CoreShowChannelsComplete")


async def status(sim: Simulator, session: Session, request: Message) -> None:
    wanted = request.get("Channel")
    items: Items = []
    for chan in sim.live_channels():
        if wanted and chan.name != wanted:
            continue
        fields = [
            ("Privilege", "Call"),
            *chan.fields(),
            ("Type", "Local"),
            ("DNID", ""),
            ("EffectiveConnectedLineNum", chan.conn_num),
            ("EffectiveConnectedLineName", chan.conn_name),
            ("TimeToHangup", "0"),
            ("BridgeID", chan.bridge.uniqueid if chan.bridge else ""),
            ("Application", chan.application),
            ("Data", chan.app_data),
            ("Nativeformats", "(slin)"),
            ("Readformat", "slin"),
            ("Readtrans", ""),
            ("Writeformat", "slin"),
            ("Writetrans", ""),
            ("Callgroup", "0"),
            ("Pickupgroup", "0"),
            ("Seconds", str(int(time.monotonic() - chan.created))),
            ("ActionID", request.action_id),
        ]
        items.append(("Status", fields))
    _send_list(
        session,
        request,
        "Channel status will follow",
        items,
        "StatusComplete",
        [("Items", str(len(items)))],
    )


async def bridge_list(sim: Simulator, session: Session, request: Message) -> None:
    aid = [("ActionID", request.action_id)]
    items: Items = [
        ("BridgeListItem", [*aid, *bridge.fields()]) for bridge in sim.pbx.bridges.values()
    ]
    _send_list(session, request, "Bridge listing will follow", items, "BridgeListComplete")


async def queue_status(sim: Simulator, session: Session, request: Message) -> None:
    aid = [("ActionID", request.action_id)]
    items: Items = []
    for queue in sim.queues.queues.values():
        if request.get("Queue") and request.get("Queue") != queue.name:
            continue
        params = [
            ("Queue", queue.name),
            ("Max", "0"),
            ("Strategy", queue.strategy),
            ("Calls", str(len(queue.callers))),
            ("Holdtime", "0"),
            ("TalkTime", "0"),
            ("Completed", str(queue.completed)),
            ("Abandoned", str(queue.abandoned)),
            ("ServiceLevel", "0"),
            ("ServicelevelPerf", "0.0"),
            ("ServicelevelPerf2", "0.0"),
            ("Weight", "0"),
            *aid,
        ]
        items.append(("QueueParams", params))
        for member in queue.members:
            fields = [
                ("Queue", queue.name),
                *member.fields("Name", "Location"),
                ("Wrapuptime", "0"),
                *aid,
            ]
            items.append(("QueueMember", fields))
        for position, caller in enumerate(queue.callers, 1):
            entry = [
                ("Queue", queue.name),
                ("Position", str(position)),
                ("Channel", caller.name),
                ("Uniqueid", caller.uniqueid),
                ("CallerIDNum", caller.cid_num),
                ("CallerIDName", caller.cid_name),
                ("ConnectedLineNum", caller.conn_num),
                ("ConnectedLineName", caller.conn_name),
                ("Wait", str(int(time.monotonic() - caller.created))),
                ("Priority", "0"),
                *aid,
            ]
            items.append(("QueueEntry", entry))
    _send_list(session, request, "Queue status will follow", items, "QueueStatusComplete")


async def queue_summary(sim: Simulator, session: Session, request: Message) -> None:
    items: Items = []
    for queue in sim.queues.queues.values():
        if request.get("Queue") and request.get("Queue") != queue.name:
            continue
        fields = [
            ("Queue", queue.name),
            ("LoggedIn", str(len(queue.members))),
            ("Available", str(len(queue.free_members()))),
            ("Callers", str(len(queue.callers))),
            ("HoldTime", "0"),
            ("TalkTime", "0"),
            ("LongestHoldTime", "0"),
            ("ActionID", request.action_id),
        ]
        items.append(("QueueSummary", fields))
    _send_list(session, request, "Queue summary will follow", items, "QueueSummaryComplete")


async def extension_state_list(sim: Simulator, session: Session, request: Message) -> None:
    aid = [("ActionID", request.action_id)]
    items: Items = []
    for exten in ("1001", "1002"):
        busy = any(c.name.startswith(f"Local/{exten}@agent-") for c in sim.live_channels())
        fields = [
            *aid,
            ("Exten", exten),
            ("Context", "from-internal"),
            ("Hint", f"Local/{exten}@agent-answer"),
            ("Status", "1" if busy else "0"),
            ("StatusText", "InUse" if busy else "Idle"),
        ]
        items.append(("ExtensionStatus", fields))
    _send_list(
        session, request, "Extension Statuses will follow", items, "ExtensionStateListComplete"
    )


async def device_state_list(sim: Simulator, session: Session, request: Message) -> None:
    aid = [("ActionID", request.action_id)]
    items: Items = []
    for device, state in sim.pbx.devices.items():
        items.append(("DeviceStateChange", [*aid, ("Device", device), ("State", state)]))
    _send_list(
        session, request, "Device State Changes will follow", items, "DeviceStateListComplete"
    )


LISTS: dict[str, Callable[[Simulator, Session, Message], Awaitable[None]]] = {
    "coreshowchannels": core_show_channels,
    "status": status,
    "bridgelist": bridge_list,
    "queuestatus": queue_status,
    "queuesummary": queue_summary,
    "extensionstatelist": extension_state_list,
    "devicestatelist": device_state_list,
}
