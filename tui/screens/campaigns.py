"""Campaigns & rules: each campaign's postback configs and their conditional rules. A change is
saved at once (the next conversion is decided by it), and the screen shows how many of the
campaign's last conversions would have fired before and after the change."""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Checkbox, Input, Label, SelectionList, Static
from textual.widgets.selection_list import Selection

from listener.rules import would_fire
from store import workspace
from store.read import queries
from store.records import STATUSES, Campaign, PostbackConfig
from tui import format as fmt
from tui.screens.base import DashScreen
from tui.widgets.rows import Column, RowTable, TableRow
from tui.widgets.toggles import Choices, Toggle

WHAT_IF_SAMPLE = 500
RELOAD_EVERY = 2.0  # seconds between re-reads of the configs while traffic flows


@dataclass
class Workspace:
    campaigns: list[Campaign]
    known_types: list[str]
    seen_types: list[str]


@dataclass
class WorkspaceLoaded(Message, bubble=False):
    workspace: Workspace


@dataclass
class WhatIf:
    """How many of a campaign's latest conversions pass a rule, before and after a change."""

    campaign: str
    sample: int
    before: int
    after: int
    changed: bool


@dataclass
class WhatIfLoaded(Message, bubble=False):
    config_id: int
    what_if: WhatIf


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


def what_if_text(result: WhatIf) -> Text:
    text = Text(end="")
    if result.sample == 0:
        text.append(f"No conversions of '{result.campaign}' yet to test this rule on.", "dim")
        return text
    latest = "The last conversion" if result.sample == 1 else f"Last {result.sample} conversions"
    text.append(f"{latest} of ", style="dim")
    text.append_text(fmt.literal(result.campaign))
    text.append(": ", style="dim")
    if not result.changed:
        text.append(f"{result.after}", style="bold")
        text.append(" pass this rule.")
        return text
    text.append(f"{result.before}", style="bold")
    text.append(" would have fired before this change, ")
    text.append(f"{result.after}", style="bold")
    delta = result.after - result.before
    text.append(" after ")
    text.append(f"({delta:+d})", style="bold green" if delta > 0 else "bold magenta")
    text.append(".")
    return text


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
                yield Static("", id="what-if", markup=False)

    @property
    def table(self) -> RowTable:
        return self.query_one("#configs", RowTable)

    def on_mount(self) -> None:
        self.table.focus()
        self.query_one("#rule-editor").display = False

    def on_screen_resume(self, event: Any) -> None:
        self._reload(force=True)

    def data_changed(self) -> None:
        self._reload()

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
            self._what_if(config_id)

    def _current(self) -> tuple[Campaign, PostbackConfig] | None:
        return None if self.selected is None else self.configs.get(self.selected)

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
            await self._compute_what_if(config_id, before=config)
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

    # -- what-if ------------------------------------------------------------------------------

    @work(
        name="count what the rule lets through",
        group="what-if",
        exclusive=True,
        exit_on_error=False,
    )
    async def _what_if(self, config_id: int) -> None:
        await self._compute_what_if(config_id)

    async def _compute_what_if(self, config_id: int, before: PostbackConfig | None = None) -> None:
        """Count the campaign's latest conversions the rule lets through, as it is and (after
        a change) as it was ``before`` it."""
        found = self.configs.get(config_id)
        if found is None:
            return
        campaign, config = found
        before = before or config
        assert campaign.id is not None
        campaign_id = campaign.id
        conversions = await self.dash.store.read(
            lambda conn: queries.recent_conversions(conn, campaign_id, WHAT_IF_SAMPLE)
        )
        result = WhatIf(
            campaign=campaign.key,
            sample=len(conversions),
            before=sum(would_fire(before, conversion) for conversion in conversions),
            after=sum(would_fire(config, conversion) for conversion in conversions),
            changed=before != config,
        )
        self.post_message(WhatIfLoaded(config_id, result))

    def on_what_if_loaded(self, message: WhatIfLoaded) -> None:
        if message.config_id == self.selected:
            self.what_if = message.what_if
            self.query_one("#what-if", Static).update(what_if_text(message.what_if))

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
        self.query_one(f"#{name}").focus()

    def action_focus_configs(self) -> None:
        self.table.focus()


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
