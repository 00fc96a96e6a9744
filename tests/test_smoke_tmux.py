"""The real ``postwatch`` command in a real terminal (tmux, 80x24): a postback sent with curl
shows up with its click id and the reason a postback did not fire."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[1]


def _postwatch() -> str:
    """The real console script, run with this checkout's code (the tmux server does not pass
    the test's environment on to its sessions)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return f"env PYTHONPATH='{path}' '{Path(sys.executable).with_name('postwatch')}'"


def setup_module() -> None:
    missing = [tool for tool in ("tmux", "curl") if shutil.which(tool) is None]
    assert not missing, f"this test drives a real terminal: install {' and '.join(missing)}"


def _tmux(*args: str) -> str:
    return subprocess.run(
        ["tmux", *args], check=True, capture_output=True, text=True, timeout=10
    ).stdout


def _curl(url: str) -> str:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "5", url],
        check=True,
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout


@pytest.fixture
def session(tmp_path: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    name = f"postwatch-smoke-{os.getpid()}"
    command = f"{_postwatch()} --db '{tmp_path / 'postwatch.db'}' --port {port}"
    _tmux("new-session", "-d", "-s", name, "-x", "80", "-y", "24", command)
    try:
        yield name, port
    finally:
        subprocess.run(["tmux", "send-keys", "-t", name, "q"], check=False, timeout=10)
        time.sleep(0.3)
        subprocess.run(["tmux", "kill-session", "-t", name], check=False, timeout=10)


def _screen_until(name: str, *texts: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        screen = _tmux("capture-pane", "-p", "-t", name)
        if all(text in screen for text in texts):
            return screen
        if time.monotonic() > deadline:
            raise AssertionError(f"{texts} not on the screen:\n{screen}")
        time.sleep(0.1)


def test_postwatch_shows_a_postback_and_why_in_a_real_terminal(
    session: tuple[str, int],
) -> None:
    name, port = session
    base = f"http://127.0.0.1:{port}"
    screen = _screen_until(name, "No conversions yet", f"curl -s '{base}/click/sample")
    assert f"127.0.0.1:{port}" in screen.splitlines()[0]
    clickid = json.loads(_curl(f"{base}/click/sample?ref_id=ext-smoke"))["clickid"]
    answer = json.loads(_curl(f"{base}/postback?clickid={clickid}&type=Deposit&status=2&sum=50"))
    assert answer["conversion_id"] == 1
    screen = _screen_until(
        name, f"click {clickid}", "FILTERED paid deposits", "status 'pending' is not one of"
    )
    assert "pending (2)" in screen


def test_on_all_addresses_the_header_and_the_token_in_a_real_terminal(tmp_path: Path) -> None:
    name = f"postwatch-smoke-all-{os.getpid()}"
    postwatch = Path(sys.executable).with_name("postwatch")
    db = tmp_path / "postwatch.db"
    command = f"{_postwatch()} --db '{db}' --host 0.0.0.0 --port 0"
    _tmux("new-session", "-d", "-s", name, "-x", "80", "-y", "24", command)
    try:
        screen = _screen_until(name, "(all addresses)", "New API token, shown only now")
        first, second = screen.splitlines()[:2]
        assert "● 0.0.0.0:" in first
        assert second.rstrip().endswith("token: postwatch token")
        token = subprocess.run(
            [str(postwatch), "token", "--db", str(db)],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
        assert token and token in screen  # shown in the notification, as stored
        assert token not in first + second
    finally:
        subprocess.run(["tmux", "send-keys", "-t", name, "q"], check=False, timeout=10)
        time.sleep(0.3)
        subprocess.run(["tmux", "kill-session", "-t", name], check=False, timeout=10)
