"""A checkbox and a multiple-choice list whose state shows without colour: Textual's draw an
"X" in both states and tell them apart by colour only, which 16-colour terminals render
poorly and NO_COLOR hides."""

from __future__ import annotations

from rich.segment import Segment
from textual.strip import Strip
from textual.widgets import Checkbox, SelectionList

ON = "✓"
OFF = " "


class Toggle(Checkbox):
    """A checkbox showing ✓ when on and a blank when off."""

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]
        return ON if self.value else OFF


class Choices(SelectionList[str]):
    """A selection list showing ✓ on chosen items and a blank on the others."""

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        segments = list(strip)
        index = round(self.scroll_offset.y) + y
        if len(segments) < 4 or not 0 <= index < self.option_count:
            return strip
        chosen = self.get_option_at_index(index).value in self.selected
        inner = segments[1]
        segments[1] = Segment(ON if chosen else OFF, inner.style, inner.control)
        return Strip(segments, strip.cell_length)
