"""What a postback config sends, for the Campaigns screen's target panel: its URL template,
method and body (S2S) or its platform settings, secrets masked; and the macro help of the URL
editor."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

from listener.outbound import MACROS, macros_in, unknown_macros
from listener.story import masked_url
from store.config import masked_platform
from store.records import S2S, PostbackConfig, TrafficSource
from tui import format as fmt


def url_holder(config: PostbackConfig, traffic_source: TrafficSource) -> str | None:
    """Which record holds the URL template an edit saves: the traffic source's name when the
    config has no URL of its own (its traffic source's is used, or none is set yet), None when
    the config's own ``url`` is."""
    return None if config.url else traffic_source.name


def url_template(config: PostbackConfig, traffic_source: TrafficSource) -> str:
    """The URL template the config's deliveries are built from ("" when there is none)."""
    return config.url or traffic_source.postback_url


def _where(config: PostbackConfig, traffic_source: TrafficSource) -> str:
    if config.url:
        return f"postback '{config.name}' has its own URL"
    return f"the URL of traffic source '{traffic_source.name}', shared by its campaigns"


def _line(text: Text, label: str, value: Text) -> None:
    text.append(f"\n{label:<8}", style="dim")
    text.append_text(value)


def target_text(config: PostbackConfig, traffic_source: TrafficSource, url_key: str) -> Text:
    """What the config sends and where, secrets masked; ``url_key`` is the key that edits
    the URL template."""
    text = Text(end="")
    text.append("Target ", style="bold")
    if config.kind != S2S:
        text.append_text(fmt.literal(config.kind))
        text.append(" platform settings", style="dim")
        settings = masked_platform(config.platform)
        if not settings:
            text.append("\nnone set: add them to this postback in the config file", style="dim")
        for name, value in settings.items():
            _line(text, name, fmt.literal(value))
        return text
    template = url_template(config, traffic_source)
    if not template:
        text.append("No postback URL", style="bold magenta")
        text.append(
            f": neither postback '{config.name}' nor traffic source '{traffic_source.name}' "
            "has one, so every conversion it fires is skipped. "
        )
        text.append(f"Press {url_key} to write it", style="bold")
        text.append(f" (saved as traffic source '{traffic_source.name}' postback_url).")
        return text
    text.append(f"({_where(config, traffic_source)}; {url_key} edits it)", style="dim")
    _line(text, config.method, fmt.literal(masked_url(template), one_line=False))
    body = config.body if config.method == "POST" else ""
    if body:
        _line(text, "body", fmt.literal(body, one_line=False))
    _line(text, "macros", _meanings(macros_in(template + body)))
    judged = "a 2xx answer"
    if traffic_source.success_body:
        judged += f" matching '{traffic_source.success_body}'"
    if traffic_source.failure_body:
        judged += f", not matching '{traffic_source.failure_body}'"
    _line(text, "counts", Text(f"{judged} counts as delivered"))
    return text


def _meanings(names: list[str]) -> Text:
    """What each macro a template uses holds (one not in ``MACROS`` is a click parameter)."""
    text = Text(end="")
    for index, name in enumerate(names):
        if index:
            text.append(" · ", style="dim")
        text.append_text(fmt.literal(f"{{{name}}}", "bold"))
        text.append(f" {MACROS.get(name, 'the click parameter of this name')}", style="dim")
    return text if names else Text("none", style="dim")


def macro_help(template: str, params: Iterable[str]) -> Text:
    """The macros a URL template may use (``MACROS`` and the click parameters ``params``),
    with the unknown ones it uses flagged: a delivery would send them empty."""
    params = list(params)
    text = Text(end="")
    unknown = unknown_macros(template, params)
    if unknown:
        names = " ".join(f"{{{name}}}" for name in unknown)
        text.append(f"unknown: {names}", style="bold magenta")
        text.append(" (sent empty) · ", style="dim")
    used = set(macros_in(template))
    text.append("macros: ", style="dim")
    for name in MACROS:
        text.append(f"{{{name}}} ", style="bold" if name in used else "")
    if params:
        text.append("· click parameters: ", style="dim")
        for name in params:
            text.append_text(fmt.literal(f"{{{name}}}", "bold" if name in used else ""))
            text.append(" ")
    text.rstrip()
    return text
