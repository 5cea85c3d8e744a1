"""The `centralita` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from centralita import logs
from centralita.app import build_app
from config import Settings, SettingsError, load_settings

log = logging.getLogger("centralita")
EXIT_BAD_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = _settings(args.config)
    except SettingsError as err:
        for problem in err.problems:
            print(f"centralita: bad setting: {problem}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    logs.configure(settings.log_level, settings.log_json)
    result: int = args.run(args, settings)
    return result


def _settings(path: str | None) -> Settings:
    if path is None and Path("centralita.toml").exists():
        path = "centralita.toml"
    return load_settings(path)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="centralita", description=__doc__)
    parser.add_argument("--config", help="settings file (default: ./centralita.toml if present)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the daemon")
    serve.set_defaults(run=_serve)
    migrate = sub.add_parser("migrate", help="bring the database schema up to date")
    migrate.set_defaults(run=_migrate)
    return parser


def _serve(_args: argparse.Namespace, settings: Settings) -> int:
    log.info("settings: %s", settings.summary())
    app = build_app(settings)
    url = f"http://{settings.http_host}:{settings.http_port}/"
    # run_app calls `print` once the socket is bound, so the URL is only shown when it works.
    web.run_app(
        app, host=settings.http_host, port=settings.http_port, access_log=None,
        print=lambda _banner: print(f"Centralita is serving at {url}", flush=True),
    )
    return 0


def _migrate(_args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.db import migrate

    asyncio.run(migrate(settings.database_url))
    print("database is up to date", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
