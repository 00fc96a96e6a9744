"""The postwatch dashboard: a Textual app with one screen per view (number keys switch), the
listener running in the same event loop (or attached to a database another process serves),
and a poll of SQLite that tells the screens when something changed."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterable
from typing import Any, ClassVar

from textual.app import ScreenStackError, SystemCommand
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import AwaitMount
from textual.widgets import Input, Static
from textual.worker import Worker

from store import views
from store.config import flatten_keys, unknown_binding, unknown_bindings
from tui.context import Dash, DashOptions, open_dash, start_failure
from tui.feed import Feed
from tui.keys import binding_ids
from tui.messages import (
    DataChanged,
    DeliveriesFailed,
    DemoChanged,
    Stats,
    StatsUpdated,
    WorkFailed,
)
from tui.notices import FailureNotices
from tui.screens import SCREENS as SCREENS  # (the keys and tests take them from here too)
from tui.screens.base import DashScreen, TableScreen
from tui.screens.trace import TraceScreen
from tui.typeahead import TypeAheadApp
from tui.workers import failure_message, report_failure

# Theme names users may give, and the Textual theme each stands for.
THEME_ALIASES = {"ansi": "ansi-dark", "textual-ansi": "ansi-dark", "16": "ansi-dark"}

DEMO_RATE = 5.0  # requests a second of demo traffic
FAILURE_TIMEOUT = 10.0  # seconds a failure stays on screen; the same one is not repeated sooner
NEW_TOKEN_TIMEOUT = 60.0  # seconds the made-up API token stays on screen, to be copied
FEED_RETRY = 2.0  # seconds before watching the database again after a failed poll
BUILD_PAUSE = 0.05  # seconds between building two screens ahead of their first switch
BUILD_WAIT = 2.0  # seconds a screen built ahead may take to read its data
LAYOUTS_AHEAD = 3  # layouts of a screen built ahead, at most, until its widgets keep their size
# How keys are named in hints on screen.
KEY_NAMES = {
    "question_mark": "?",
    "slash": "/",
    "up": "↑",
    "down": "↓",
    "enter": "Enter",
    "escape": "Esc",
    "tab": "Tab",
    "pageup": "PgUp",
    "pagedown": "PgDn",
}
# Keys the palette does not offer: moving between a table and its detail, and back.
PALETTE_LEFT_OUT = frozenset({"escape", "tab"})


def screen_bindings() -> list[BindingType]:
    """One number key per screen, in ``SCREENS``' order: ``KEY`` shows the screen, with the
    id ``app.<NAME>`` that the config's ``[keys]`` remaps. They come first, before the
    focused widget's keys (except while a text box has the focus, see ``check_action``): a
    key sent right after one lands on the screen it shows."""
    return [
        Binding(
            screen.KEY,
            f"show_screen('{name}')",
            screen.LABEL,
            show=False,
            id=f"app.{name}",
            priority=True,
        )
        for name, screen in SCREENS.items()
    ]


def _freeze_heap() -> None:
    """Collect garbage once, then move every object alive to the collector's permanent
    generation. A full collection walks every object tracked, and the dashboard's widgets,
    styles and rows are a few hundred thousand: each took ~100 ms and landed on a keypress
    about every 30 presses. Frozen objects are still freed when their last reference goes;
    only cycles among them wait for ``gc.unfreeze`` (at exit)."""
    gc.collect()
    gc.freeze()


class PostwatchApp(TypeAheadApp):
    """The dashboard."""

    TITLE = "postwatch"
    BUILD_AHEAD = True  # build every screen once Live shows (see ``_build_views``)
    CSS_PATH = "postwatch.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-medium"), (150, "-wide")]  # noqa: RUF012 (Textual's type)

    BINDINGS: ClassVar[list[BindingType]] = [
        *screen_bindings(),
        Binding(
            "d",
            "demo",
            "Demo",
            tooltip="Start or stop demo traffic",
            show=False,  # the empty Live screen names it; the header marks it while it runs
            id="app.demo",
        ),
        Binding("question_mark", "keys", "Keys", tooltip="Show every key", id="app.keys"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    # The header watches these and redraws itself; a reactive that repaints the app would
    # repaint the whole screen at every poll.
    stats: reactive[Stats] = reactive(Stats, always_update=True, repaint=False)
    demo_running: reactive[bool] = reactive(False, repaint=False)
    outbox_elsewhere: reactive[str] = reactive("", repaint=False)  # another process delivers

    def __init__(self, options: DashOptions, dash: Dash | None = None) -> None:
        """``dash``: the workspace already opened (by the command line, so that what keeps
        the dashboard from starting is said before the terminal is taken over); without it,
        the app opens it when mounted."""
        theme = THEME_ALIASES.get(options.theme or "", options.theme or "")
        # Textual picks its colour filters (NO_COLOR included) when the app is made, from
        # whether the theme uses the terminal's own ANSI colours: say so up front.
        super().__init__(ansi_color=True if theme.startswith("ansi-") else None)
        self.options = options
        self.theme_name = theme
        self.dash: Dash | None = dash
        self.feed: Feed | None = None
        self._demo: asyncio.Task[Any] | None = None
        self._failures_shown: dict[str, float] = {}  # failure message -> when it was shown
        self.failure_notices = FailureNotices()
        self._notices_timer: Timer | None = None
        self.views: dict[str, DashScreen] = {}  # the screens, by mode name, once opened
        self._switching_to_built = False
        self._default_keys = {
            binding.id: binding.key
            for binding in self._all_bindings()
            if isinstance(binding, Binding) and binding.id
        }

    # -- start and stop -----------------------------------------------------------------------

    def compose(self) -> Any:
        yield Static("postwatch: opening the database…", id="opening", markup=False)

    async def on_mount(self) -> None:
        if self.theme_name:
            if self.theme_name not in self.available_themes:
                known = ", ".join(sorted(self.available_themes))
                self.exit(
                    return_code=2,
                    message=f"postwatch: no theme is named {self.theme_name!r} (known: {known})",
                )
                return
            self.theme = self.theme_name
        if self.dash is None:
            try:
                self.dash = await open_dash(self.options)
            except Exception as error:
                line = start_failure(self.options, error)
                if line is None:
                    raise
                self.exit(return_code=1, message=f"Error: {line}")
                return
        keymap = flatten_keys(self.dash.settings.keys)
        if keymap:
            self.set_keymap(keymap)
        self.views = {name: screen(self.dash) for name, screen in SCREENS.items()}
        for name, view in self.views.items():
            # One screen per view for the app's life: it is built at its first switch (or
            # ahead, see ``_build_views``) and kept, with its rows, afterwards.
            self.add_mode(name, lambda view=view: view)  # type: ignore[misc]
        await self.switch_mode("live")
        self._show_new_token()
        for warning in self.dash.warnings:  # say, beyond loopback without an inbound key
            self.notify(warning, severity="warning", timeout=FAILURE_TIMEOUT, markup=False)
        self._warn_unknown_keys(keymap)
        if not self.dash.attached:
            self.set_interval(1.0, self._check_outbox)
        self.feed = Feed(
            self.dash.store,
            self,
            interval=self.options.poll_interval,
            clock=self.options.clock,
        )
        self._watch_database()
        if self.BUILD_AHEAD:
            self.run_worker(
                self._build_views(),
                name="build the other screens",
                group="build",
                exit_on_error=False,
            )

    async def _build_views(self) -> None:
        """Build the screens not shown yet, one at a time once Live shows its rows, and read
        their data, so that the first switch to each only paints it (building the Campaigns
        screen alone takes a few hundred ms). Then set the objects made so far aside from the
        garbage collector (see ``_freeze_heap``)."""
        await self.wait_ready(timeout=30.0)
        self._styles_current(self.screen)
        for name, view in self.views.items():
            await asyncio.sleep(BUILD_PAUSE)  # a key pressed meanwhile is handled first
            if not self.still_running():
                return
            if not view.is_running:
                await self._build(name, view)
        _freeze_heap()

    async def _build(self, name: str, view: DashScreen) -> None:
        """Start mode ``name`` with ``view`` without showing it: mount it, lay it out at the
        terminal's size and load its data. (What Textual does at a mode's first switch, less
        showing it; Textual is pinned, and tests/test_tui_speed.py checks that a screen built
        ahead is shown as it is.)"""
        if not self.still_running():
            return
        self._load_screen_css(view)
        mounted = AwaitMount(view, self._register(self, view))
        # Its mode holds it from now on: the switch only shows it, and the app closes it at
        # exit as it closes every mode's screens.
        self._screen_stacks[name] = [view]
        await mounted
        if not self.still_running():
            return
        self._styles_current(view)
        view._refresh_layout(self.size)
        view.refresh_bindings()  # the footer shows its keys from the start
        view.built_ahead()
        # Its rows and detail change its layout: lay it out again once they are in, and draw
        # it once (unseen), so that the first switch finds every widget's lines drawn.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BUILD_WAIT
        while not view.settled() and loop.time() < deadline:
            await asyncio.sleep(0.02)
        if not self.still_running() or not view.is_attached:
            return
        # A layout or a first drawing that resizes a widget (its content measured) asks for
        # another layout: lay it out and draw it until none is asked for, so that the first
        # switch has none left to do.
        for _ in range(LAYOUTS_AHEAD):
            view._refresh_layout(self.size)
            view._layout_required = False
            view._compositor.render_update(full=True)
            await asyncio.sleep(0.02)  # the layouts it asks for arrive as messages
            if not view._layout_required or not view.is_attached:
                break

    def still_running(self) -> bool:
        """Whether the app runs and is not exiting (it must not start a mode once it closes
        them)."""
        return self._running and not self._exit

    def _styles_current(self, screen: Screen[Any]) -> None:
        """Record that ``screen``'s widgets were styled from the stylesheet as it is now (they
        were, when they were mounted). Textual records it only for a screen mounted when
        it is shown: any other, the first screen included, would parse the whole stylesheet
        again and restyle every widget at its next switch (100-300 ms)."""
        if screen.is_mounted and screen._css_update_count < 0:
            screen._css_update_count = self._css_update_count

    def _check_outbox(self) -> None:
        """Say so when another process delivers for this database (two listeners on one
        database: this one records, the other sends), and when that ends."""
        assert self.dash is not None
        elsewhere = self.dash.outbox_elsewhere
        if elsewhere == self.outbox_elsewhere:
            return
        self.outbox_elsewhere = elsewhere
        if elsewhere:
            self.notify(elsewhere, title="Deliveries", severity="warning", markup=False)
        else:
            self.notify("this dashboard's listener now sends the postbacks", title="Deliveries")

    def _warn_unknown_keys(self, keymap: dict[str, str]) -> None:
        """Textual ignores a keymap entry that names no binding: say so, with the ids that
        were probably meant (the stored keys may come from an older or hand-edited import)."""
        known = binding_ids()
        for binding_id in unknown_bindings(keymap, known):
            self.notify(
                f"{unknown_binding(binding_id, known)}: it was ignored",
                title="Key binding",
                severity="warning",
                timeout=FAILURE_TIMEOUT,
                markup=False,
            )

    def _show_new_token(self) -> None:
        """A token made up at this start is shown here, once: it is in no log and on no
        screen afterwards (``postwatch token`` shows it again)."""
        dash = self.dash
        if dash is None or not dash.new_token:
            return
        self.notify(
            f"{dash.new_token}\nSent as Authorization: Bearer … to /api/…; "
            f"`postwatch token --db {dash.options.db}` shows it again.",
            title="New API token, shown only now",
            timeout=NEW_TOKEN_TIMEOUT,
            markup=False,
        )

    def _watch_database(self) -> None:
        if self.feed is not None:
            self.run_worker(
                self.feed.run(),
                name="watch the database for changes",
                group="feed",
                exit_on_error=False,
            )

    async def on_unmount(self) -> None:
        gc.unfreeze()
        await self._stop_demo()
        if self.dash is not None:
            await self.dash.close()

    # -- data ---------------------------------------------------------------------------------

    @property
    def data_version(self) -> int | None:
        """The database's data version the feed last saw (None before its first poll)."""
        return None if self.feed is None else self.feed.version

    def on_data_changed(self, message: DataChanged) -> None:
        try:
            screen = self.screen
        except ScreenStackError:  # the app is closing: its screens are gone, the feed not yet
            return
        if isinstance(screen, DashScreen):
            screen.post_message(DataChanged(message.version))

    def on_stats_updated(self, message: StatsUpdated) -> None:
        self.stats = message.stats

    def on_deliveries_failed(self, message: DeliveriesFailed) -> None:
        """Say that deliveries failed: the first by name, a flood as one count."""
        notices = self.failure_notices
        text = notices.failed(message.count, message.newest, time.monotonic())
        if text is not None:
            self._say_failed(text)
        elif self._notices_timer is None:
            self._notices_timer = self.set_timer(
                notices.wait(time.monotonic()) + 0.01, self._say_held_failures
            )

    def _say_held_failures(self) -> None:
        self._notices_timer = None
        text = self.failure_notices.due(time.monotonic())
        if text is not None:
            self._say_failed(text)
        elif self.failure_notices.held:
            wait = self.failure_notices.wait(time.monotonic()) + 0.01
            self._notices_timer = self.set_timer(wait, self._say_held_failures)

    def _say_failed(self, text: str) -> None:
        self.notify(text, title="Deliveries", severity="error", markup=False)

    def on_demo_changed(self, message: DemoChanged) -> None:
        self.demo_running = message.running

    # -- failures -----------------------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        report_failure(self, event)

    def on_work_failed(self, message: WorkFailed) -> None:
        """Background work failed: say what and why, and keep running. The same failure is
        shown once while it is on screen (a table that cannot read fails at every poll)."""
        text = failure_message(message.doing, message.error)
        if message.group == "feed":
            text += f" (trying again every {FEED_RETRY:g} s)"
            self.set_timer(FEED_RETRY, self._watch_database)
        now = time.monotonic()
        self._failures_shown = {
            shown: at for shown, at in self._failures_shown.items() if now - at < FAILURE_TIMEOUT
        }
        if text in self._failures_shown:
            return
        self._failures_shown[text] = now
        self.notify(text, severity="error", timeout=FAILURE_TIMEOUT, markup=False)

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until the first screen shows data (for tests and benchmarks)."""
        from tui.widgets.live_table import LiveTable

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            screen = self.screen
            if isinstance(screen, DashScreen):
                tables = list(screen.query(LiveTable))
                if all(table.loaded for table in tables):
                    return
            if loop.time() > deadline:
                raise TimeoutError("the dashboard did not load its data in time")
            await asyncio.sleep(0.02)

    # -- actions ------------------------------------------------------------------------------

    def switch_mode(self, mode: str) -> AwaitMount:
        """Show the screen of ``mode``; one that is built already is shown at once."""
        view = self.views.get(mode)
        self._switching_to_built = view is not None and view.is_mounted
        try:
            return super().switch_mode(mode)
        finally:
            self._switching_to_built = False

    def delay_update(self, delay: float = 0.05) -> None:
        # Textual holds every update for 50 ms at a switch of screens, to hide a screen that
        # is still being built. A screen built already has nothing to hide.
        if not self._switching_to_built:
            super().delay_update(delay)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The number keys type into a text box that has the focus (an id has digits)."""
        if action == "show_screen" and isinstance(self.focused, Input):
            return False
        return super().check_action(action, parameters)

    async def action_show_screen(self, name: str) -> None:
        if self.dash is not None and name in SCREENS and self.current_mode != name:
            await self.switch_mode(name)

    def trace(self, any_id: str) -> None:
        """Show the Trace screen for an id."""

        async def go() -> None:
            await self.action_show_screen("trace")
            screen = self.screen
            if isinstance(screen, TraceScreen):
                screen.trace(any_id)

        self.run_worker(go(), name="show the trace", group="trace", exit_on_error=False)

    def show_row(self, name: str, key: int, word: str) -> None:
        """Show screen ``name`` with its table's cursor on row ``key`` (a ``word``: "delivery"),
        reading the rows around it when it is older than those loaded."""

        async def go() -> None:
            await self.action_show_screen(name)
            view = self.views.get(name)
            if isinstance(view, TableScreen) and not await view.reveal_row(key):
                shown = view.live.source.show
                where = (
                    "" if shown == view.live.source.filters[0] else f" with the filter '{shown}'"
                )
                self.notify(
                    f"No {word} #{key} in the list shown{where}",
                    severity="warning",
                    markup=False,
                )

        self.run_worker(go(), name="show the row", group="trace", exit_on_error=False)

    def keys_groups(self, screen: Screen[Any]) -> list[tuple[str, list[BindingType]]]:
        """The bindings the keys panel lists: the screen shown's first, then everywhere's,
        the lists', and every other screen's."""
        from tui.screens.trace import StoryPane
        from tui.widgets.rows import RowTable

        groups: list[tuple[str, list[BindingType]]] = []
        current = screen if isinstance(screen, DashScreen) else None
        if current is not None:
            extra = list(StoryPane.BINDINGS) if isinstance(current, TraceScreen) else []
            groups.append((f"On {current.LABEL}", [*current.BINDINGS, *extra]))
        groups.append(("Everywhere", list(self.BINDINGS)))
        groups.append(("In a list", list(RowTable.BINDINGS)))
        for screen_class in SCREENS.values():
            if current is None or screen_class is not type(current):
                groups.append((f"On {screen_class.LABEL}", list(screen_class.BINDINGS)))
        return groups

    async def action_keys(self) -> None:
        from tui.widgets.keys_panel import KeysPanel, keys_text

        shown = self.screen.query(KeysPanel)
        if shown:
            await shown.remove()
            return
        text = keys_text(self.keys_groups(self.screen), self.keys_of)
        await self.screen.mount(KeysPanel(text))
        if self.dash is not None and self.dash.token_hint:
            where = "Attached to" if self.dash.attached else "Listening on"
            self.notify(
                f"{where} {self.dash.address}. {self.dash.token_hint}.", timeout=5, markup=False
            )

    async def action_demo(self) -> None:
        if self._demo is not None:
            await self._stop_demo()
            self.notify("Demo traffic stopped", timeout=2)
            return
        if self.dash is None:
            return
        dash = self.dash
        campaign = await dash.store.read(lambda conn: views.campaign_key(conn, "sample"))
        if campaign is None:
            self.notify("No campaign to send demo traffic to", severity="warning")
            return
        from listener.demo import run_demo

        async def demo() -> None:
            try:
                stats = await run_demo(dash.base_url, campaign=campaign, rate=DEMO_RATE)
                if stats.reached == 0 and stats.problem:
                    self.notify(
                        f"Demo traffic reached nothing: {stats.problem}",
                        severity="error",
                        markup=False,
                    )
            except Exception as error:  # not a worker: report it the way workers are
                self.post_message(WorkFailed("send demo traffic", "demo", error))
            finally:
                if self._demo is asyncio.current_task():
                    self._demo = None  # it ended by itself: the key starts it again
                self.post_message(DemoChanged(False))

        self._demo = asyncio.create_task(demo(), name="demo")
        self.post_message(DemoChanged(True))
        self.notify(
            f"Demo traffic to {dash.base_url}/click/{campaign} (d stops it)",
            timeout=3,
            markup=False,
        )

    async def _stop_demo(self) -> None:
        task, self._demo = self._demo, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # -- keys ---------------------------------------------------------------------------------

    def _all_bindings(self) -> Iterable[BindingType]:
        from tui.screens.trace import StoryPane

        yield from self.BINDINGS
        for screen in SCREENS.values():
            yield from screen.BINDINGS
        yield from StoryPane.BINDINGS

    def key_for(self, binding_id: str) -> str:
        """The key a binding is on now (after remapping), for hints on screen."""
        keys = self._keymap.get(binding_id) or self._default_keys.get(binding_id, "")
        first = keys.split(",")[0].strip()
        return KEY_NAMES.get(first, first)

    def keys_of(self, binding: Binding) -> str:
        """Every key a binding is on now (after remapping), for the keys panel: "↑/k"."""
        keys = (binding.id and self._keymap.get(binding.id)) or binding.key
        return "/".join(KEY_NAMES.get(key.strip(), key.strip()) for key in keys.split(","))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The palette reaches every action: the screens, the app's actions, and every
        screen's ("Deliveries: Resend — Send this request again")."""
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            if binding.action.startswith("show_screen"):
                title = f"Show {binding.description}"
                help_text = f"Switch to the {binding.description} screen ({binding.key})"
            else:
                title = binding.tooltip or binding.description
                help_text = f"{binding.description} ({self.key_for(binding.id or '')})"
            if binding.action == "quit":
                continue  # the default commands have Quit
            yield SystemCommand(title, help_text, self._runner(binding.action, self))
        # Every screen's actions, the shown screen's first; one of another screen switches
        # to it before it runs.
        names = sorted(SCREENS, key=lambda name: self.views.get(name) is not screen)
        for name in names:
            screen_class = SCREENS[name]
            for binding in screen_class.BINDINGS:
                if not isinstance(binding, Binding) or binding.key in PALETTE_LEFT_OUT:
                    continue
                title = f"{screen_class.LABEL}: {binding.description}"
                if binding.tooltip:
                    title += f" — {binding.tooltip}"
                key = self.key_for(binding.id or "")
                yield SystemCommand(
                    title,
                    f"{binding.id} ({key} on {screen_class.LABEL})",
                    self._screen_runner(name, binding.action),
                )

    def _runner(self, action: str, target: Any) -> Any:
        async def run() -> None:
            await self.run_action(action, target)

        return run

    def _screen_runner(self, name: str, action: str) -> Any:
        async def run() -> None:
            await self.action_show_screen(name)
            view = self.views.get(name)
            if view is not None:
                await self.run_action(action, view)

        return run
