"""The Origin guard for WebSockets: one job, checked before the upgrade.

Browsers send cookies with a cross-site WebSocket handshake and aiohttp does
not look at `Origin`, so without this any page on the web could open an
agent's socket with the agent's session (cross-site WebSocket hijacking).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp import web

from kernel.errors import Forbidden


def normalise_origin(value: str) -> str:
    """`scheme://host[:port]` in lower case, default ports dropped; ValueError if not one."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) origin: {value!r}")
    default = 443 if parts.scheme == "https" else 80
    port = parts.port
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    suffix = f":{port}" if port and port != default else ""
    return f"{parts.scheme}://{host}{suffix}"


class OriginGuard:
    """Allows the server's own origin (public URL or the request's Host) and a list."""

    def __init__(self, public_url: str | None, allowed: Iterable[str] = ()) -> None:
        origins = [normalise_origin(o) for o in allowed]
        if public_url:
            origins.append(normalise_origin(public_url))
        self.allowed = frozenset(origins)

    def permits(self, request: web.BaseRequest) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:
            # Not a browser (a script or a bench): it has no ambient cookies to abuse,
            # and still needs a valid session or token.
            return True
        try:
            wanted = normalise_origin(origin)
        except ValueError:
            return False
        if wanted in self.allowed:
            return True
        # A browser sets Host to the server it dials, so Origin == Host is same-origin.
        return wanted == normalise_origin(f"{request.scheme}://{request.host}")

    def check(self, request: web.BaseRequest) -> None:
        """Raise 403 unless the request's Origin is allowed."""
        if not self.permits(request):
            raise Forbidden("this origin may not open the agent socket", field="Origin")
