"""The one small form every dashboard action asks its values with (a replay edited first,
recover, a conversion entered by hand): labelled fields over the screen, ctrl+s (or Enter in
a one-line field) submits, escape cancels.

The form hands its values to the action's ``submit``, which calls the listener's API. What
the API refuses (``ApiError``, with the API's sentence) is shown in the form, which stays
open with the values as typed; ``submit`` may also keep it open with a note (a dry run's
count, say, before the real run)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static, TextArea
from textual.worker import Worker, WorkerState

from tui.context import ApiError
from tui.widgets.field import Field
from tui.widgets.toggles import Toggle
from tui.workers import report_failure

Values = dict[str, Any]  # a field's name -> its text (a check: True or False)
# What a form does with its values: None closes it (done), a note keeps it open showing it.
Submit = Callable[[Values], Awaitable[Text | str | None]]


@dataclass(frozen=True)
class FormField:
    """One field of a form: ``line`` a one-line input, ``text`` a multi-line text (Enter is a
    new line there), ``check`` a yes/no whose label says what yes means."""

    name: str
    label: str
    value: str | bool = ""
    kind: Literal["line", "text", "check"] = "line"
    placeholder: str = ""


class FormScreen(ModalScreen[bool]):
    """A form over the current screen; dismissed with True once its action is done, False
    when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "ctrl+s",
            "submit",
            "Submit",
            tooltip="Do the form's action with these values",
            id="form.submit",
        ),
        Binding(
            "escape", "cancel", "Cancel", tooltip="Close the form, doing nothing", id="form.cancel"
        ),
    ]

    def __init__(
        self,
        title: str,
        fields: Sequence[FormField],
        submit: Submit,
        *,
        action: str = "submit",
        intro: Text | str = "",
    ) -> None:
        """``action`` names what ctrl+s does in the keys line ("replay", "queue"…)."""
        super().__init__(classes="form")
        self.title_text = title
        self.fields = list(fields)
        self._submit = submit
        self.action_name = action
        self.intro = intro
        self.busy = False

    def compose(self) -> Any:
        with Vertical(id="form-box"):
            yield Static(Text(self.title_text, style="bold"), id="form-title")
            if self.intro:
                yield Static(_text(self.intro), id="form-intro", classes="form-note")
            for field in self.fields:
                yield from self._field(field)
            yield Static("", id="form-note", classes="form-note")
            yield Static("", id="form-error")
            yield Static(self.keys_line(), id="form-keys")

    def _field(self, field: FormField) -> Any:
        widget_id = f"form-{field.name}"
        if field.kind == "check":
            with Horizontal(classes="form-row"):
                yield Label("", classes="form-label")
                yield Toggle(Text(field.label), bool(field.value), id=widget_id, compact=True)
        elif field.kind == "text":
            yield Label(Text(field.label), classes="form-text-label")
            yield TextArea(
                str(field.value), id=widget_id, soft_wrap=True, placeholder=field.placeholder
            )
        else:
            with Horizontal(classes="form-row"):
                yield Label(Text(field.label), classes="form-label")
                yield Field(
                    str(field.value), placeholder=field.placeholder, id=widget_id, compact=True
                )

    def keys_line(self) -> Text:
        """The keys of the form: "ctrl+s (or enter): replay · esc: cancel · tab: next"."""
        text = Text(style="dim")
        text.append("ctrl+s", style="bold")
        if any(field.kind == "line" for field in self.fields):
            text.append(" (or ")
            text.append("enter", style="bold")
            text.append(")")
        text.append(f": {self.action_name} · ")
        text.append("esc", style="bold")
        text.append(": cancel · ")
        text.append("tab", style="bold")
        text.append(": next field")
        return text

    # -- values -------------------------------------------------------------------------------

    def values(self) -> Values:
        """Every field's value: text as typed (one-line fields stripped), a check's bool."""
        found: Values = {}
        for field in self.fields:
            widget = self.query_one(f"#form-{field.name}")
            if isinstance(widget, Toggle):
                found[field.name] = widget.value
            elif isinstance(widget, TextArea):
                found[field.name] = widget.text
            elif isinstance(widget, Input):
                found[field.name] = widget.value.strip()
        return found

    @property
    def error(self) -> str:
        """The sentence shown as the form's error ("" when none)."""
        return str(self.query_one("#form-error", Static).content)

    @property
    def note(self) -> str:
        """The note the action left in the form ("" when none)."""
        return str(self.query_one("#form-note", Static).content)

    # -- submitting ---------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def action_submit(self) -> None:
        if self.busy:
            return  # one submission at a time: a second ctrl+s must not act twice
        self.busy = True
        self._show("#form-error", "")
        self._show("#form-note", Text("…", style="dim"))
        self.run_worker(
            self._run(self.values()),
            name="send the form",
            group="form",
            exit_on_error=False,
        )

    async def _run(self, values: Values) -> None:
        try:
            note = await self._submit(values)
        except ApiError as error:
            self._show("#form-note", "")
            self._show("#form-error", Text(str(error)))
            return
        finally:
            self.busy = False
        if note is None:
            self.dismiss(True)
        else:
            self._show("#form-note", _text(note))

    def _show(self, where: str, text: Text | str) -> None:
        widget = self.query_one(where, Static)
        widget.update(_text(text))
        widget.display = bool(str(text))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:  # a failure, not a refusal: the app says it
            self.busy = False
            self._show("#form-note", "")
        report_failure(self, event)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        # The focused field's row is marked by a class: Textual's :focus-within left the
        # previous row marked after Tab in a real terminal.
        for row in self.query(".form-row"):
            row.set_class(event.widget in row.children, "-current")

    def on_mount(self) -> None:
        for where in ("#form-note", "#form-error"):
            self.query_one(where).display = False

    def action_cancel(self) -> None:
        self.dismiss(False)


def _text(value: Text | str) -> Text:
    """Text as given (a ``str`` is never read as markup: it may hold captured values)."""
    return value if isinstance(value, Text) else Text(value)
