"""The panels below a postback config's rule on the Campaigns screen, taking turns in one
place (80x24 has room for one): the before/after preview, the config's target, a test
postback's answer, and a re-evaluation of its campaign. The test postback and the
re-evaluation are the listener's API calls (``Dash.api``), so an attached dashboard asks the
serving listener."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import work
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Static
from textual.worker import Worker

from store.read import queries
from store.records import Campaign, PostbackConfig, TrafficSource
from tui import actions
from tui.context import ApiError, Dash
from tui.widgets.answers import campaign_scope, reevaluation_text, test_answer_text
from tui.widgets.target import target_text
from tui.widgets.what_if import WhatIf, what_if, what_if_text
from tui.workers import report_failure

WHAT_IF_SAMPLE = 500  # the campaign's latest conversions the preview counts
PREVIEW_EVERY = 1.0  # seconds between recounts of the preview while conversions arrive
# The panels, in the order of their line of keys: (panel, binding id, label).
PANELS = (
    ("what-if", "rules.preview", "preview"),
    ("target", "rules.target", "target"),
    ("test", "rules.test", "test"),
    ("reevaluate", "rules.reevaluate", "re-evaluate"),
)


@dataclass
class TestAnswered(Message, bubble=False):
    config_id: int
    answer: dict[str, Any]


@dataclass(frozen=True)
class Reevaluation:
    """A re-evaluation of a campaign's conversions since ``since``: the API's answer, and for
    a dry run also the answer of the dry run with fire (``fired``)."""

    campaign: str
    since: str
    answer: dict[str, Any]
    fired: dict[str, Any] | None = None

    @property
    def dry(self) -> bool:
        return bool(self.answer["dry_run"])


@dataclass
class Reevaluated(Message, bubble=False):
    reevaluation: Reevaluation


@dataclass
class WhatIfLoaded(Message, bubble=False):
    config_id: int
    what_if: WhatIf


@dataclass(frozen=True)
class Subject:
    """The postback config the panels are about, with its campaign and traffic source, and
    as it was before the screen's changes (the preview's "before")."""

    campaign: Campaign
    config: PostbackConfig
    traffic_source: TrafficSource
    before: PostbackConfig

    @property
    def config_id(self) -> int:
        assert self.config.id is not None
        return self.config.id


class RulePanels(Vertical):
    """One panel at a time below the rule, and the line of keys that switch them."""

    def __init__(self, dash: Dash, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dash = dash
        self.panel = "what-if"
        self.subject: Subject | None = None
        self.what_if: WhatIf | None = None  # the preview of the selected config
        self.tested: dict[int, dict[str, Any] | None] = {}  # config -> answer (None: sending)
        self.reevaluation: Reevaluation | None = None  # the last one
        self.shown = Text()  # the panel's text as shown
        self._count_timer: Timer | None = None
        self._keys: dict[str, str] = {}  # binding id -> its key, as last seen active
        self._keys_shown = Text()
        self._counted_at = -math.inf

    def compose(self) -> Any:
        yield Static("", id="panel-keys", markup=False)
        with VerticalScroll(id="rule-panel"):
            yield Static("", id="panel-text", markup=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        report_failure(self, event)

    def key(self, binding_id: str) -> str:
        """The key that runs one of the screen's bindings (``[keys]`` may remap it). While an
        input has focus the letter keys are not active, and while the app closes there is no
        screen to ask: the one seen last is named."""
        if self.app.screen_stack:
            for active in self.screen.active_bindings.values():
                if active.binding.id == binding_id:
                    self._keys[binding_id] = self.app.get_key_display(active.binding)
                    break
        return self._keys.get(binding_id, binding_id)

    def show(self, subject: Subject | None = None, panel: str | None = None) -> None:
        """Show ``panel`` (None: the one shown) about ``subject`` (None: the same)."""
        self.subject = subject or self.subject
        self.panel = panel or self.panel
        if self.subject is None:
            return
        keys = Text(end="")
        for name, binding_id, label in PANELS:
            style = "reverse" if name == self.panel else "dim"
            keys.append(f" {self.key(binding_id)} {label} ", style)
        keys.append(f" {self.key('rules.url')} edit URL", style="dim")
        if not _same(keys, self._keys_shown):  # an update lays the screen out again
            self._keys_shown = keys
            self.query_one("#panel-keys", Static).update(keys)
        shown = self._text(self.subject)
        if not _same(shown, self.shown):
            self.shown = shown
            self.query_one("#panel-text", Static).update(shown)

    def _text(self, subject: Subject) -> Text:
        campaign, config = subject.campaign, subject.config
        if self.panel == "target":
            return target_text(config, subject.traffic_source, self.key("rules.url"))
        if self.panel == "test":
            if subject.config_id not in self.tested:
                return Text(
                    f"No test postback sent for '{config.name}' yet: {self.key('rules.test')} "
                    "sends one to its real target with sample values, or values you type.",
                    style="dim",
                )
            answer = self.tested[subject.config_id]
            if answer is None:
                return Text(f"Sending a test postback of '{config.name}'…", style="dim")
            return test_answer_text(answer)
        if self.panel == "reevaluate":
            found = self.reevaluation
            if found is None or found.campaign != campaign.key:
                return Text(
                    f"{self.key('rules.reevaluate')} runs the conversions of '{campaign.key}' "
                    "through the current rules: a dry run first lists each decision that would "
                    "change and why.",
                    style="dim",
                )
            return reevaluation_text(
                found.answer,
                campaign_scope(found.campaign, found.since),
                self.key("rules.reevaluate"),
                self.key("rules.fire"),
                found.fired,
            )
        if self.what_if is None:
            return Text("Counting…", style="dim")
        return what_if_text(self.what_if)

    # -- the preview ----------------------------------------------------------------------------

    def recount(self) -> None:
        """Count the preview of the config shown now (it was changed, or newly shown)."""
        if self.subject is not None:
            self._count(self.subject)

    def recount_soon(self) -> None:
        """Count the preview again as conversions arrive: at most once every PREVIEW_EVERY,
        the last arrival always counted."""
        if self._count_timer is not None:
            return
        wait = self._counted_at + PREVIEW_EVERY - time.monotonic()
        if wait <= 0:
            self._count_due()
        else:  # (a timer of 0 seconds fails in Textual)
            self._count_timer = self.set_timer(wait, self._count_due)

    def _count_due(self) -> None:
        self._count_timer = None
        self.recount()

    @work(
        name="count what the rule lets through",
        group="what-if",
        exclusive=True,
        exit_on_error=False,
    )
    async def _count(self, subject: Subject) -> None:
        """Count the campaign's latest conversions the rule lets through, as it is and as it
        was before, and list the ones that flip."""
        self._counted_at = time.monotonic()
        campaign_id, key = subject.campaign.id, subject.campaign.key
        assert campaign_id is not None
        # read and decided on the database's thread: off the UI's
        result = await self.dash.store.read(
            lambda conn: what_if(
                key,
                subject.before,
                subject.config,
                queries.recent_conversions(conn, campaign_id, WHAT_IF_SAMPLE),
            )
        )
        self.post_message(WhatIfLoaded(subject.config_id, result))

    def on_what_if_loaded(self, message: WhatIfLoaded) -> None:
        if self.subject is not None and message.config_id == self.subject.config_id:
            self.what_if = message.what_if
            if self.panel == "what-if":
                self.show()

    # -- the test postback ----------------------------------------------------------------------

    def send_test(self, values: dict[str, str]) -> None:
        """Send a test postback of the config shown with ``values`` over the samples."""
        if self.subject is None:
            return
        self.tested[self.subject.config_id] = None
        self.show(panel="test")
        self._send_test(self.subject.config_id, self.subject.campaign.key, values)

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
            self.show()
            raise
        self.post_message(TestAnswered(config_id, answer))

    def on_test_answered(self, message: TestAnswered) -> None:
        self.tested[message.config_id] = message.answer
        if self.subject is not None and message.config_id == self.subject.config_id:
            self.show(panel="test")

    # -- re-evaluation --------------------------------------------------------------------------

    def dry_run(self) -> Reevaluation | None:
        """The re-evaluation dry run shown for the campaign shown, if one is."""
        found = self.reevaluation
        if self.subject is None or found is None or self.panel != "reevaluate":
            return None
        return found if found.campaign == self.subject.campaign.key and found.dry else None

    def close_dry_run(self) -> bool:
        """Close the dry run shown (False: none was)."""
        if self.dry_run() is None:
            return False
        self.reevaluation = None
        self.show()
        return True

    def reevaluate(self, since: str) -> None:
        """Dry-run the conversions of the campaign shown since ``since`` (30m, 24h, ISO)."""
        if self.subject is not None:
            self.show(panel="reevaluate")
            self._dry_run(self.subject.campaign.key, since)

    def record(self, fire: bool) -> None:
        """Record the dry run shown (``fire``: and send the newly fired postbacks)."""
        shown = self.dry_run()
        if shown is None:
            self.notify(
                f"Nothing to record: {self.key('rules.reevaluate')} first runs a dry run of "
                "the selected campaign",
                severity="warning",
                markup=False,
            )
            return
        planned = shown.fired if fire and shown.fired is not None else shown.answer
        ids = sorted({change["conversion_id"] for change in planned["changes"]})
        if not ids:
            self.notify("The dry run changes no decision: nothing to record", markup=False)
            return
        # only the conversions the dry run listed, planned again by the same rules
        self._record(shown.campaign, shown.since, ids, fire)

    @work(name="re-evaluate the campaign", group="reevaluate", exclusive=True, exit_on_error=False)
    async def _dry_run(self, campaign: str, since: str) -> None:
        """Both dry runs: without fire (what R records) and with it (what F records)."""
        selection = {"campaign": campaign, "since": since}
        answer, fired = await actions.reevaluation_dry_runs(self.dash, selection)
        self.post_message(Reevaluated(Reevaluation(campaign, since, answer, fired)))

    @work(name="record the re-evaluation", group="reevaluate", exclusive=True, exit_on_error=False)
    async def _record(self, campaign: str, since: str, ids: list[int], fire: bool) -> None:
        selection = {"campaign": campaign, "since": since, "ids": ids}
        answer = await actions.reevaluate(self.dash, selection, dry_run=False, fire=fire)
        self.post_message(Reevaluated(Reevaluation(campaign, since, answer)))

    def on_reevaluated(self, message: Reevaluated) -> None:
        found = self.reevaluation = message.reevaluation
        if not found.dry:
            sentence = actions.reevaluated_sentence(found.answer, f"'{found.campaign}'")
            self.notify(sentence, markup=False)
        if self.subject is not None and self.subject.campaign.key == found.campaign:
            self.show(panel="reevaluate")


def _same(one: Text, other: Text) -> bool:
    """Whether two texts draw the same (Text's ``==`` leaves out the base style)."""
    return (one.plain, one.spans, one.style) == (other.plain, other.spans, other.style)
