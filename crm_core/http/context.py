"""What every CRM route needs from its request: the database, the viewer, the region."""

from __future__ import annotations

from aiohttp import web

from config import Settings
from crm_core.auth import PRINCIPAL, Principal, database
from crm_core.db import Database
from crm_core.phones import PhoneDirectory

SETTINGS = web.AppKey("crm_settings", Settings)
PHONES = web.AppKey("phone_directory", PhoneDirectory)


def db_of(request: web.Request) -> Database:
    return database(request.config_dict)


def viewer_of(request: web.Request) -> Principal:
    """The signed-in user (set by `require`); the services' `Viewer`."""
    return request[PRINCIPAL]


def region_of(request: web.Request) -> str:
    """The installation's default phone region: numbers typed without a prefix live there."""
    settings = request.config_dict.get(SETTINGS)
    return settings.default_region if settings is not None else "ES"


def phones_of(request: web.Request) -> PhoneDirectory | None:
    """The fast owner-of-a-number lookup, once the database is up."""
    return request.config_dict.get(PHONES)
