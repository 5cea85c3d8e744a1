"""The call log: one row per call, written from `call.*` events, never twice, never backwards.

The PBX adapters publish every lifecycle step with a full `CallInfo`
snapshot. Events can be replayed after a reconnect, duplicated across
nodes, or arrive out of order (an `ended` before a late `ringing`), so the
row is upserted by `call_id` (Asterisk's Linkedid, Twilio's CallSid) and a
snapshot only moves it forward: an ended call is never reopened, and an
older snapshot may only fill fields that are still empty.

Who sees which call is `access.call_visible`: supervisors and admins every
call; an agent the calls they handled, calls of leads, and calls of
contacts they may see.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, and_, bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from crm_core import access
from crm_core.access import Viewer, call_visible
from crm_core.db import Database
from crm_core.leads import lead_for_unknown
from crm_core.models import Call, User, iso
from crm_core.phones import normalise_or_none, owner_statement
from crm_core.search import PHONE_LIKE, like_pattern
from kernel.bus import Bus
from kernel.errors import NotFound, ValidationFailed
from kernel.events import CallEvent, CallInfo, CallState, Direction, Event, RecordingReady

RANK = {CallState.RINGING: 0, CallState.UP: 1, CallState.HELD: 1, CallState.TRANSFERRED: 1,
        CallState.ENDED: 2}
TOPICS = ("call.*", "recording.ready")
DISPOSITIONS = ("answered", "missed", "busy", "failed", "abandoned")
STATES = tuple(state.value for state in CallState)


def _moment(epoch: float | None) -> datetime | None:
    return None if not epoch else datetime.fromtimestamp(epoch, UTC)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def outside_party(info: CallInfo) -> str:
    """The number outside the building: the caller of an inbound call, the callee of an outbound."""
    if info.direction == Direction.INBOUND:
        return info.caller
    if info.direction == Direction.OUTBOUND:
        return info.callee
    return ""


def call_json(call: Call) -> dict[str, Any]:
    """A call as API.md shows it; `id` is the PBX's call id, the one live commands take."""
    return {
        "id": call.call_id, "direction": call.direction, "caller": call.caller,
        "callee": call.callee, "agent": call.agent, "agent_user_id": call.agent_user_id,
        "status": call.status, "disposition": call.disposition,
        "started_at": iso(call.started_at), "answered_at": iso(call.answered_at),
        "ended_at": iso(call.ended_at), "duration_s": call.duration_s,
        "recording_url": call.recording_url, "transcript_status": call.transcript_status,
        "contact_id": call.contact_id, "lead_id": call.lead_id, "queue": call.queue,
        "pbx": call.pbx,
    }


def _values(info: CallInfo, at: float) -> dict[str, Any]:
    """The columns a snapshot says something about (None: it says nothing)."""
    ended = info.state == CallState.ENDED
    return {
        "direction": info.direction.value, "caller": info.caller, "callee": info.callee,
        "agent": info.agent, "status": info.state.value,
        "disposition": info.disposition.value if ended and info.disposition else None,
        "started_at": _moment(info.started_at) or _moment(at),
        "answered_at": _moment(info.answered_at),
        "ended_at": (_moment(info.ended_at) or _moment(at)) if ended else None,
        "recording_url": info.recording, "queue": info.queue, "pbx": info.pbx,
    }


def _merge(call: Call, info: CallInfo, at: float) -> None:
    """Fold a snapshot into the row: newer states overwrite, older ones only fill gaps."""
    forward = RANK[info.state] >= RANK[CallState(call.status)]
    for key, value in _values(info, at).items():
        if value is None or value == "":
            continue
        current = getattr(call, key)
        if key == "started_at":
            setattr(call, key, min(_aware(current) or value, value))
        elif forward or current is None or current == "":
            setattr(call, key, value)
    if call.answered_at is not None and call.ended_at is not None:
        ended, answered = _aware(call.ended_at), _aware(call.answered_at)
        assert ended is not None and answered is not None
        call.duration_s = max(0.0, (ended - answered).total_seconds())


