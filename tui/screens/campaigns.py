"""Campaigns & rules: each campaign's postback configs and their conditional rules. A change is
saved at once (the next conversion is decided by it). Below the rule, panels take turns: the
before/after preview of the changes (the conversions they flip, kept current as conversions
arrive), the config's target (with its URL editor), a test postback's answer, and a
re-evaluation of the campaign's conversions (a dry run first)."""

from __future__ import annotations

import dataclasses
import math
import shlex
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Checkbox, Input, Label, SelectionList, Static
from textual.widgets.selection_list import Selection

from listener.outbound import unknown_macros
from store import workspace
from store.read import queries
from store.records import S2S, STATUSES, Campaign, PostbackConfig, TrafficSource
from tui import format as fmt
from tui.context import ApiError
from tui.screens.base import DashScreen
from tui.widgets.answers import reevaluation_text, test_answer_text
from tui.widgets.rows import Column, RowTable, TableRow
from tui.widgets.target import macro_help, target_text, url_holder, url_template
from tui.widgets.toggles import Choices, Toggle
from tui.widgets.what_if import WhatIf, what_if, what_if_text

WHAT_IF_SAMPLE = 500
RELOAD_EVERY = 2.0  # seconds between re-reads of the configs while traffic flows
PREVIEW_EVERY = 1.0  # seconds between recounts of the preview while conversions arrive
REEVALUATE_SINCE = "24h"  # the re-evaluation's default range: the last 24 hours
# The panels below the rule, in the order of their line of keys: (panel, binding id, label).
PANELS = (
    ("what-if", "rules.preview", "preview"),
    ("target", "rules.target", "target"),
    ("test", "rules.test", "test"),
    ("reevaluate", "rules.reevaluate", "re-evaluate"),
)


@dataclass
class Workspace:
    campaigns: list[Campaign]
    known_types: list[str]
    seen_types: list[str]
    traffic_sources: list[TrafficSource]


@dataclass
class WorkspaceLoaded(Message, bubble=False):
    workspace: Workspace


@dataclass
class WhatIfLoaded(Message, bubble=False):
    config_id: int
    what_if: WhatIf


@dataclass
class TestAnswered(Message, bubble=False):
    config_id: int
    answer: dict[str, Any]


@dataclass
class Reevaluated(Message, bubble=False):
    campaign: str
    since: str
    answer: dict[str, Any]


@dataclass
class ParamsLoaded(Message, bubble=False):
    campaign_id: int
    params: list[str]


def yes(value: bool) -> Text:
    return Text("yes", style="green") if value else Text("no", style="dim")


def _list(values: list[str]) -> Text:
    return fmt.literal(", ".join(values) if values else "any")


def config_cells(campaign: Campaign, config: PostbackConfig) -> dict[str, Text]:
    minimum = "—" if config.min_payout is None else fmt.payout(config.min_payout)
    return {
        "campaign": fmt.literal(campaign.key),
        "postback": fmt.literal(config.name, "bold"),
        "kind": fmt.literal(config.kind),
        "enabled": yes(config.enabled),
        "conditional": yes(config.conditional),
        "types": _list(config.types) if config.conditional else Text("—", style="dim"),
        "statuses": _list(config.statuses) if config.conditional else Text("—", style="dim"),
        "min": Text(minimum if config.conditional else "—"),
    }


