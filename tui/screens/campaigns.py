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
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Checkbox, Input, SelectionList

from listener.outbound import named_values, unknown_macros
from store import workspace
from store.read import queries
from store.records import S2S, STATUSES, Campaign, PostbackConfig, TrafficSource
from tui import format as fmt
from tui.screens.base import DashScreen
from tui.widgets.action_bar import ActionBar
from tui.widgets.rows import Column, RowTable, TableRow
from tui.widgets.rule_editor import RuleEditor
from tui.widgets.rule_panels import RulePanels, Subject
from tui.widgets.target import macro_help, url_holder, url_template
from tui.widgets.what_if import WhatIf

RELOAD_EVERY = 2.0  # seconds between re-reads of the configs while traffic flows
# lines of the screen besides the configs' rows: header, rule, panel keys, 3 of the panel
TABLE_ROOM = 19
REEVALUATE_SINCE = "24h"  # the re-evaluation's default range: the last 24 hours


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
        # each config as it was before this screen's first change to it: the preview's "before"
        self._baseline: dict[int, PostbackConfig] = {}
        self._params: dict[int, list[str]] = {}  # campaign id -> its clicks' parameters
        self._unsaved_url: str | None = None  # a URL with unknown macros, shown once

    def body(self) -> Any:
        with Vertical(id="campaigns-body"):
            yield RowTable(self.COLUMNS, placeholder="No campaigns configured.", id="configs")
            with Vertical(id="rule-editor"):
                yield RuleEditor(id="rule")
                yield ActionBar(id="action-bar")
                yield RulePanels(self.dash, id="rule-panels")

    @property
    def table(self) -> RowTable:
        return self.query_one("#configs", RowTable)

    @property
    def editor(self) -> RuleEditor:
        return self.query_one(RuleEditor)

    @property
    def bar(self) -> ActionBar:
        return self.query_one(ActionBar)

    @property
    def panels(self) -> RulePanels:
        return self.query_one(RulePanels)

    @property
    def what_if(self) -> WhatIf | None:
        """The before/after preview shown for the selected rule (None: being counted)."""
        return self.panels.what_if

    def on_mount(self) -> None:
        if not self.dash_app.still_running():  # (built ahead as the app closes: no widgets)
            return
        self.table.focus()
        self.query_one("#rule-editor").display = False

    def on_screen_resume(self, event: Any) -> None:
        self._reload(force=True)

    def data_changed(self) -> None:
        self._reload()
        self.panels.recount_soon()

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
        self._fit_table()
        if self.table.cursor_key is not None:
            self._show_editor(self.table.cursor_key)

    def _fit_table(self) -> None:
        """As many config rows as leave the rule and a few lines of its panel in view (8 at
        most; at 80x24, 5), the rest scrolled."""
        count = len(self.configs)
        shown = max(3, min(8, self.size.height - TABLE_ROOM)) if self.size.height else 8
        self.table.styles.height = min(count, shown) + 1 if count else 2

    def on_resize(self, event: Any) -> None:
        self._fit_table()

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
        source = self._traffic_source(campaign)
        warning = ""
        if config.kind == S2S and not url_template(config, source):
            warning = f"No postback URL: {self.panels.key('rules.url')} writes one"
        loaded = self.workspace
        self.editor.show(campaign, config, loaded.known_types, loaded.seen_types, warning)
        if what_if or changed_selection:
            self.panels.what_if = None
        self._show_panel()
        if what_if or changed_selection:
            self.panels.recount()

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
        self.panels.recount()

        self._saving += 1

        async def save() -> None:
            try:
                await self.dash.save_rule(updated)
            except Exception:
                self._saving -= 1
                self._reload(force=True)  # show the rule as it is stored, not as edited
                raise
            self._saving -= 1
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
            self._edited(types=[name for name in self.editor.type_names if name in chosen])
        elif message.selection_list.id == "statuses":
            self._edited(statuses=[status for status in STATUSES if status in chosen])

    def on_input_submitted(self, message: Input.Submitted) -> None:
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
        if self.bar.asking == "url" and message.input is self.bar.line:
            self._unsaved_url = None
            self._show_url_help()

    # -- the panels ---------------------------------------------------------------------------

    def _show_panel(self, panel: str | None = None) -> None:
        """Show ``panel`` (None: the one shown) for the selected config; the rule's lists make
        way for the other panels and for the input line."""
        found = self._current()
        if found is None:
            return
        campaign, config = found
        assert config.id is not None
        before = self._baseline.get(config.id, config)
        subject = Subject(campaign, config, self._traffic_source(campaign), before)
        self.panels.show(subject, panel)
        self.editor.show_lists(self.panels.panel == "what-if" and self.bar.asking is None)

    def action_panel(self, panel: str) -> None:
        if self._current() is None:
            self.nothing("postback config")
            return
        self._show_panel(panel)

    # -- the input line: URL template, test values, re-evaluation range -------------------------

    def _ask(self, asking: str, prompt: str, value: str, placeholder: str = "") -> None:
        self.bar.ask(asking, prompt, value, placeholder)
        self._show_panel()

    def _close_input(self) -> None:
        if self.bar.asking is None:
            return
        self.bar.close()
        self._unsaved_url = None
        self._show_panel()

    def on_action_bar_answered(self, message: ActionBar.Answered) -> None:
        if message.asking == "url":
            self._save_url(message.value.strip())
        elif message.asking == "test":
            self._start_test(message.value)
        elif message.asking == "since":
            self._close_input()
            self.table.focus()
            self.panels.reevaluate(message.value.strip() or REEVALUATE_SINCE)

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
        self.panels.panel = "target"
        self._ask("url", prompt, url_template(config, source), "http://…?id={external_id}")
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
        if self.bar.asking == "url":
            self.bar.help(macro_help(self.bar.value, self._campaign_params()))

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
        self.panels.panel = "test"
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
            values = named_values(shlex.split(typed))
        except ValueError as error:
            self.notify(str(error), severity="error", markup=False)
            return
        self._close_input()
        self.table.focus()
        self.panels.send_test(values)

    # -- re-evaluation --------------------------------------------------------------------------

    def action_reevaluate(self) -> None:
        found = self._current()
        if found is None:
            self.nothing("postback config")
            return
        if self.panels.dry_run() is not None:
            self.panels.record(fire=False)
            return
        self.panels.panel = "reevaluate"
        self._ask(
            "since",
            f"Re-evaluate the conversions of campaign '{found[0].key}' since (30m, 24h, 7d or "
            "a UTC time such as 2026-01-31T12:00). Enter runs a dry run (changes nothing), Esc "
            "cancels",
            REEVALUATE_SINCE,
        )

    def action_record(self, fire: bool) -> None:
        self.panels.record(fire)

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
        if self.panels.panel != "what-if" or self.bar.asking is not None:
            self._close_input()
            self._show_panel("what-if")  # the rule's lists show with the preview
        self.query_one(f"#{name}").focus()

    def action_focus_configs(self) -> None:
        if self.bar.asking is not None:
            self._close_input()
        else:
            self.panels.close_dry_run()
        self.table.focus()


SCREEN = CampaignsScreen
