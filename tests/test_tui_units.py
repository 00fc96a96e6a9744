"""Small pieces of the dashboard: column layout, literal text, curl lines, keys and the
command palette."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import click
import pytest
from click.testing import CliRunner
from rich.text import Text
from textual.app import App
from textual.binding import Binding

from listener.serve import listening_on
from store.config import flatten_keys, unknown_binding, unknown_bindings
from tui import context
from tui import format as fmt
from tui.app import SCREENS, PostwatchApp
from tui.cli import cli
from tui.context import DashOptions
from tui.keys import binding_ids
from tui.screens.base import TableScreen, table_bindings
from tui.widgets.detail import DetailPane
from tui.widgets.rows import Column, layout_columns


def test_columns_fill_the_width_and_drop_by_priority() -> None:
    columns = [
        Column("a", "a", 8),
        Column("b", "b", 10, 24, weight=1),
        Column("c", "c", 10, priority=1),
    ]
    wide = layout_columns(columns, 60)
    assert [(c.key, w) for c, w in wide] == [("a", 8), ("b", 24), ("c", 10)]
    narrow = layout_columns(columns, 25)
    assert [(c.key, w) for c, w in narrow] == [("a", 8), ("b", 16)]
    assert sum(w for _, w in narrow) + len(narrow) - 1 <= 25


@pytest.mark.parametrize(
    ("captured", "shown"),
    [
        ("[b]bold[/]", "[b]bold[/]"),
        ("[/]", "[/]"),
        ("a\x1b[31mred", "a\\x1b[31mred"),
        ("line\nnext\ttab", "line\\nnext\\ttab"),
        (":smile: @click", ":smile: @click"),
    ],
)
def test_captured_values_are_shown_as_sent(captured: str, shown: str) -> None:
    text = fmt.literal(captured)
    assert isinstance(text, Text)
    assert text.plain == shown
    assert not text.spans


@pytest.mark.parametrize(
    ("width", "shown"),
    [
        (24, "0190a3b2c4d5e8b2e07c41f9"),
        (30, "0190a3b2c4d5e8b2e07c41f9"),
        (12, "…8b2e07c41f9"),
        (1, "0"),
    ],
)
def test_an_id_too_wide_for_its_column_keeps_its_end(width: int, shown: str) -> None:
    cell = Text("0190a3b2c4d5e8b2e07c41f9", style="bold")
    out = fmt.shorten_id(cell, width)
    assert out.plain == shown and out.cell_len <= width
    assert out.style == "bold"


def test_a_curl_line_quotes_every_part() -> None:
    line = fmt.curl("POST", "http://x/y?a=1&b=[2]", {"X-Key": "it's"}, '{"a": 1}')
    assert line == (
        "curl -sS -g -X POST -H 'X-Key: it'\"'\"'s' --data-raw '{\"a\": 1}' 'http://x/y?a=1&b=[2]'"
    )
    assert fmt.curl("GET", "http://x/", {}, "") == "curl -sS -g http://x/"


def test_every_binding_has_an_id_and_a_description() -> None:
    bindings = list(PostwatchApp.BINDINGS)
    for screen in SCREENS.values():
        bindings += screen.BINDINGS
    ids = []
    for binding in bindings:
        assert isinstance(binding, Binding)
        assert binding.id and binding.description, binding
        ids.append(binding.id)
    assert len(ids) == len(set(ids)), "binding ids are unique"


async def test_the_command_palette_reaches_every_action(tmp_path: Path) -> None:
    app = PostwatchApp(DashOptions(db=tmp_path / "p.db", host="127.0.0.1", port=0))
    async with app.run_test() as pilot:
        await app.wait_ready()
        for name, screen_type in SCREENS.items():
            await app.action_show_screen(name)
            await pilot.pause()
            titles = [command.title for command in app.get_system_commands(app.screen)]
            for binding in screen_type.BINDINGS:
                assert isinstance(binding, Binding)
                if binding.key in ("escape", "tab"):
                    continue
                assert any(binding.description in t or binding.tooltip in t for t in titles)
            for screen in SCREENS:
                assert f"Show {screen.capitalize()}" in titles
            assert "Start or stop demo traffic" in titles


def test_keys_from_toml_become_binding_ids() -> None:
    nested = {"app": {"trace": "x"}, "live.copy": "Y", "deliveries": {"resend": ["R", "ctrl+r"]}}
    assert flatten_keys(nested) == {
        "app.trace": "x",
        "live.copy": "Y",
        "deliveries.resend": "R,ctrl+r",
    }


def test_dashboard_options_before_a_command_are_refused() -> None:
    result = CliRunner().invoke(cli, ["--db", "x.db", "serve"])
    assert result.exit_code == 2
    assert "put it after the command" in result.output


def test_the_dashboard_commands_are_listed() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("dash", "serve", "trace", "config", "demo", "--no-mouse", "--theme"):
        assert command in result.output


def test_attaching_to_a_missing_database_is_refused_before_the_screen_changes(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "missing.db"
    result = CliRunner().invoke(cli, ["dash", "--db", str(missing)])
    assert result.exit_code == 1
    assert f"start `postwatch serve --db {missing}` first" in result.output
    assert not missing.exists()


def test_an_unknown_theme_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--theme", "nope", "--db", str(tmp_path / "p.db")])
    assert result.exit_code == 2
    assert "ansi-dark" in result.output


class OnePane(App[None]):
    def compose(self) -> Any:
        yield DetailPane("nothing yet")


async def test_the_detail_pane_scrolls_over_the_height_of_each_text() -> None:
    # The pane keeps its size; each text sets its scroll range and is drawn line by line.
    app = OnePane()
    async with app.run_test(size=(40, 10)) as pilot:
        pane = app.query_one(DetailPane)
        size = pane.size
        for key, height in enumerate((3, 3, 20, 20, 2)):
            pane.show(key, Text("\n".join(f"item {key} line {n}" for n in range(height))))
            await pilot.pause()
            assert pane.size == size
            assert pane.virtual_size.height == height
            assert pane.max_scroll_y == max(0, height - pane.size.height)
            drawn = [line.strip() for line in pane.drawn()]
            assert drawn == [f"item {key} line {n}" for n in range(height)]
            shown = [pane.render_line(y).text.strip() for y in range(pane.size.height)]
            assert shown[: min(height, size.height)] == drawn[: size.height]


def test_every_worker_leaves_the_app_running_when_it_fails() -> None:
    # Textual quits the app when a worker raises unless it is told not to; failures are
    # reported by tui.workers instead. Every worker must say so where it is started.
    calls = []
    for path in Path(fmt.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name in ("run_worker", "work"):
                calls.append((path.name, node.lineno))
                keywords = {k.arg: k.value for k in node.keywords}
                value = keywords.get("exit_on_error")
                assert isinstance(value, ast.Constant) and value.value is False, (path, node.lineno)
                assert isinstance(keywords.get("name"), ast.Constant), (path, node.lineno)
    assert len(calls) >= 11, calls


@pytest.mark.parametrize(
    ("host", "shown", "url"),
    [
        ("127.0.0.1", "127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("0.0.0.0", "0.0.0.0:8080 (all addresses)", "http://127.0.0.1:8080"),
        ("::", "[::]:8080 (all addresses)", "http://[::1]:8080"),
        ("::1", "[::1]:8080", "http://[::1]:8080"),
        ("192.0.2.7", "192.0.2.7:8080", "http://192.0.2.7:8080"),
    ],
)
def test_the_listening_address_is_shown_as_bound_and_reached_on_loopback(
    host: str, shown: str, url: str
) -> None:
    assert listening_on(host, 8080) == shown
    assert context._url(host, 8080) == url


def test_binding_ids_are_every_id_given_in_the_dashboard_code() -> None:
    # Every Binding(..., id="...") written anywhere in tui/ is listed, and nothing else; the
    # number keys' ids are written as their screens' names (app.<NAME>, see tui.screens), and
    # so are those of the keys every table screen has (tui.screens.base.table_bindings).
    written = {f"app.{screen.NAME}" for screen in SCREENS.values()}
    written |= {
        str(binding.id)
        for screen in SCREENS.values()
        if issubclass(screen, TableScreen)
        for binding in table_bindings(screen.NAME)
        if isinstance(binding, Binding)
    }
    for path in Path(fmt.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Binding":
                for keyword in node.keywords:
                    if keyword.arg == "id" and isinstance(keyword.value, ast.Constant):
                        written.add(keyword.value.value)
    assert binding_ids() == written
    assert {"app.quit", "live.follow", "rules.enabled", "table.down"} <= written


def test_an_unknown_binding_id_is_named_with_the_nearest_known_ones() -> None:
    known = binding_ids()
    assert unknown_bindings(["live.follow", "live.folow", "app.qiut"], known) == [
        "live.folow",
        "app.qiut",
    ]
    line = unknown_binding("live.folow", known)
    assert line.startswith("[keys]: there is no binding with the id 'live.folow'; did you mean")
    assert "'live.follow'" in line
    far = unknown_binding("zzz", known)
    assert "app.*" in far and "live.*" in far


def test_importing_the_key_ids_module_does_not_import_textual() -> None:
    code = "import sys, tui.keys; assert 'textual' not in sys.modules, 'textual imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_root_command_gives_config_import_the_binding_ids() -> None:
    seen: list[object] = []

    @click.command("probe-binding-ids")
    @click.pass_obj
    def probe(obj: dict[str, Any]) -> None:
        seen.append(obj["binding_ids"])

    cli.add_command(probe)
    try:
        result = CliRunner().invoke(cli, ["probe-binding-ids"])
    finally:
        cli.commands.pop("probe-binding-ids")
    assert result.exit_code == 0, result.output
    (given,) = seen
    assert callable(given) and given() == binding_ids()


# -- Live's postback columns, the failure notices and the header's figures ------------------


def test_few_postback_configs_get_a_named_column_each_and_many_share_one() -> None:
    from tui.screens.live import NAMED_COLUMNS, Changes, Conversions

    for source in (Conversions(), Changes()):
        source.names = ("all events", "paid deposits")
        keys = [column.key for column in source.table_columns()]
        assert keys[-2:] == ["pb:all events", "pb:paid deposits"] and "marks" not in keys
        labels = [column.label for column in source.table_columns()]
        assert labels[-2:] == ["all events", "paid deposits"]
        source.names = tuple(f"config {n}" for n in range(NAMED_COLUMNS + 1))
        keys = [column.key for column in source.table_columns()]
        assert keys[-1] == "marks" and not [key for key in keys if key.startswith("pb:")]


def test_a_config_column_is_titled_by_its_name_where_it_fits_else_by_its_label() -> None:
    from tui.screens.live import config_column

    column = config_column("paid deposits", "paid")
    assert (column.min, column.max) == (4, len("paid deposits"))
    assert column.title(13) == "paid deposits" and column.title(12) == "paid"
    assert config_column("leads", "leads").title(5) == "leads"  # (its name is its label)


def test_many_configs_share_a_column_of_short_unique_labels_in_config_order() -> None:
    from store.read.model import Mark
    from tui.screens.live import Conversions, short_labels

    names = ("all events", "paid deposits", "paid leads", "all", "meta purchases")
    # the first word, cut to 5; labels alike take more of their names until they differ
    assert short_labels(names) == {
        "all events": "all e",
        "paid deposits": "paid d",
        "paid leads": "paid l",
        "all": "all",
        "meta purchases": "meta",
    }
    assert short_labels(("traffic source", "big payouts")) == {
        "traffic source": "traff",
        "big payouts": "big",
    }
    source = Conversions()
    source.names = names
    (shared,) = [column for column in source.table_columns() if column.key == "marks"]
    assert shared.min >= len("all e:✓ paid d:✓ paid l:✓ all:✓ meta:✓")
    row = _row(
        marks=(
            Mark("all events", "s2s", "fired", "delivered", 1),
            Mark("paid deposits", "s2s", "filtered", "filtered", 2),
            Mark("paid leads", "s2s", "fired", "failed", 3),
        )
    )
    assert source.all_cells(row)["marks"].plain == "all e:✓ paid d:⊘ paid l:✗"


def _row(**values: Any) -> Any:
    """A Live row of a conversion created at 22:13:20 and changed a minute later."""
    from store.read.model import ConversionRow

    fields: dict[str, Any] = {
        "id": 1,
        "click_id": "c1",
        "campaign": "casino-fr",
        "type": "Deposit",
        "status": "approved",
        "raw_status": None,
        "payout": 5.0,
        "currency": "EUR",
        "txid": None,
        "created_at": 1_700_000_000.0,
        "updated_at": 1_700_000_060.0,
    }
    return ConversionRow(**{**fields, **values})


def test_a_rows_marks_are_drawn_under_their_names_and_labelled_in_config_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the same day as the rows' times, so that the cells show clock times
    monkeypatch.setattr(fmt.TIMES, "clock", lambda: 1_700_000_000.0 + 60)
    monkeypatch.setattr(fmt.TIMES, "local", False)
    from store.read.model import Mark
    from tui.screens.live import Conversions

    row = _row(
        marks=(
            Mark("all events", "s2s", "fired", "delivered", 1),
            Mark("[b]paid[/]", "s2s", "filtered", "filtered", 2),
            Mark("late", "s2s", "none", "none", 7),
        )
    )
    cells = {key: cell.plain for key, cell in Conversions().all_cells(row).items()}
    assert (cells["pb:all events"], cells["pb:[b]paid[/]"], cells["pb:late"]) == ("✓", "⊘", "·")
    assert cells["marks"] == "all events:✓ [b]paid[/]:⊘ late:·"
    assert cells["changed"] == "22:14:20"  # the last change's time


@pytest.mark.parametrize(
    ("steps", "said"),
    [
        # (time, new failures) -> what is said at once, or at the end of the quiet spell
        ([(0.0, 1)], ["Delivery #9 to 'all events' failed: HTTP 500"]),
        ([(0.0, 3)], ["Delivery #9 to 'all events' failed: HTTP 500 (2 more deliveries failed)"]),
        (
            [(0.0, 1), (1.0, 1), (2.0, 2), ("due", 10.0)],
            ["Delivery #9 to 'all events' failed: HTTP 500", "3 more deliveries failed"],
        ),
        ([(0.0, 1), (1.0, 1), ("due", 5.0)], ["Delivery #9 to 'all events' failed: HTTP 500"]),
        (
            [(0.0, 1), (1.0, 1), ("due", 10.0)],
            ["Delivery #9 to 'all events' failed: HTTP 500", "1 more delivery failed"],
        ),
        (
            [(0.0, 1), (20.0, 1)],
            ["Delivery #9 to 'all events' failed: HTTP 500"] * 2,
        ),
    ],
)
def test_a_flood_of_failures_is_said_once_then_counted(
    steps: list[tuple[Any, Any]], said: list[str]
) -> None:
    from store.read.model import FailedAttempt
    from tui.notices import FailureNotices

    notices = FailureNotices(quiet=10.0)
    newest = FailedAttempt(9, "all events", 500, "HTTP 500: only a 2xx answer counts")
    out = []
    for when, count in steps:
        text = notices.due(count) if when == "due" else notices.failed(count, newest, when)
        if text is not None:
            out.append(text)
    assert out == said


@pytest.mark.parametrize("width", [60, 80, 100, 200])
def test_the_headers_figures_drop_the_least_important_first(width: int) -> None:
    from tui.messages import Stats
    from tui.widgets.header import DROP_ORDER, _figures

    stats = Stats(
        clicks=12345, conversions=6789, rejected=12, rate=40.5, size=3 << 20, failed=3, retrying=2
    )
    figures = _figures(stats, narrow=width < 100)
    assert list(figures)[-2:] == ["retrying", "failed"]
    assert "failed" not in DROP_ORDER  # never cut
    assert (
        figures["failed"].plain == " · ✗ 3 failed"
        and figures["retrying"].plain == " · ↻ 2 retrying"
    )
    assert "failed" not in _figures(Stats(), narrow=False)


def test_a_change_row_draws_the_conversions_columns_of_the_other_view(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the same day as the rows' times, so that the cells show clock times
    monkeypatch.setattr(fmt.TIMES, "clock", lambda: 1_700_000_000.0 + 60)
    monkeypatch.setattr(fmt.TIMES, "local", False)
    from store.read.model import ChangeRow
    from tui.screens.live import Changes

    class Wider(Changes):
        columns: ClassVar[list[Column]] = [*Changes.columns, Column("updated_at", "updated", 8)]

    change = ChangeRow(
        id=12,
        conversion_id=1,
        at=1_700_000_030.0,
        change="updated",
        status="pending",
        conversion=_row(txid="T-1"),
    )
    cells = {key: cell.plain for key, cell in Wider().all_cells(change).items()}
    assert (cells["time"], cells["change"], cells["status"]) == ("22:13:50", "updated", "pending")
    assert cells["id"] == "1" and cells["updated_at"] == "22:14:20"  # the conversion's
