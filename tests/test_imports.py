"""The core does not depend on the dashboard: importing every module of ``store`` and
``listener`` (the listener's CLI included) must not import Textual."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _modules(package: str) -> list[str]:
    return [f"{package}.{info.name}" for info in pkgutil.iter_modules([str(ROOT / package)])]


def test_store_and_listener_import_without_textual() -> None:
    modules = _modules("store") + _modules("listener")
    assert "listener.app" in modules and "store.db" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "loaded = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "assert not loaded, f'textual was imported: {loaded[:5]}'\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_headless_commands_do_not_import_textual() -> None:
    """``postwatch serve`` and friends start without loading the dashboard."""
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from tui.cli import cli\n"
        "result = CliRunner().invoke(cli, ['serve', '--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'textual' not in sys.modules\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