class CampaignsScreen(DashScreen):
    NAME = "campaigns"
    KEY = "2"
    LABEL = "Campaigns"

    COLUMNS: ClassVar[list[Column]] = [
        Column("campaign", "campaign", 8, 18, weight=1, priority=2),
        Column("postback", "postback", 12, 24, weight=2),
        Column("kind", "kind", 6, 9),
        Column("enabled", "on", 3),
        Column("conditional", "if", 3),
        Column("types", "types", 8, None, weight=2),
        Column("statuses", "statuses", 8, None, weight=2),
        Column("min", "min", 5, 9, justify="right", priority=1),
    ]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e", "flip('enabled')", "On/off", tooltip="Enable or disable", id="rules.enabled"),
        Binding(
            "c", "flip('conditional')", "Cond", tooltip="Conditional or not", id="rules.conditional"
        ),
        Binding(
            "u",
            "flip('refire')",
            "Refire",
            tooltip="Refire on update",
            show=False,
            id="rules.refire",
        ),
        Binding("t", "focus_part('types')", "Types", tooltip="Choose types", id="rules.types"),
        Binding(
            "s", "focus_part('statuses')", "Status", tooltip="Choose statuses", id="rules.statuses"
        ),
        Binding(
            "p",
            "focus_part('min-payout')",
            "Payout",
            tooltip="Set the minimum payout",
            id="rules.min_payout",
        ),
        Binding(
            "w",
            "panel('what-if')",
            "Preview",
            tooltip="Show which conversions the changes flip",
            show=False,
            id="rules.preview",
        ),
        Binding(
            "o",
            "panel('target')",
            "Target",
            tooltip="Show where the postback config sends (secrets masked)",
            show=False,
            id="rules.target",
        ),
        Binding(
            "l",
            "edit_url",
            "Edit URL",
            tooltip="Edit the URL template, with macro help",
            show=False,
            id="rules.url",
        ),
        Binding(
            "T",
            "test",
            "Test",
            tooltip="Send a test postback to the real target (not a conversion)",
            show=False,
            id="rules.test",
        ),
        Binding(
            "R",
            "reevaluate",
            "Re-evaluate",
            tooltip="Dry-run the campaign's conversions through the current rules; again: record",
            show=False,
            id="rules.reevaluate",
        ),
        Binding(
            "F",
            "record(True)",
            "Record+fire",
            tooltip="Record the re-evaluation's dry run and send the newly fired postbacks",
            show=False,
            id="rules.fire",
        ),
        Binding("escape", "focus_configs", "Configs", show=False, id="rules.back"),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workspace: Workspace | None = None
        self.configs: dict[int, tuple[Campaign, PostbackConfig]] = {}
        self.selected: int | None = None
        self._saving = 0  # saves under way: a reload read before them would be stale
        self._last_reload = 0.0
        self._type_names: list[str] = []
        self.what_if: WhatIf | None = None  # what the screen shows for the selected rule
        # each config as it was before this screen's first change to it: the preview's "before"
        self._baseline: dict[int, PostbackConfig] = {}
        self._what_if_timer: Timer | None = None
        self._what_if_at = -math.inf
        self.panel = "what-if"  # the panel shown below the rule
        self.tested: dict[int, dict[str, Any] | None] = {}  # config -> answer (None: sending)
        # the last re-evaluation: (campaign key, since, the API's answer); a dry run awaits
        # the confirming key
        self.reevaluation: tuple[str, str, dict[str, Any]] | None = None
        self.asking: str | None = None  # what the input line asks for: url, test, since
        self._params: dict[int, list[str]] = {}  # campaign id -> its clicks' parameters
        self._unsaved_url: str | None = None  # a URL with unknown macros, shown once
        self.shown = Text()  # the panel's text as shown
        self.help_shown = Text()  # the URL editor's macro help as shown

    def body(self) -> Any:
        with Vertical(id="campaigns-body"):
            yield RowTable(self.COLUMNS, placeholder="No campaigns configured.", id="configs")
            with Vertical(id="rule-editor"):
                yield Static("", id="rule-title", markup=False)
                with Horizontal(id="rule-flags"):
                    yield Toggle("enabled", id="enabled", compact=True)
                    yield Toggle("conditional", id="conditional", compact=True)
                    yield Toggle("refire on update", id="refire", compact=True)
                with Horizontal(id="rule-lists"):
                    with Vertical(classes="rule-part"):
                        yield Label("Types (any chosen)", classes="rule-label")
                        yield Choices(id="types", compact=True)
                    with Vertical(classes="rule-part"):
                        yield Label("Statuses (any chosen)", classes="rule-label")
                        yield Choices(
                            *(Selection(status, status) for status in STATUSES),
                            id="statuses",
                            compact=True,
                        )
                    with Vertical(classes="rule-part", id="payout-part"):
                        yield Label("Min payout (Enter)", classes="rule-label")
                        yield Input(
                            placeholder="none", id="min-payout", compact=True, type="number"
                        )
                with Vertical(id="action-bar"):
                    yield Static("", id="action-prompt", markup=False)
                    yield Input(id="action-input", compact=True, select_on_focus=False)
                    yield Static("", id="action-help", markup=False)
                yield Static("", id="panel-keys", markup=False)
                with VerticalScroll(id="rule-panel"):
                    yield Static("", id="what-if", markup=False)

    @property
    def table(self) -> RowTable:
        return self.query_one("#configs", RowTable)

    def on_mount(self) -> None:
        self.table.focus()
        self.query_one("#rule-editor").display = False
        self.query_one("#action-bar").display = False

    def on_screen_resume(self, event: Any) -> None:
        self._reload(force=True)

    def data_changed(self) -> None:
        self._reload()
        self._refresh_what_if()

    def _reload(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_reload < RELOAD_EVERY:
            return
        self._last_reload = now

        self._load_workspace()

    @work(name="read the campaigns", group="campaigns", exclusive=True, exit_on_error=False)
    async def _load_workspace(self) -> None:
        loaded = await self.dash.store.read(
            lambda conn: Workspace(
                workspace.campaigns(conn),
                workspace.conversion_types(conn),
                queries.seen_types(conn),
                workspace.traffic_sources(conn),
            )
        )
        self.post_message(WorkspaceLoaded(loaded))

    def on_workspace_loaded(self, message: WorkspaceLoaded) -> None:
        if self._saving:
            return  # read before a save committed; the save reloads when it is done
        rows = []
        configs = {}
        for campaign in message.workspace.campaigns:
            for config in campaign.postbacks:
                assert config.id is not None
                configs[config.id] = (campaign, config)
                rows.append(TableRow(config.id, config_cells(campaign, config), config))
        if message.workspace == self.workspace and configs == self.configs:
            return  # what is shown is what is stored: redrawing would lay the screen out again
        self.workspace = message.workspace
        self.configs = configs
        self.table.set_rows(rows)
        self.table.styles.height = min(len(rows), 8) + 1 if rows else 2
        if self.table.cursor_key is not None:
            self._show_editor(self.table.cursor_key)

    def on_row_table_highlighted(self, message: RowTable.Highlighted) -> None:
        if message.key is not None and message.key != self.selected:
            self._show_editor(message.key, what_if=True)

    def on_row_table_selected(self, message: RowTable.Selected) -> None:
        self.action_focus_part("statuses")

    # -- the editor ---------------------------------------------------------------------------

    def _show_editor(self, config_id: int, what_if: bool = False) -> None:
        found = self.configs.get(config_id)
        if found is None or self.workspace is None:
            return
        campaign, config = found
        changed_selection = config_id != self.selected
        self.selected = config_id
        if changed_selection:
            self._close_input()
        self.query_one("#rule-editor").display = True
        title = Text(end="")
        title.append_text(fmt.literal(campaign.key, "bold"))
        title.append(" / ")
        title.append_text(fmt.literal(config.name, "bold"))
        title.append(" (")
        title.append_text(fmt.literal(config.kind))
        title.append(")")
        if not config.conditional:
            title.append("  not conditional: fires for every conversion", style="dim")
        self.query_one("#rule-title", Static).update(title)
        self.query_one("#enabled", Checkbox).value = config.enabled
        self.query_one("#conditional", Checkbox).value = config.conditional
        self.query_one("#refire", Checkbox).value = config.refire_on_update
        types = self.query_one("#types", SelectionList)
        names = list(self.workspace.known_types)
        names += [n for n in self.workspace.seen_types if n not in names]
        names += [n for n in config.types if n not in names]
        self._type_names = names
        options = [
            Selection(
                _type_label(name, name in self.workspace.known_types),
                name,
                name in config.types,
            )
            for name in names
        ]
        if changed_selection or types.option_count != len(options):
            highlighted = types.highlighted
            types.clear_options()
            types.add_options(options)
            if highlighted is not None and not changed_selection:
                types.highlighted = min(highlighted, len(options) - 1)
        else:
            _sync(types, config.types)
        _sync(self.query_one("#statuses", SelectionList), config.statuses)
        payout = self.query_one("#min-payout", Input)
        if not payout.has_focus:
            payout.value = "" if config.min_payout is None else fmt.payout(config.min_payout)
        for part in ("#types", "#statuses", "#payout-part"):
            self.query_one(part).set_class(not config.conditional, "inactive")
        if what_if or changed_selection:
            self.what_if = None
            self._what_if(config_id)
        self._show_panel()

    def _current(self) -> tuple[Campaign, PostbackConfig] | None:
        return None if self.selected is None else self.configs.get(self.selected)

    def _traffic_source(self, campaign: Campaign) -> TrafficSource:
        assert self.workspace is not None
        for source in self.workspace.traffic_sources:
            if source.name == campaign.traffic_source:
                return source
        return TrafficSource(campaign.traffic_source)  # removed meanwhile: shown without URL

    def _edited(self, **changes: Any) -> None:
        """Save the selected rule with ``changes`` unless nothing changes."""
        found = self._current()
        if found is None:
            return
        campaign, config = found
        updated = dataclasses.replace(config, **changes)
        if updated == config:
            return
        assert updated.id is not None
        self._baseline.setdefault(updated.id, config)
        self.configs[updated.id] = (campaign, updated)
        row = TableRow(updated.id, config_cells(campaign, updated), updated)
        self.table.update([row])
        self._show_editor(updated.id)
        config_id = updated.id

        self._saving += 1

        async def save() -> None:
            try:
                await self.dash.save_rule(updated)
            except Exception:
                self._saving -= 1
                self._reload(force=True)  # show the rule as it is stored, not as edited
                raise
            self._saving -= 1
            await self._compute_what_if(config_id)
            self._reload(force=True)

        self.run_worker(save(), name="save the rule", group="save", exit_on_error=False)

    def on_checkbox_changed(self, message: Checkbox.Changed) -> None:
        field = {"enabled": "enabled", "conditional": "conditional", "refire": "refire_on_update"}
        name = field.get(message.checkbox.id or "")
        if name is not None:
            self._edited(**{name: message.value})

    def on_selection_list_selected_changed(self, message: SelectionList.SelectedChanged) -> None:  # type: ignore[type-arg]
        found = self._current()
        if found is None:
            return
        chosen = [str(value) for value in message.selection_list.selected]
        if message.selection_list.id == "types":
            # keep the order the user sees (known types first)
            self._edited(types=[name for name in self._type_names if name in chosen])
        elif message.selection_list.id == "statuses":
            self._edited(statuses=[status for status in STATUSES if status in chosen])

    def on_input_submitted(self, message: Input.Submitted) -> None:
        if message.input.id == "action-input":
            self._answered(message.value)
            return
        if message.input.id != "min-payout":
            return
        value = message.value.strip()
        if not value:
            self._edited(min_payout=None)
            return
        try:
            minimum = float(value)
        except ValueError:
            minimum = math.nan
        if not math.isfinite(minimum) or minimum < 0:
            self.notify(
                f"min payout must be a number of 0 or more, not {value!r}",
                severity="error",
                markup=False,
            )
            return
        self._edited(min_payout=minimum)
        self.table.focus()

    def on_input_changed(self, message: Input.Changed) -> None:
        if message.input.id == "action-input" and self.asking == "url":
            self._unsaved_url = None
            self._show_url_help()

    # -- the panels ---------------------------------------------------------------------------

    def _key(self, binding_id: str) -> str:
        """The key that runs one of this screen's bindings now (``[keys]`` may remap it)."""
        for active in self.active_bindings.values():
            if active.binding.id == binding_id:
                return self.app.get_key_display(active.binding)
        return binding_id

    def _show_panel(self, panel: str | None = None) -> None:
        """Show ``panel`` (None: the one shown) for the selected config."""
        self.panel = panel or self.panel
        found = self._current()
        if found is None:
            return
        campaign, config = found
        keys = Text(end="")
        for name, binding_id, label in PANELS:
            style = "reverse" if name == self.panel else "dim"
            keys.append(f" {self._key(binding_id)} {label} ", style)
        keys.append(f" {self._key('rules.url')} edit URL", style="dim")
        self.query_one("#panel-keys", Static).update(keys)
        # the rule's lists make way for the other panels and the input line
        lists = self.panel == "what-if" and self.asking is None
        self.query_one("#rule-lists").display = lists
        self.shown = self._panel_text(campaign, config)
        self.query_one("#what-if", Static).update(self.shown)

    def _panel_text(self, campaign: Campaign, config: PostbackConfig) -> Text:
        assert config.id is not None
        if self.panel == "target":
            source = self._traffic_source(campaign)
            return target_text(config, source, self._key("rules.url"))
        if self.panel == "test":
            if config.id not in self.tested:
                return Text(
                    f"No test postback sent for '{config.name}' yet: {self._key('rules.test')} "
                    "sends one to its real target with sample values, or values you type.",
                    style="dim",
                )
            answer = self.tested[config.id]
            if answer is None:
                return Text(f"Sending a test postback of '{config.name}'…", style="dim")
            return test_answer_text(answer)
        if self.panel == "reevaluate":
            if self.reevaluation is None or self.reevaluation[0] != campaign.key:
                return Text(
                    f"{self._key('rules.reevaluate')} runs the conversions of '{campaign.key}' "
                    "through the current rules: a dry run first lists each decision that would "
                    "change and why.",
                    style="dim",
                )
            key, since, answer = self.reevaluation
            return reevaluation_text(
                answer, key, since, self._key("rules.reevaluate"), self._key("rules.fire")
            )
        if self.what_if is None:
            return Text("Counting…", style="dim")
        return what_if_text(self.what_if)

    def action_panel(self, panel: str) -> None:
        if self._current() is None:
            self.nothing("postback config")
            return
        self._show_panel(panel)

    # -- the input line: URL template, test values, re-evaluation range -------------------------

    def _ask(self, asking: str, prompt: str, value: str, placeholder: str = "") -> None:
        self.asking = asking
        self.query_one("#action-bar").display = True
        self.query_one("#action-prompt", Static).update(prompt)
        line = self.query_one("#action-input", Input)
        line.placeholder = placeholder
        line.value = value
        line.cursor_position = len(value)
        self.query_one("#action-help", Static).update("")
        line.focus()

    def _close_input(self) -> None:
        if self.asking is None:
            return
        self.asking = None
        self._unsaved_url = None
        self.query_one("#action-bar").display = False
        self._show_panel()

    def _answered(self, value: str) -> None:
        asking = self.asking
        if asking == "url":
            self._save_url(value.strip())
        elif asking == "test":
            self._start_test(value)
        elif asking == "since":
            self._close_input()
            self.table.focus()
            self._start_reevaluation(value.strip() or REEVALUATE_SINCE)

    # -- the target and its URL template --------------------------------------------------------

    def action_edit_url(self) -> None:
        found = self._current()
        if found is None:
            self.nothing("postback config")
            return
        campaign, config = found
        if config.kind != S2S:
            self.notify(
                f"postback '{config.name}' is of kind {config.kind}: it sends to the platform's "
                "API, not a URL template; its settings are in the config file",
                severity="warning",
                markup=False,
            )
            return
        source = self._traffic_source(campaign)
        holder = url_holder(config, source)
        if holder is None:
            prompt = (
                f"URL of postback '{config.name}' (its own; empty: traffic source "
                f"'{source.name}''s). Enter saves, Esc cancels"
            )
        else:
            prompt = (
                f"postback_url of traffic source '{source.name}' (for its campaigns' "
                "postbacks without their own URL). Enter saves, Esc cancels"
            )
        self._show_panel("target")
        self._ask("url", prompt, url_template(config, source), "http://…?id={external_id}")
        self._show_panel()
        self._show_url_help()
        assert campaign.id is not None
        if campaign.id not in self._params:
            self._load_params(campaign.id)

    @work(name="read the clicks' parameters", group="params", exit_on_error=False)
    async def _load_params(self, campaign_id: int) -> None:
        params = await self.dash.store.read(lambda conn: queries.click_params(conn, campaign_id))
        self.post_message(ParamsLoaded(campaign_id, params))

    def on_params_loaded(self, message: ParamsLoaded) -> None:
        self._params[message.campaign_id] = message.params
        self._show_url_help()

    def _campaign_params(self) -> list[str]:
        found = self._current()
        return [] if found is None else self._params.get(found[0].id or 0, [])

    def _show_url_help(self) -> None:
        if self.asking != "url":
            return
        template = self.query_one("#action-input", Input).value
        self.help_shown = macro_help(template, self._campaign_params())
        self.query_one("#action-help", Static).update(self.help_shown)

    def _save_url(self, url: str) -> None:
        found = self._current()
        if found is None:
            return
        campaign, config = found
        unknown = unknown_macros(url, self._campaign_params())
        if unknown and url != self._unsaved_url:
            self._unsaved_url = url
            names = ", ".join(f"{{{name}}}" for name in unknown)
            self.notify(
                f"{names}: no such macro, and no parameter of this campaign's recent clicks; a "
                "delivery would send it empty. Fix it, or press Enter again to save as it is",
                severity="warning",
                markup=False,
            )
            return
        source = self._traffic_source(campaign)
        holder = url_holder(config, source)
        self._close_input()
        self.table.focus()
        self._saving += 1

        async def save() -> None:
            try:
                await self.dash.save_url(config, holder, url)
            finally:
                self._saving -= 1
                self._reload(force=True)
            where = f"traffic source '{holder}'" if holder else f"postback '{config.name}'"
            self.notify(
                f"Saved the URL of {where}: the next conversion's delivery is built from it",
                markup=False,
            )

        self.run_worker(save(), name="save the URL", group="save", exit_on_error=False)
        self._show_panel("target")

    # -- the test postback ----------------------------------------------------------------------

    def action_test(self) -> None:
        found = self._current()
        if found is None:
            self.nothing("postback config")
            return
        self._show_panel("test")
        self._ask(
            "test",
            f"Test postback of '{found[1].name}' to its real target: values as name=value "
            "(payout=5 status=pending sub1=fr), empty for the samples. Enter sends, Esc cancels",
            "",
            "payout=1.00 status=approved",
        )

    def _start_test(self, typed: str) -> None:
        found = self._current()
        if found is None:
            return
        try:
            values = _values(typed)
        except ValueError as error:
            self.notify(str(error), severity="error", markup=False)
            return
        campaign, config = found
        assert config.id is not None
        self._close_input()
        self.table.focus()
        self.tested[config.id] = None
        self._show_panel("test")
        self._send_test(config.id, campaign.key, values)

    @work(name="send the test postback", group="test", exit_on_error=False)
    async def _send_test(self, config_id: int, campaign: str, values: dict[str, str]) -> None:
        payload = {"campaign": campaign, "values": values}
        try:
            status, answer = await self.dash.api(
                "POST", f"/api/postbacks/{config_id}/test", payload
            )
            if status == 404:
                raise ApiError(str(answer.get("error", answer)))
        except Exception:
            self.tested.pop(config_id, None)
            self._show_panel()
            raise
        self.post_message(TestAnswered(config_id, answer))

    def on_test_answered(self, message: TestAnswered) -> None:
        self.tested[message.config_id] = message.answer
        if message.config_id == self.selected:
            self._show_panel("test")

    # -- re-evaluation --------------------------------------------------------------------------

    def _dry_run(self) -> tuple[str, str, dict[str, Any]] | None:
        """The re-evaluation dry run shown for the selected campaign, if one is."""
        found = self._current()
        if found is None or self.reevaluation is None or self.panel != "reevaluate":
            return None
        key, _, answer = self.reevaluation
        return self.reevaluation if key == found[0].key and answer.get("dry_run") else None

    def action_reevaluate(self) -> None:
        found = self._current()
        if found is None:
            self.nothing("postback config")
            return
        if self._dry_run() is not None:
            self.action_record(False)
            return
        self._show_panel("reevaluate")
        self._ask(
            "since",
            f"Re-evaluate the conversions of campaign '{found[0].key}' since (30m, 24h, 7d or "
            "a UTC time such as 2026-01-31T12:00). Enter runs a dry run (changes nothing), Esc "
            "cancels",
            REEVALUATE_SINCE,
        )

    def _start_reevaluation(self, since: str, ids: list[int] | None = None, **run: bool) -> None:
        found = self._current()
        if found is None:
            return
        self._show_panel("reevaluate")
        self._reevaluate(found[0].key, since, ids or [], **run)

    @work(name="re-evaluate the campaign", group="reevaluate", exclusive=True, exit_on_error=False)
    async def _reevaluate(
        self, campaign: str, since: str, ids: list[int], dry_run: bool = True, fire: bool = False
    ) -> None:
        payload: dict[str, Any] = {
            "campaign": campaign,
            "since": since,
            "dry_run": dry_run,
            "fire": fire,
        }
        if ids:
            payload["ids"] = ids
        status, answer = await self.dash.api("POST", "/api/reevaluate", payload)
        if status == 404:
            raise ApiError(str(answer.get("error", answer)))
        self.post_message(Reevaluated(campaign, since, answer))

    def on_reevaluated(self, message: Reevaluated) -> None:
        self.reevaluation = (message.campaign, message.since, message.answer)
        answer = message.answer
        if not answer.get("dry_run"):
            recorded = len(answer["changes"])
            words = f"Re-evaluated '{message.campaign}': recorded {recorded} changed decision"
            words += "" if recorded == 1 else "s"
            if answer.get("fire"):
                queued = len(answer.get("deliveries") or [])
                words += f", queued {queued} " + ("delivery" if queued == 1 else "deliveries")
            self.notify(words, markup=False)
        found = self._current()
        if found is not None and found[0].key == message.campaign:
            self._show_panel("reevaluate")

    def action_record(self, fire: bool) -> None:
        """Record the dry run shown (``fire``: and send the newly fired postbacks)."""
        shown = self._dry_run()
        if shown is None:
            self.notify(
                f"Nothing to record: {self._key('rules.reevaluate')} first runs a dry run of "
                "the selected campaign",
                severity="warning",
                markup=False,
            )
            return
        _, since, answer = shown
        ids = sorted({change["conversion_id"] for change in answer["changes"]})
        if not ids:
            self.notify("The dry run changes no decision: nothing to record", markup=False)
            return
        # only the conversions the dry run listed, planned again by the same rules
        self._start_reevaluation(since, ids, dry_run=False, fire=fire)

    # -- what-if ------------------------------------------------------------------------------

    def _refresh_what_if(self) -> None:
        """Recount the preview as conversions arrive, at most once every PREVIEW_EVERY."""
        if self._what_if_timer is not None or self.selected is None:
            return
        wait = self._what_if_at + PREVIEW_EVERY - time.monotonic()
        if wait <= 0:
            self._what_if_due()
        else:
            self._what_if_timer = self.set_timer(wait, self._what_if_due)

    def _what_if_due(self) -> None:
        self._what_if_timer = None
        if self.selected is not None:
            self._what_if(self.selected)

    @work(
        name="count what the rule lets through",
        group="what-if",
        exclusive=True,
        exit_on_error=False,
    )
    async def _what_if(self, config_id: int) -> None:
        await self._compute_what_if(config_id)

    async def _compute_what_if(self, config_id: int) -> None:
        """Count the campaign's latest conversions the rule lets through, as it is and as it
        was before this screen's first change to it, and list the ones that flip."""
        found = self.configs.get(config_id)
        if found is None:
            return
        self._what_if_at = time.monotonic()
        campaign, config = found
        before = self._baseline.get(config_id, config)
        assert campaign.id is not None
        campaign_id, key = campaign.id, campaign.key
        # read and decided on the database's thread: off the UI's
        result = await self.dash.store.read(
            lambda conn: what_if(
                key, before, config, queries.recent_conversions(conn, campaign_id, WHAT_IF_SAMPLE)
            )
        )
        self.post_message(WhatIfLoaded(config_id, result))

    def on_what_if_loaded(self, message: WhatIfLoaded) -> None:
        if message.config_id == self.selected:
            self.what_if = message.what_if
            if self.panel == "what-if":
                self._show_panel()

    # -- actions ------------------------------------------------------------------------------

    def action_flip(self, name: str) -> None:
        if self._current() is None:
            self.nothing("postback config")
            return
        self.query_one(f"#{name}", Checkbox).toggle()

    def action_focus_part(self, name: str) -> None:
        if self._current() is None:
            self.nothing("postback config")
            return
        if self.panel != "what-if" or self.asking is not None:
            self._close_input()
            self._show_panel("what-if")  # the rule's lists show with the preview
        self.query_one(f"#{name}").focus()

    def action_focus_configs(self) -> None:
        if self.asking is not None:
            self._close_input()
        elif self._dry_run() is not None:
            self.reevaluation = None
            self._show_panel()
        self.table.focus()


def _values(typed: str) -> dict[str, str]:
    """Typed test values, ``payout=5 sub1="fr x"``, as a dict; a ValueError says what is
    wrong."""
    try:
        words = shlex.split(typed)
    except ValueError as error:
        raise ValueError(f"cannot read the values {typed!r}: {error}") from None
    values = {}
    for word in words:
        name, equals, value = word.partition("=")
        if not equals or not name:
            raise ValueError(f"{word!r} is not name=value: write payout=5 status=pending")
        values[name] = value
    return values


def _type_label(name: str, known: bool) -> Text:
    label = fmt.literal(name)
    if not known:
        label.append(" (seen)", style="dim italic")
    return label


def _sync(selection_list: SelectionList[str], chosen: list[str]) -> None:
    """Select exactly ``chosen`` (posting no change when nothing differs)."""
    if set(selection_list.selected) == set(chosen):
        return
    selection_list.deselect_all()
    for value in chosen:
        selection_list.select(value)


SCREEN = CampaignsScreen
