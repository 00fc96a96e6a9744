"""What keeps postwatch from starting is said in one line, the same for the dashboard and for
``serve``, before the terminal is taken over: the real console script in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
POSTWATCH = Path(sys.executable).with_name("postwatch")

# The dashboard (no command) and the headless listener, for the same problem.
COMMANDS = {"dashboard": [], "serve": ["serve"]}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """``postwatch ARGS`` with this checkout's code; stdin is not a terminal, so a dashboard
    that got as far as starting would show it in its output."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [str(POSTWATCH), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
        timeout=60,  # a hang fails here
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line of output, checked to be click's "Error: …" and exit code 1."""
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    lines = output.splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("Error: "), output
    return lines[0].removeprefix("Error: ")


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("command", COMMANDS)
def test_a_bad_config_file_is_one_line_with_its_line_number(tmp_path: Path, command: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('conversion_types = ["Lead"]\n\n[listener]\nport = "eighty"\n')
    line = one_line(
        run(*COMMANDS[command], "--db", str(tmp_path / "p.db"), "--config", str(config))
    )
    assert line.startswith(f"{config}: line 4: ")
    assert "port" in line


def test_the_dashboard_and_serve_say_the_same_about_a_config_file(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[[campaigns]\nkey = 1\n")
    lines = {
        command: one_line(run(*args, "--db", str(tmp_path / "p.db"), "--config", str(config)))
        for command, args in COMMANDS.items()
    }
    assert lines["dashboard"] == lines["serve"]
    assert lines["dashboard"].startswith(f"{config}: line 1: ")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_database_under_a_regular_file_is_one_line(tmp_path: Path, command: str) -> None:
    (tmp_path / "file").write_text("not a folder")
    db = tmp_path / "file" / "p.db"
    line = one_line(run(*COMMANDS[command], "--db", str(db), "--port", "0"))
    assert line.startswith(f"cannot open the database {db}: ")
    assert "listen" not in line


@pytest.mark.parametrize("command", COMMANDS)
def test_a_file_that_is_not_a_database_is_one_line(tmp_path: Path, command: str) -> None:
    db = tmp_path / "notes.db"
    db.write_text("these are my notes, not a database\n" * 20)
    line = one_line(run(*COMMANDS[command], "--db", str(db), "--port", "0"))
    assert line.startswith(f"cannot open the database {db}: file is not a database")
    assert "listen" not in line


def test_the_same_database_problem_is_said_the_same_by_both(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    db = tmp_path / "file" / "p.db"
    lines = {
        command: one_line(run(*args, "--db", str(db), "--port", "0"))
        for command, args in COMMANDS.items()
    }
    assert lines["dashboard"] == lines["serve"]


def test_a_port_in_use_says_what_to_do(tmp_path: Path, busy_port: int) -> None:
    db = tmp_path / "p.db"
    line = one_line(run("--db", str(db), "--port", str(busy_port)))
    assert line.startswith(f"cannot listen on 127.0.0.1:{busy_port}: address already in use;")
    assert "--port 0" in line
    assert f"postwatch dash --db {db}" in line
    assert one_line(run("serve", "--db", str(db), "--port", str(busy_port))) == line


async def test_a_dashboard_whose_listener_cannot_bind_says_what_to_do(
    tmp_path: Path, busy_port: int
) -> None:
    from listener.serve import ListenError
    from tui.app import PostwatchApp
    from tui.context import DashOptions, open_dash

    options = DashOptions(db=tmp_path / "p.db", host="127.0.0.1", port=busy_port)
    with pytest.raises(ListenError) as raised:
        await open_dash(options)
    assert "--port 0" in str(raised.value) and "postwatch dash --db" in str(raised.value)
    app = PostwatchApp(options)  # opened by the app itself: it stops with that line
    async with app.run_test() as pilot:
        await pilot.pause()
    assert app.return_code == 1
    assert app.dash is None


def test_the_dashboard_refuses_an_unknown_binding_id_in_its_config(tmp_path: Path) -> None:
    config = tmp_path / "keys.toml"
    config.write_text(
        'conversion_types = ["Lead"]\n\n[keys]\n"live.copy" = "Y"\nlive.folow = "F"\n'
    )
    db = tmp_path / "p.db"
    line = one_line(run("--db", str(db), "--config", str(config), "--port", "0"))
    assert line.startswith(
        f"{config}: line 5: [keys]: there is no binding with the id 'live.folow'"
    )
    assert "did you mean 'live.follow'" in line
    assert not db.exists(), "refused before anything was opened"


def test_a_database_that_refuses_writes_at_start_is_a_database_problem(tmp_path: Path) -> None:
    # A real database that opens but refuses the first write (as a read-only one does): the
    # sample workspace cannot be stored. That is said as a database problem, not a listener's.
    import sqlite3

    from store.schema import migrate

    db = tmp_path / "p.db"
    conn = sqlite3.connect(db, isolation_level=None)
    migrate(conn)
    conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON campaigns "
        "BEGIN SELECT RAISE(ABORT, 'attempt to write a readonly database'); END"
    )
    conn.close()
    line = one_line(run("--db", str(db), "--port", "0"))
    assert line.startswith(f"cannot open the database {db}: attempt to write a readonly database")
    assert "listen" not in line
