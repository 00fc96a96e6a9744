"""The screen registry: every module of tui/screens declares a complete screen (name, number
key, label, bindings with ids, and a table screen's source), ``SCREENS`` is built from them in
the order of their keys, the app's number keys follow with the ids users' ``[keys]`` name, and
a new screen is one module (plus its queries in store.read)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest
from textual.binding import Binding, BindingType

from store.read.model import ConversionRow, InboundView
from tests.helpers import Listener
from tui import format as fmt
from tui import screens
from tui.app import PostwatchApp
from tui.screens import SCREENS, missing_parts, screen_modules
from tui.screens.base import TableScreen
from tui.screens.inbound import Inbound, InboundScreen
from tui.screens.live import Conversions, LiveScreen
from tui.screens.trace import TraceScreen
from tui.sources import Source
from tui.widgets.rows import Column

# The number keys, their screens and their binding ids, exactly as users' configs know them.
NUMBER_KEYS = [
    ("1", "show_screen('live')", "Live", "app.live"),
    ("2", "show_screen('campaigns')", "Campaigns", "app.campaigns"),
    ("3", "show_screen('deliveries')", "Deliveries", "app.deliveries"),
    ("4", "show_screen('inbound')", "Inbound", "app.inbound"),
    ("5", "show_screen('trace')", "Trace", "app.trace"),
]


def test_every_screen_module_is_a_screen_in_the_order_of_its_key() -> None:
    assert sorted(SCREENS) == screen_modules()
    assert list(SCREENS)[:5] == ["live", "campaigns", "deliveries", "inbound", "trace"]
    keys = [screen.KEY for screen in SCREENS.values()]
    assert keys[:5] == ["1", "2", "3", "4", "5"]
    assert keys == sorted(set(keys))


@pytest.mark.parametrize("name", screen_modules())
def test_each_screen_declares_every_part(name: str) -> None:
    assert missing_parts(name, SCREENS[name]) == []


def test_the_number_keys_are_built_from_the_screens_with_their_ids() -> None:
    bindings = [b for b in PostwatchApp.BINDINGS if isinstance(b, Binding)]
    numbers = bindings[: len(SCREENS)]
    shown = [(b.key, b.action, b.description, b.id) for b in numbers]
    assert shown[: len(NUMBER_KEYS)] == NUMBER_KEYS
    assert [b.id for b in numbers] == [f"app.{name}" for name in SCREENS]
    assert not any(b.show for b in numbers)
    assert {b.id for b in bindings[len(SCREENS) :]} == {"app.demo", "app.keys", "app.quit"}


class _Table(Inbound):
    """A complete source to take parts from."""


class _Screen(InboundScreen):
    SOURCE = _Table


def _with(cls: type, part: str, value: Any) -> type:
    """A subclass of ``cls`` whose ``part`` is ``value``."""
    return type(cls.__name__, (cls,), {part: value})


def _without(cls: type, part: str) -> type:
    """A copy of ``cls`` (a direct subclass of ``Source``) that does not declare ``part``."""
    kept = {k: v for k, v in vars(cls).items() if k not in (part, "__dict__", "__weakref__")}
    return type(cls.__name__, (Source,), kept)


class _NoDetail(TableScreen):
    NAME = "inbound"
    KEY = "4"
    LABEL = "Inbound"
    SOURCE = _Table
    TABLE_TITLE = "Inbound"
    TABLE_PLACEHOLDER = "Nothing yet."
    DETAIL_PLACEHOLDER = "Select one."


class _Plain(Source):
    """A source that draws no cell itself: every column is a field of its record."""

    table = "inbound"
    record = InboundView
    columns: ClassVar[list[Column]] = [Column("endpoint", "what", 8), Column("nothing", "x", 4)]

    def page(self, conn: Any, chosen: Any) -> Any:
        return []

    def by_id(self, conn: Any, ids: list[int]) -> Any:
        return []


class _Unbound(InboundScreen):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("o", "show", "Show")]


@pytest.mark.parametrize(
    ("screen", "said"),
    [
        (object(), "must end with SCREEN = <its DashScreen class>"),
        (_with(_Screen, "NAME", "other"), 'must declare NAME = "inbound"'),
        (_with(_Screen, "KEY", ""), 'must declare its number key, KEY = "6"'),
        (_with(_Screen, "KEY", "12"), 'must declare its number key, KEY = "6"'),
        (_with(_Screen, "LABEL", ""), "must declare LABEL"),
        (_Unbound, "the binding of 'o' must have an id \"inbound.<what it does>\""),
        (_with(_Screen, "TABLE_TITLE", 0), "must declare TABLE_TITLE"),
        (_with(_Screen, "DETAIL_PLACEHOLDER", 0), "must declare DETAIL_PLACEHOLDER"),
        (_NoDetail, "must say how its detail is read (read_detail)"),
        (_with(_Screen, "SOURCE", 0), "must declare SOURCE = <its Source class>"),
        (type("S", (_Screen,), {"SOURCE": _without(Inbound, "record")}), "must declare record"),
        (type("S", (_Screen,), {"SOURCE": _without(Inbound, "page")}), "with page(conn, ...)"),
        (type("S", (_Screen,), {"SOURCE": _without(Inbound, "by_id")}), "with by_id(conn, ...)"),
        (
            type("S", (_Screen,), {"SOURCE": _Plain}),
            "has columns that are no field of InboundView (nothing): draw them in cells",
        ),
    ],
)
def test_a_screen_missing_a_part_is_named_with_what_to_write(screen: Any, said: str) -> None:
    problems = missing_parts("inbound", screen)
    assert any(said in problem for problem in problems), problems
    assert all(problem.startswith("tui/screens/inbound.py") for problem in problems)


def test_the_parts_taken_out_were_there() -> None:
    # (The cases above fail for the part taken out, not for something else.)
    assert missing_parts("inbound", _Screen) == []
    assert missing_parts("inbound", InboundScreen) == []
    assert missing_parts("live", LiveScreen) == []
    assert missing_parts("trace", TraceScreen) == []
    assert Conversions.record.__name__ == "ConversionRow"


@pytest.fixture
def same_day(monkeypatch: pytest.MonkeyPatch) -> None:
    """Times drawn as on the day of the rows below (a time of today is a clock time)."""
    monkeypatch.setattr(fmt.TIMES, "clock", lambda: 1_700_000_000.0 + 60)
    monkeypatch.setattr(fmt.TIMES, "local", False)


@pytest.mark.usefixtures("same_day")
def test_a_column_no_cell_draws_shows_its_field_as_it_is() -> None:
    class Requests(_Plain):
        columns: ClassVar[list[Column]] = [
            Column("endpoint", "what", 8),
            Column("received_at", "time", 8),
            Column("click_id", "click id", 8),
        ]

    row = InboundView(
        id=3,
        received_at=1_700_000_000.0,
        endpoint="[b]postback[/]",
        method="GET",
        path="/postback",
        query="",
        body="",
        remote="127.0.0.1",
        headers={},
        outcome="accepted",
        reason="",
        http_status=200,
        warnings=(),
        parsed={},
        click_id=None,
        conversion_id=None,
    )
    cells = Requests().all_cells(row)
    assert {key: cell.plain for key, cell in cells.items()} == {
        "endpoint": "[b]postback[/]",
        "received_at": "22:13:20",
        "click_id": "",
    }
    assert not cells["endpoint"].spans


NEW_SCREEN = '''
"""Requests: every request received, only what it asked for."""

from __future__ import annotations

import sqlite3
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType

from store.read import queries
from store.read.filters import ListFilter
from store.read.model import ConversionRow, InboundView
from tests.helpers import Listener
from tui import format as fmt
from tui.screens.base import TableScreen
from tui.sources import Row, Source
from tui.widgets.rows import Column


class Requests(Source):
    table = "inbound"
    record = InboundView
    columns: ClassVar[list[Column]] = [
        Column("id", "#", 5, 8, justify="right"),
        Column("endpoint", "what", 8),
        Column("path", "path", 20, None, weight=1),
    ]

    def page(self, conn: sqlite3.Connection, chosen: ListFilter) -> list[Row]:
        return list(queries.inbound(conn, chosen))

    def by_id(self, conn: sqlite3.Connection, ids: list[int]) -> list[Row]:
        return list(queries.inbound_by_id(conn, ids))


class RequestsScreen(TableScreen):
    NAME = "requests"
    KEY = "9"
    LABEL = "Requests"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "follow", "Follow", show=False, id="requests.follow"),
    ]
    SOURCE = Requests
    TABLE_TITLE = "Requests"
    TABLE_PLACEHOLDER = "Nothing received yet."
    DETAIL_PLACEHOLDER = "Select a request."

    async def read_detail(self, key: int) -> Text | None:
        return fmt.literal(str(key))


SCREEN = RequestsScreen
'''

USE_IT = """
import asyncio, sys
from pathlib import Path
from tui.app import PostwatchApp, SCREENS
from tui.context import DashOptions
from tui.keys import binding_ids

