import logging
import subprocess
import sys
from pathlib import Path

import pytest

from config import Secret, Settings, SettingsError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "centralita.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path | None = None, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(SettingsError) as err:
        load_settings(path, environ or {})
    return err.value.problems


def test_defaults_without_file_or_environment() -> None:
    settings = load_settings(None, {})
    assert settings == Settings()
    assert settings.database_url == "sqlite+aiosqlite:///centralita.db"
    assert settings.default_region == "ES"
    assert settings.ami_host is None


def test_file_sections_and_environment_override(tmp_path: Path) -> None:
    path = write(tmp_path, """
default_region = "GB"
[ami]
host = "pbx.example"
port = 5039
secret = "from-file"
[http]
port = 9000
""")
    settings = load_settings(path, {"CENTRALITA_AMI_PORT": "6000", "CENTRALITA_LOG_JSON": "yes"})
    assert (settings.ami_host, settings.ami_port, settings.http_port) == ("pbx.example", 6000, 9000)
    assert settings.default_region == "GB"
    assert settings.ami_secret == Secret("from-file")
    assert settings.log_json is True


def test_every_problem_is_named_by_its_key(tmp_path: Path) -> None:
    path = write(tmp_path, """
colour = "blue"
[ami]
port = "five"
hostname = "x"
[database]
url = "mysql://nope"
[http]
port = 70000
""")
    environ = {"CENTRALITA_DEFAULT_REGION": "XX", "CENTRALITA_LOG_JSON": "maybe"}
    problems = problems_of(path, environ)
    assert problems == [
        f"{path}: colour: unknown key",
        f"{path}: ami.hostname: unknown key",
        f"{path}: database.url: must start with sqlite+aiosqlite:// or postgresql+asyncpg:// "
        "(got 'mysql://nope')",
        f"{path}: ami.port: expected an integer, got 'five'",
        f"{path}: http.port: must be between 0 and 65535 (got 70000)",
        "environment variable CENTRALITA_DEFAULT_REGION: must be a two-letter region "
        "phonenumbers knows (ES, GB, US ...) (got 'XX')",
        "environment variable CENTRALITA_LOG_JSON: expected true or false, got 'maybe'",
    ]


def test_unreadable_file_is_one_clear_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "[ami\nhost=")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: not valid TOML:")
    assert problems_of(tmp_path / "missing.toml") == [f"{tmp_path / 'missing.toml'}: no such file"]


def test_secrets_never_show_in_repr_summary_or_errors(tmp_path: Path) -> None:
    settings = load_settings(None, {
        "CENTRALITA_AMI_SECRET": "hunter2-ami",
        "CENTRALITA_TWILIO_AUTH_TOKEN": "hunter2-twilio",
        "CENTRALITA_METRICS_TOKEN": "hunter2-metrics",
    })
    shown = repr(settings) + str(settings.summary()) + f"{settings.ami_secret}"
    assert "hunter2" not in shown
    assert settings.ami_secret is not None and settings.ami_secret.reveal() == "hunter2-ami"
    path = write(tmp_path, "[twilio]\nauth_token = 12345\n")
    assert "12345" not in "".join(problems_of(path))


def test_serve_logs_settings_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(None, {"CENTRALITA_AMI_SECRET": "hunter2-ami"})
    with caplog.at_level(logging.INFO):
        logging.getLogger("centralita").info("settings: %s", settings.summary())
    assert "hunter2" not in caplog.text
    assert "'ami_secret': '********'" in caplog.text


def test_bad_file_stops_start_up_with_exit_status_2(tmp_path: Path) -> None:
    path = write(tmp_path, 'oops = 1\n[http]\nport = "x"\n[database]\nurl = "ftp://db"\n')
    result = subprocess.run(
        [sys.executable, "-m", "centralita.cli", "--config", str(path), "serve"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"centralita: bad setting: {path}: oops: unknown key",
        f"centralita: bad setting: {path}: database.url: must start with sqlite+aiosqlite:// "
        "or postgresql+asyncpg:// (got 'ftp://db')",
        f"centralita: bad setting: {path}: http.port: expected an integer, got 'x'",
    ]


def test_the_example_file_documents_every_key_and_loads() -> None:
    import dataclasses
    import tomllib

    from config.settings import place

    example = Path(__file__).parents[2] / "config" / "centralita.example.toml"
    text = example.read_text(encoding="utf-8")
    settings = load_settings(example, {})
    assert settings.ami_host == "127.0.0.1"
    data = tomllib.loads(text.replace("# api_base", "api_base").replace("# url", "url"))
    for f in dataclasses.fields(Settings):
        section, key = place(f.name)
        where = data.get(section, {}) if section else data
        assert key in where, f"{f.name} is not documented in the example"
