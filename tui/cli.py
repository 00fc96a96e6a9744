"""The ``postwatch`` entry point: the headless commands of ``listener.cli``, and (with no
command) the dashboard."""

from __future__ import annotations

from listener.cli import cli


def main() -> None:
    cli()