async def main() -> None:
    app = PostwatchApp(DashOptions(db=Path(sys.argv[1]), host="127.0.0.1", port=0))
    app.BUILD_AHEAD = False
    async with app.run_test(size=(120, 30)) as pilot:
        await app.wait_ready()
        await pilot.press("9")
        await pilot.pause()
        await app.wait_ready()
        titles = [command.title for command in app.get_system_commands(app.screen)]
        tabs = app.screen.query_one("StatusBar").render().plain.split(chr(10))[1]
        print(app.current_mode, "Show Requests" in titles, "9 Requests" in tabs)
    print(list(SCREENS)[-1])
    print(sorted(i for i in binding_ids() if i.startswith(("app.requests", "requests."))))

asyncio.run(main())
"""


def _copy_product(tmp_path: Path) -> Path:
    root = Path(screens.__file__).parents[2]
    for package in ("store", "listener", "tui"):
        shutil.copytree(
            root / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return tmp_path / "tui" / "screens"


def _run(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "p.db")],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_new_screen_is_one_module(tmp_path: Path) -> None:
    (_copy_product(tmp_path) / "requests.py").write_text(NEW_SCREEN, "utf-8")
    result = _run(tmp_path, USE_IT)
    assert result.returncode == 0, result.stderr
    shown, listed, ids = result.stdout.splitlines()[-3:]
    assert shown == "requests True True"
    assert listed == "requests"
    # (and the keys every table screen has, with its name)
    assert ids == (
        "['app.requests', 'requests.clear', 'requests.export', 'requests.find',"
        " 'requests.follow', 'requests.timezone']"
    )


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (("SCREEN = RequestsScreen", ""), "tui/screens/requests.py must end with SCREEN ="),
        (
            ('KEY = "9"', 'KEY = "5"'),
            "tui/screens/requests.py and tui/screens/trace.py both declare KEY = '5'",
        ),
        (("    record = InboundView\n", ""), "Requests must declare record"),
    ],
)
def test_an_incomplete_screen_module_stops_the_import_saying_what_to_write(
    tmp_path: Path, change: tuple[str, str], said: str
) -> None:
    old, new = change
    assert old in NEW_SCREEN
    (_copy_product(tmp_path) / "requests.py").write_text(NEW_SCREEN.replace(old, new), "utf-8")
    result = _run(tmp_path, "import tui.app")
    assert result.returncode != 0
    assert "ImportError: " in result.stderr and said in result.stderr, result.stderr


# -- a Live column ----------------------------------------------------------------------------


@pytest.mark.usefixtures("same_day")
def test_a_live_column_of_a_field_the_row_has_is_one_column() -> None:
    class Wider(Conversions):
        columns: ClassVar[list[Column]] = [
            *Conversions.columns,
            Column("updated_at", "updated", 8),
        ]

    row = ConversionRow(
        id=7,
        click_id="c1",
        campaign="casino-fr",
        type="Deposit",
        status="approved",
        raw_status="1",
        payout=5.0,
        currency="EUR",
        txid=None,
        created_at=1_700_000_000.0,
        updated_at=1_700_000_060.0,
    )
    cells = {key: cell.plain for key, cell in Wider().all_cells(row).items()}
    assert cells["updated_at"] == "22:14:20"
    assert list(cells) == [column.key for column in Wider.columns]
    assert cells["txid"] == ""  # (drawn by the source's own cells, as before)


ADD_THE_COLUMN = """
import json, sqlite3, sys
from store.read import queries
from tui.screens.live import Conversions

