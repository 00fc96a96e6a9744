"""A failed test that leaves a database open must not hang the run: pytest reports and exits
(see tests/conftest.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Kept referenced (as a dashboard whose heap is frozen keeps its store), the store is never
# collected, so its aiosqlite thread never stops.
LEAVES_A_STORE_OPEN = """
from store.db import Store

KEPT = []


async def test_fails_with_the_database_open(tmp_path):
    KEPT.append(await Store(tmp_path / "pw.db").open())
    assert False, "failed on purpose"
"""


def test_a_failed_test_with_an_open_database_ends_the_run(tmp_path: Path) -> None:
    test_file = tmp_path / "test_open_store.py"
    test_file.write_text(LEAVES_A_STORE_OPEN, encoding="utf-8")
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"),
            *("-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT)),
            *("-p", "tests.conftest", str(test_file)),  # the hook under test
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,  # without the hook it never ends
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed" in done.stdout and "failed on purpose" in done.stdout
