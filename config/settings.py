"""Typed settings from `centralita.toml` and `CENTRALITA_*` environment variables.

Each field's TOML place is derived from its name: `ami_host` lives at
`[ami] host` and in `CENTRALITA_AMI_HOST`; a name whose prefix is not a
section (`default_region`, `public_url`) is a top-level key. The environment
wins over the file. Every problem is collected, so one start-up names them all.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import phonenumbers

SECTIONS = ("database", "ami", "http", "twilio", "speech", "log", "leads", "auth", "redis")
ENV_PREFIX = "CENTRALITA_"


class Secret:
    """A string that never shows itself in repr, str or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


class SettingsError(Exception):
    """Raised with every problem found, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _check_db_url(value: str) -> str | None:
    scheme = urlsplit(value).scheme
    if scheme not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        return "must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
    return None


def _check_http_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "must be an absolute http:// or https:// URL"
    return None


def _check_redis_url(value: str) -> str | None:
    if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
        return "must be a redis:// URL"
    return None


def _check_port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be between 0 and 65535"


def _check_region(value: str) -> str | None:
    if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
        return "must be a two-letter region phonenumbers knows (ES, GB, US ...)"
    return None


def _check_level(value: str) -> str | None:
    return None if value.upper() in ("DEBUG", "INFO", "WARNING", "ERROR") else (
        "must be DEBUG, INFO, WARNING or ERROR"
    )


def _opt(check: Callable[[Any], str | None] | None = None, doc: str = "") -> dict[str, Any]:
    return {"check": check, "doc": doc}


@dataclass(frozen=True)
class Settings:
    database_url: str = field(
        default="sqlite+aiosqlite:///centralita.db",
        metadata=_opt(_check_db_url, "SQLAlchemy async URL"),
    )
    ami_host: str | None = field(default=None, metadata=_opt(doc="no host: no Asterisk link"))
    ami_port: int = field(default=5038, metadata=_opt(_check_port))
    ami_username: str = "centralita"
    ami_secret: Secret | None = None
    ami_trunk_patterns: tuple[str, ...] = field(
        default=(), metadata=_opt(doc="channel-name globs that are outside lines (PJSIP/trunk-*)")
    )
    ami_originate_channel: str = field(
        default="PJSIP/{extension}",
        metadata=_opt(doc="dial string of an agent's or supervisor's phone; {extension}"),
    )
    ami_originate_context: str = field(
        default="from-internal", metadata=_opt(doc="where a click-to-call dials the number")
    )
    ami_dial_channel: str = field(
        default="PJSIP/{number}@trunk",
        metadata=_opt(doc="dial string of a customer the dialer calls first; {number}"),
    )
    ami_transfer_context: str = "from-internal"
    ami_hold_context: str = field(
        default="centralita-hold", metadata=_opt(doc="plays music on hold to the held customer")
    )
    ami_park_context: str = field(
        default="centralita-wait", metadata=_opt(doc="where the agent waits during a hold")
    )
    ami_recording_dir: str = field(
        default="/var/spool/asterisk/monitor", metadata=_opt(doc="on the Asterisk host")
    )
    http_host: str = "127.0.0.1"
    http_port: int = field(default=8080, metadata=_opt(_check_port))
    public_url: str | None = field(default=None, metadata=_opt(_check_http_url))
    allowed_origins: tuple[str, ...] = field(
        default=(), metadata=_opt(doc="extra origins allowed to open the agent WebSocket")
    )
    twilio_account_sid: str | None = None
    twilio_auth_token: Secret | None = None
    twilio_api_key: str | None = None
    twilio_api_secret: Secret | None = None
    twilio_twiml_app_sid: str | None = None
    twilio_api_base: str | None = field(
        default=None, metadata=_opt(_check_http_url, "override Twilio's REST host (tests)")
    )
    default_region: str = field(default="ES", metadata=_opt(_check_region))
    dial_national: bool = field(
        default=False, metadata=_opt(doc="agents may dial without the country prefix (T6)")
    )
    speech_model: str | None = None
    leads_on_inbound: bool = True
    leads_on_outbound: bool = True
    leads_on_sms: bool = True
    auth_session_hours: int = 12
    auth_secure_cookies: bool = False
    redis_url: str | None = field(default=None, metadata=_opt(_check_redis_url))
    metrics_token: Secret | None = None
    log_json: bool = False
    log_level: str = field(default="INFO", metadata=_opt(_check_level))

    def summary(self) -> dict[str, Any]:
        """Every setting with secrets masked: safe to print or log."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = "********" if isinstance(value, Secret) else value
        return out


def place(name: str) -> tuple[str | None, str]:
    """The (section, key) a field lives at in the TOML file."""
    head, _, rest = name.partition("_")
    return (head, rest) if head in SECTIONS and rest else (None, name)


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the file (if any) and the environment; raise SettingsError naming each problem."""
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    raw: dict[str, tuple[Any, str]] = {}
    if path is not None:
        raw.update(_read_toml(Path(path), problems))
    for f in dataclasses.fields(Settings):
        env = env_name(f.name)
        if env in environ:
            raw[f.name] = (environ[env], f"environment variable {env}")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        if f.name not in raw:
            continue
        value, where = raw[f.name]
        try:
            converted = _convert(value, str(f.type), from_env=where.startswith("env"))
        except ValueError as err:
            problems.append(f"{where}: {err}")
            continue
        check = f.metadata.get("check")
        message = check(converted) if check and converted is not None else None
        if message:
            problems.append(f"{where}: {message} (got {_shown(f.type, value)!r})")
            continue
        values[f.name] = converted
    if problems:
        raise SettingsError(problems)
    return Settings(**values)


def _read_toml(path: Path, problems: list[str]) -> dict[str, tuple[Any, str]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"{path}: no such file")
        return {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        problems.append(f"{path}: not valid TOML: {err}")
        return {}
    known = {place(f.name): f.name for f in dataclasses.fields(Settings)}
    found: dict[str, tuple[Any, str]] = {}
    for key, value in data.items():
        if isinstance(value, dict) and key in SECTIONS:
            for sub, subvalue in value.items():
                _take(known, found, problems, path, (key, sub), subvalue)
        else:
            _take(known, found, problems, path, (None, key), value)
    return found


def _take(
    known: dict[tuple[str | None, str], str],
    found: dict[str, tuple[Any, str]],
    problems: list[str],
    path: Path,
    where: tuple[str | None, str],
    value: Any,
) -> None:
    dotted = ".".join(p for p in where if p)
    name = known.get(where)
    if name is None:
        problems.append(f"{path}: {dotted}: unknown key")
    else:
        found[name] = (value, f"{path}: {dotted}")


def _convert(value: Any, type_name: str, *, from_env: bool) -> Any:
    """Turn a TOML or environment value into the field's type, or say why not."""
    if type_name.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"expected an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"expected an integer, got {value!r}") from None
    if type_name.startswith("bool"):
        if isinstance(value, bool):
            return value
        if from_env and isinstance(value, str) and value.lower() in _BOOLS:
            return _BOOLS[value.lower()]
        raise ValueError(f"expected true or false, got {value!r}")
    if type_name.startswith("tuple"):
        if from_env and isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ValueError(f"expected a list of strings, got {value!r}")
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    if type_name.startswith("Secret"):
        return Secret(value)
    return value


def _shown(type_: Any, value: Any) -> Any:
    return "********" if "Secret" in str(type_) else value


_BOOLS = {"1": True, "true": True, "yes": True, "on": True,
          "0": False, "false": False, "no": False, "off": False}
