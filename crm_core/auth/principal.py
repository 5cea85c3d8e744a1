"""Who is asking: the signed-in user as every route and WebSocket sees them."""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("agent", "supervisor", "admin")
"""Every role, least to most powerful."""

PUBLIC = "public"
"""The pseudo-role of routes anyone may call (login, health, signed webhooks)."""


@dataclass(frozen=True)
class Principal:
    """A signed-in user; satisfies the CRM's `Viewer` protocol (user_id, role)."""

    user_id: int
    username: str
    name: str
    role: str
    extension: str | None