class CallLog:
    """The bus subscriber that keeps `calls` in step with the PBX.

    `create_leads` names the directions for which an unknown outside number
    becomes a lead (the `leads_on_inbound` / `leads_on_outbound` settings).
    """

    def __init__(self, db: Database, *, region: str,
                 create_leads: Iterable[Direction] = ()) -> None:
        self.db = db
        self.region = region
        self.create_leads = frozenset(create_leads)

    def subscribe(self, bus: Bus) -> None:
        bus.subscribe("crm.calllog", self.on_call_event, TOPICS)

    async def on_call_event(self, event: Event) -> None:
        if not isinstance(event, CallEvent):
            return
        info = event.call
        if isinstance(event, RecordingReady) and event.path and not info.recording:
            info = _with_recording(info, event.path)
        await self.record(info, at=event.at)

    async def record(self, info: CallInfo, *, at: float) -> int:
        """Upsert the call; returns its row id. Safe to call any number of times.

        A call whose number nobody owns gets its lead after the upsert (the
        lead's own transaction cannot run inside this one on SQLite), and only
        then: a call already linked to its contact or lead costs nothing more.
        """
        number = normalise_or_none(outside_party(info), self.region)
        row_id, linked = await self._upsert(info, at, number)
        if not linked and number is not None and info.direction in self.create_leads:
            await lead_for_unknown(self.db, number, dialled=_dialled(info),
                                   direction=info.direction, region=self.region)
            await self._upsert(info, at, number)
        return row_id

    async def _upsert(self, info: CallInfo, at: float, number: str | None) -> tuple[int, bool]:
        async with self.db.engine.begin() as conn:
            return await conn.run_sync(partial(_upsert_call, info=info, at=at, number=number))


def _upsert_call(
    conn: Connection, *, info: CallInfo, at: float, number: str | None
) -> tuple[int, bool]:
    """One call-log write: the row id, and whether the call is linked to a contact or lead.

    Core on one connection, prebuilt where it can be: this is the hottest writer, and
    the ORM's unit of work cost more than the statements themselves.
    """
    conn.execute(_insert_ignore(conn.dialect.name, info, at))
    row = conn.execute(_LOCKED, {"call_id": info.call_id}).mappings().one()
    call = cast(Call, SimpleNamespace(**row))  # `_merge` reads and sets the columns
    named = call.agent if call.agent_user_id is not None else None
    _merge(call, info, at)
    call.outside_number = call.outside_number or number
    _link(conn, call, named)
    changed = {key: value for key, value in vars(call).items() if row[key] != value}
    if changed:
        conn.execute(update(_CALLS).where(_CALLS.c.id == row["id"]).values(changed))
    return row["id"], call.contact_id is not None or call.lead_id is not None


def _dialled(info: CallInfo) -> str:
    return info.callee if info.direction == Direction.INBOUND else info.caller


def _with_recording(info: CallInfo, path: str) -> CallInfo:
    return replace(info, recording=path)


def _insert_ignore(dialect: str, info: CallInfo, at: float) -> Any:
    """INSERT ... ON CONFLICT (call_id) DO NOTHING in the dialect at hand."""
    values = {k: v for k, v in _values(info, at).items() if v is not None}
    values["call_id"] = info.call_id
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(_CALLS).values(**values).on_conflict_do_nothing(index_elements=["call_id"])


def _link(conn: Connection, call: Call, named: str | None) -> None:
    """Name the agent's user (again after a transfer: `named` is whom we last named)
    and the contact or lead of the outside number, once known."""
    if call.agent and call.agent != named:
        call.agent_user_id = conn.scalar(_USER_OF_EXTENSION, {"extension": call.agent})
    if call.outside_number and call.contact_id is None and call.lead_id is None:
        query, params = owner_statement(call.outside_number, None)
        owner = conn.execute(query, params).first()
        if owner is not None:
            call.contact_id, call.lead_id = owner.contact_id, owner.lead_id


