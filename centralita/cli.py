"""The `centralita` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
    demo = sub.add_parser("demo", help="serve with the AMI simulator and demo data")
    demo.add_argument("--call-every", type=float, default=10.0, metavar="SECONDS",
                      help="how often a simulated call rings an agent")
    demo.set_defaults(run=_demo)
    simulate = sub.add_parser("simulate", help="run the AMI simulator alone (real AMI over TCP)")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=5038)
    simulate.add_argument("--speed", type=float, default=1.0, help="time factor for every delay")
    simulate.add_argument("--calls-every", type=float, default=None, metavar="SECONDS",
                          help="place a demo call every N seconds")
    simulate.set_defaults(run=_simulate)
    user = sub.add_parser("user", help="manage users").add_subparsers(dest="user", required=True)
    add = user.add_parser("add", help="add a user; the password is read from standard input")
    add.add_argument("name", help="the login name")
    add.add_argument("--role", required=True, choices=("agent", "supervisor", "admin"))
    add.add_argument("--extension", help="the user's PBX extension, e.g. 1001")
    add.add_argument("--full-name", default="", help="the name teammates see")
    add.add_argument("--password-stdin", action="store_true", required=True,
                     help="read the password from standard input (never from the command line)")
    add.set_defaults(run=_user_add)
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


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from centralita.demo import serve_demo

    asyncio.run(serve_demo(settings, call_every_s=args.call_every))
    return 0


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from pbx_bridge.simulator.server import run_simulator

    if settings.ami_secret is None:
        print("centralita: set CENTRALITA_AMI_SECRET: the simulator checks the Login secret",
              file=sys.stderr)
        return EXIT_BAD_CONFIG

    async def run() -> None:
        secret = settings.ami_secret.reveal() if settings.ami_secret else ""
        sim = await run_simulator(args.host, args.port, settings.ami_username, secret,
                                  speed=args.speed, demo_calls_every=args.calls_every)
        print(f"AMI simulator listening on {sim.host}:{sim.port} "
              f"(user {settings.ami_username})", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await sim.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


def _migrate(_args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.db import migrate

    asyncio.run(migrate(settings.database_url))
    print("database is up to date", flush=True)
    return 0


def _user_add(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.db import Database, is_sqlite, migrate
    from crm_core.users import add_user
    from kernel.errors import CentralitaError

    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("centralita: no password on standard input", file=sys.stderr)
        return 1

    async def run() -> int:
        if is_sqlite(settings.database_url):
            await migrate(settings.database_url)
        db = Database(settings.database_url)
        try:
            user = await add_user(db, args.name, args.role, password,
                                  extension=args.extension, name=args.full_name)
        except CentralitaError as err:
            where = f" ({err.field})" if err.field else ""
            print(f"centralita: cannot add user{where}: {err.message}", file=sys.stderr)
            return 1
        finally:
            await db.close()
        print(f"added {user.role} {user.username} (id {user.id})", flush=True)
        return 0

    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
