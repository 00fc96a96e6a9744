"""A postback config's conditional rule as the Campaigns screen edits it: its title, the
enabled / conditional / refire toggles, the types and statuses chosen, and the minimum payout.
The widgets' own messages (``Checkbox.Changed``, ``SelectionList.SelectedChanged``,
``Input.Submitted``) reach the screen, which saves the change."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.containers import Horizontal, Vertical
from textual.widgets import Checkbox, Input, Label, SelectionList, Static
from textual.widgets.selection_list import Selection

from store.records import STATUSES, Campaign, PostbackConfig
from tui import format as fmt
from tui.widgets.field import Field
from tui.widgets.toggles import Choices, Toggle


class RuleEditor(Vertical):
    """The rule of one postback config; ``show`` fills it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.type_names: list[str] = []  # the types offered, in the order shown
        self.shown: int | None = None  # the config shown

    def compose(self) -> Any:
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
                yield Field(placeholder="none", id="min-payout", compact=True, type="number")

    def show(
        self,
        campaign: Campaign,
        config: PostbackConfig,
        known_types: list[str],
        seen_types: list[str],
        warning: str = "",
    ) -> None:
        """Show ``config``'s rule: the types offered are the known ones, then those seen in
        traffic, then any other the rule chose; ``warning`` ends the title line."""
        changed_selection = config.id != self.shown
        self.shown = config.id
        title = Text(end="")
        title.append_text(fmt.literal(campaign.key, "bold"))
        title.append(" / ")
        title.append_text(fmt.literal(config.name, "bold"))
        title.append(" (")
        title.append_text(fmt.literal(config.kind))
        title.append(")")
        if not config.conditional:
            title.append("  not conditional: fires for every conversion", style="dim")
        if warning:
            title.append(f"  {warning}", style="bold magenta")
        self.query_one("#rule-title", Static).update(title)
        self.query_one("#enabled", Checkbox).value = config.enabled
        self.query_one("#conditional", Checkbox).value = config.conditional
        self.query_one("#refire", Checkbox).value = config.refire_on_update
        types = self.query_one("#types", SelectionList)
        names = list(known_types)
        names += [n for n in seen_types if n not in names]
        names += [n for n in config.types if n not in names]
        self.type_names = names
        options = [
            Selection(_type_label(name, name in known_types), name, name in config.types)
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

    def show_lists(self, shown: bool) -> None:
        """Show the types, statuses and payout, or let the panels below have their room."""
        self.query_one("#rule-lists").display = shown


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