conn = sqlite3.connect(sys.argv[1])
conn.row_factory = sqlite3.Row
rows = queries.conversion_row_page(conn)
stored = [row[0] for row in conn.execute("SELECT campaign_id FROM conversions ORDER BY id DESC")]
print(json.dumps([[Conversions().all_cells(row)["campaign_id"].plain for row in rows], stored]))
"""


async def test_a_live_column_of_a_value_the_conversions_table_has_is_a_field_and_a_column(
    pw: Listener, tmp_path: Path
) -> None:
    clickid = await pw.click(ref_id="ext-1")
    for n in range(2):
        status, body = await pw.postback(clickid=clickid, type="Deposit", status="2", txid=f"T{n}")
        assert status == 200, body
    copy = tmp_path / "copy"
    screens_dir = _copy_product(copy)
    model = copy / "store" / "read" / "model.py"
    field_line = "    marks: tuple[Mark, ...] = ()\n"
    text = model.read_text("utf-8")
    assert text.count(field_line) == 1
    model.write_text(text.replace(field_line, field_line + "    campaign_id: int = 0\n"), "utf-8")
    live = screens_dir / "live.py"
    column_line = '        Column("marks", "postbacks", 9, 12),\n'
    text = live.read_text("utf-8")
    assert text.count(column_line) == 1
    live.write_text(
        text.replace(column_line, column_line + '        Column("campaign_id", "camp", 4),\n'),
        "utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-c", ADD_THE_COLUMN, str(pw.store.path)],
        cwd=copy,
        env={**os.environ, "PYTHONPATH": str(copy)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    shown, stored = json.loads(result.stdout)
    assert len(stored) == 2
    assert shown == [str(n) for n in stored]
