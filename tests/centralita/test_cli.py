import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text


def run_cli(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CENTRALITA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"}
    return subprocess.run(
        [sys.executable, "-m", "centralita.cli", *args], input=stdin, env=env,
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )


def users(tmp_path: Path) -> list[tuple[str, str, str | None, str]]:
    engine = create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT username, role, extension, password_hash FROM users"))
        found = [tuple(r) for r in rows]
    engine.dispose()
    return found


def test_user_add_reads_the_password_from_stdin_and_hashes_it(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "user", "add", "ana", "--role", "agent", "--extension", "1001",
                     "--password-stdin", stdin="s3cret-pass\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("added agent ana (id ")
    [(username, role, extension, password_hash)] = users(tmp_path)
    assert (username, role, extension) == ("ana", "agent", "1001")
    assert password_hash.startswith("$argon2") and "s3cret-pass" not in password_hash
    assert "s3cret-pass" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--role", "agent"], "", "no password on standard input"),
        (["--role", "wizard"], "pw-long-enough\n", "invalid choice: 'wizard'"),
    ],
)
def test_user_add_refuses_clearly(
    tmp_path: Path, args: list[str], stdin: str, message: str
) -> None:
    result = run_cli(tmp_path, "user", "add", "bob", *args, "--password-stdin", stdin=stdin)
    assert result.returncode != 0
    assert message in result.stderr


def test_user_add_twice_names_the_clash(tmp_path: Path) -> None:
    first = run_cli(tmp_path, "user", "add", "ana", "--role", "agent", "--password-stdin",
                    stdin="s3cret-pass\n")
    assert first.returncode == 0, first.stderr
    again = run_cli(tmp_path, "user", "add", "ana", "--role", "admin", "--password-stdin",
                    stdin="s3cret-pass\n")
    assert again.returncode == 1
    assert "username" in again.stderr
