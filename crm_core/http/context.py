"""What every CRM route needs from its request: the database, the viewer, the region."""

from __future__ import annotations

from aiohttp import web

from config import Settings
from crm_core.auth import PRINCIPAL, Principal, database
from crm_core.db import Database

SETTINGS = web.AppKey("crm_settings", Settings)


def db_of(request: web.Request) -> Database:
    return database(request.config_dict)


def viewer_of(request: web.Request) -> Principal:
    """The signed-in user (set by `require`); the services' `Viewer`."""
    return request[PRINCIPAL]


def region_of(request: web.Request) -> str:
    """The installation's default phone region: numbers typed without a prefix live there."""
    settings = request.config_dict.get(SETTINGS)
    return settings.default_region if settings is not None else "ES"