_CALLS = Call.metadata.tables["calls"]
_LOCKED = select(_CALLS).where(_CALLS.c.call_id == bindparam("call_id")).with_for_update()
_USER_OF_EXTENSION = select(User.id).where(User.extension == bindparam("extension"))


def _since(value: datetime | str | None, field: str = "since") -> datetime | None:
    if value is None or isinstance(value, datetime):
        return _aware(value)
    try:
        return _aware(datetime.fromisoformat(value))
    except ValueError as exc:
        raise ValidationFailed(f"{field} is not an ISO 8601 time", field=field) from exc


def _filters(region: str, *, direction: str | None, status: str | None, agent: str | None,
             since: datetime | str | None, q: str | None) -> list[Any]:
    where: list[Any] = []
    if direction:
        if direction not in {d.value for d in Direction}:
            raise ValidationFailed("direction is in, out or internal", field="direction")
        where.append(Call.direction == direction)
    if status in DISPOSITIONS:
        where.append(Call.disposition == status)
    elif status in STATES:
        where.append(Call.status == status)
    elif status:
        raise ValidationFailed("status is a disposition or a call state", field="status")
    if agent:
        where.append(Call.agent == agent)
    moment = _since(since)
    if moment is not None:
        where.append(Call.started_at >= moment)
    if q and q.strip():
        where.append(_matching(q.strip(), region))
    return where


def _matching(q: str, region: str) -> ColumnElement[bool]:
    """An outside number in any written form is one index probe; anything else (an
    extension, part of a number) is looked for in the caller and callee as dialled."""
    number = normalise_or_none(q, region) if PHONE_LIKE.fullmatch(q) else None
    if number is not None:
        return Call.outside_number == number
    pattern = like_pattern(q)
    return or_(Call.caller.like(pattern, escape="\\"), Call.callee.like(pattern, escape="\\"))


async def list_calls(
    db: Database, viewer: Viewer, *, region: str, direction: str | None = None,
    status: str | None = None, agent: str | None = None, since: datetime | str | None = None,
    q: str | None = None, cursor: str | None = None, limit: int | None = None,
) -> dict[str, Any]:
    """`{items, next}` newest first, only the calls `viewer` may see."""
    size = access.page_limit(limit)
    query = select(Call).where(call_visible(viewer), *_filters(
        region, direction=direction, status=status, agent=agent, since=since, q=q))
    after = access.decode_cursor(cursor, str, int)
    if after is not None:
        moment = _since(after[0], field="cursor")
        query = query.where(or_(Call.started_at < moment,
                                and_(Call.started_at == moment, Call.id < after[1])))
    query = query.order_by(Call.started_at.desc(), Call.id.desc()).limit(size + 1)
    async with db.session() as session:
        found = list(await session.scalars(query))
    nxt = None
    if len(found) > size:
        last = found[size - 1]
        nxt = access.encode_cursor([iso(last.started_at), last.id])
    return {"items": [call_json(c) for c in found[:size]], "next": nxt}


async def get_call(db: Database, viewer: Viewer, call_id: str) -> dict[str, Any]:
    """One call by the PBX's id, if `viewer` may see it."""
    async with db.session() as session:
        call = await session.scalar(
            select(Call).where(Call.call_id == call_id, call_visible(viewer))
        )
    if call is None:
        raise NotFound(f"no call {call_id}", field="id")
    return call_json(call)


TRANSCRIPT_STATUSES = ("queued", "running", "done", "failed")


async def mark_transcript(db: Database, call_id: str, status: str) -> bool:
    """Record how the speech pool is getting on with a call's recording; False if no such call.

    The speech pool runs above the CRM and says so through this one call, so
    the call log and the timelines show `transcript_status` without knowing
    anything about speech.
    """
    if status not in TRANSCRIPT_STATUSES:
        raise ValidationFailed(f"transcript status is one of {', '.join(TRANSCRIPT_STATUSES)}",
                               field="transcript_status")
    async with db.transaction() as session:
        done = await session.execute(
            update(Call).where(Call.call_id == call_id).values(transcript_status=status)
            .returning(Call.id)
        )
        return done.first() is not None
