"""The dashboard's screens, one module per screen, and ``SCREENS``, which is built from them.

A module here is a screen unless it is one of ``SHARED``. It is named after its screen
(``tui/screens/sinks.py`` for the screen ``NAME = "sinks"``) and ends with ``SCREEN =
<its DashScreen class>``. The class declares its ``NAME``, its number key ``KEY`` and its
``LABEL``; a table screen (``TableScreen``) also its ``SOURCE``, the rows of its table, whose
``record`` is a record of ``store.read.model`` and whose queries are in
``store.read.queries``. The app builds the number-key bindings (ids ``app.<NAME>``), the header
tabs and the palette's "Show …" commands from ``SCREENS``: nothing else lists the screens.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import fields, is_dataclass
from types import ModuleType

from textual.binding import Binding

from tui.screens.base import DashScreen, TableScreen
from tui.sources import Source

SHARED = frozenset({"base"})  # modules of what the screens share, not screens themselves

# What a table screen declares besides its source, and what its source declares.
TABLE_PARTS = ("TABLE_TITLE", "TABLE_PLACEHOLDER", "DETAIL_PLACEHOLDER")
SOURCE_PARTS = ("table", "record", "columns")
SOURCE_READS = ("page", "by_id")


def screen_modules() -> list[str]:
    """The names of this package's screen modules."""
    return sorted(info.name for info in pkgutil.iter_modules(__path__) if info.name not in SHARED)


def missing_parts(name: str, screen: object) -> list[str]:
    """What the screen module ``name`` declares wrongly or not at all, each as a sentence
    saying what to write; empty when the screen is complete."""
    where = f"tui/screens/{name}.py"
    if not (inspect.isclass(screen) and issubclass(screen, DashScreen)):
        return [f"{where} must end with SCREEN = <its DashScreen class>"]
    problems = []
    if name != screen.NAME:
        problems.append(f'{where}: {screen.__name__} must declare NAME = "{name}"')
    if not (len(screen.KEY) == 1 and screen.KEY.isdigit()):
        problems.append(f'{where}: {screen.__name__} must declare its number key, KEY = "6"')
    if not screen.LABEL:
        problems.append(f"{where}: {screen.__name__} must declare LABEL, its name on its tab")
    problems += _binding_problems(where, screen)
    if issubclass(screen, TableScreen):
        problems += _table_problems(where, screen)
    return problems


def _binding_problems(where: str, screen: type[DashScreen]) -> list[str]:
    problems = []
    for binding in screen.BINDINGS:
        if not isinstance(binding, Binding) or not binding.description:
            problems.append(f"{where}: every binding must be a Binding with a description")
        elif not binding.id:
            problems.append(
                f"{where}: the binding of {binding.key!r} must have an id "
                f'"{screen.NAME}.<what it does>" (the config\'s [keys] names it)'
            )
    return problems


def _table_problems(where: str, screen: type[TableScreen]) -> list[str]:
    name = screen.__name__
    problems = [
        f"{where}: {name} must declare {part}"
        for part in TABLE_PARTS
        if not isinstance(getattr(screen, part, None), str)
    ]
    if "read_detail" not in _own(screen, TableScreen) and "show_detail" not in _own(
        screen, TableScreen
    ):
        problems.append(f"{where}: {name} must say how its detail is read (read_detail)")
    source = getattr(screen, "SOURCE", None)
    if not (inspect.isclass(source) and issubclass(source, Source)):
        return [*problems, f"{where}: {name} must declare SOURCE = <its Source class>"]
    problems += [
        f"{where}: {source.__name__} must declare {part}"
        for part in SOURCE_PARTS
        if not hasattr(source, part)
    ]
    problems += [
        f"{where}: {source.__name__} must read its rows with {read}(conn, ...)"
        for read in SOURCE_READS
        if read not in _own(source, Source)
    ]
    record = getattr(source, "record", None)
    if problems or not is_dataclass(record):
        return problems or [f"{where}: {source.__name__}.record must be a read-model record"]
    return problems + _column_problems(where, source)


def _column_problems(where: str, source: type[Source]) -> list[str]:
    """A column that the source's ``cells`` does not draw shows its record's field of the
    same key: that field must exist. (Which columns ``cells`` draws is known only by calling
    it, so a column named like no field must be drawn; the snapshot tests draw them all.)"""
    names = {item.name for item in fields(source.record)}
    keys = [column.key for column in source.columns]
    problems = []
    if len(keys) != len(set(keys)):
        problems.append(f"{where}: {source.__name__}'s columns must have distinct keys")
    if "cells" not in _own(source, Source) and not set(keys) <= names:
        unknown = ", ".join(sorted(set(keys) - names))
        problems.append(
            f"{where}: {source.__name__} has columns that are no field of "
            f"{source.record.__name__} ({unknown}): draw them in cells"
        )
    return problems


def _own(cls: type, base: type) -> set[str]:
    """The names ``cls`` defines itself or inherits from classes other than ``base``'s line."""
    return {name for klass in cls.__mro__ if klass not in base.__mro__ for name in vars(klass)}


def _load(module: ModuleType, name: str) -> type[DashScreen]:
    screen = getattr(module, "SCREEN", None)
    problems = missing_parts(name, screen)
    if problems:
        raise ImportError("; ".join(problems))
    assert inspect.isclass(screen) and issubclass(screen, DashScreen)
    return screen


def _screens() -> dict[str, type[DashScreen]]:
    """Every screen module's screen, in the order of their number keys."""
    found = [
        _load(importlib.import_module(f"{__name__}.{name}"), name) for name in screen_modules()
    ]
    for attribute in ("KEY", "LABEL"):
        taken: dict[str, str] = {}
        for screen in found:
            value = getattr(screen, attribute)
            if value in taken:
                both = " and ".join(f"tui/screens/{n}.py" for n in (taken[value], screen.NAME))
                raise ImportError(f"{both} both declare {attribute} = {value!r}: give one another")
            taken[value] = screen.NAME
    return {screen.NAME: screen for screen in sorted(found, key=lambda screen: screen.KEY)}


# Built from the modules, so adding a screen is its module (and its queries in store.read).
SCREENS: dict[str, type[DashScreen]] = _screens()
