"""The platform registry: every ad-platform kind that store.platforms declares has a module in
listener.platforms that declares every part (settings, required settings, click ids, request,
judge, preparer, sink mimic), every such module is registered, and the config file accepts
exactly the settings a platform declares."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from listener import kinds, platforms
from listener.outbound import Built, Context
from listener.platforms import PLATFORMS, common, mimic
from listener.platforms.common import Platform
from store import platforms as declared
from store.config import ConfigError, is_secret_key, parse
from store.records import (
    KINDS,
    Attempt,
    Campaign,
    Click,
    Conversion,
    PostbackConfig,
    TrafficSource,
)

# A complete postback config of each kind: every value a request needs.
COMPLETE: dict[str, dict[str, Any]] = {
    "facebook": {"pixel_id": "1234567890", "access_token": "EAABsecretTOKEN0123"},
    "google": {
        "customer_id": "123-456-7890",
        "conversion_action": "987654",
        "access_token": "ya29.secretTOKEN0123",
        "developer_token": "DEVtokenABCDEFGH",
    },
    "tiktok": {"pixel_code": "CPIXEL123", "access_token": "TTsecretTOKEN0123"},
    "bing": {"tag_id": "187012345", "access_token": "MSsecretTOKEN0123"},
}
KIND_NAMES = list(declared.SETTINGS)


def context(kind: str, platform: dict[str, Any], params: dict[str, str]) -> Context:
    config = PostbackConfig(name=f"{kind} deposits", kind=kind, platform=platform, id=3)
    return Context(
        config=config,
        conversion=Conversion(
            id=41,
            click_id="c1",
            campaign_id=1,
            type="Deposit",
            status="approved",
            raw_status="1",
            payout=49.9,
            currency="EUR",
            txid="tx-1",
        ),
        click=Click("c1", 1, "", params, 1_700_000_000.0),
        campaign=Campaign("ads", "Ads", "Ads", "AffNet", id=1),
        traffic_source=TrafficSource("Ads"),
        now=1_700_000_100.0,
    )


def first_click_id(kind: str) -> dict[str, str]:
    return {PLATFORMS[kind].click_ids[0]: f"{kind}-click-id"}


def stored_attempt(kind: str, built: Built) -> Attempt:
    assert built.request is not None
    request = built.request
    return Attempt(
        id=1,
        decision_id=1,
        attempt=1,
        resend_of=None,
        kind=kind,
        method=request.method,
        url=request.url,
        headers=request.headers,
        body=request.body,
        success_body="",
        failure_body="",
        platform=COMPLETE[kind],
    )


def test_store_declares_the_settings_without_importing_the_listener() -> None:
    """Why the settings are plain data in store.platforms: store must not import listener."""
    store = Path(declared.__file__).parent
    names = [f"store.{info.name}" for info in pkgutil.iter_modules([str(store)])]
    assert "store.platforms" in names and "store.config" in names
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "from store.config import parse\n"
        'parse(\'[[sinks]]\\nname = "s"\\nmimic = "bing"\\n\')\n'
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'listener')\n"
        "assert not loaded, f'store imported {loaded}'\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=store.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# -- the registry is whole -------------------------------------------------------------------


def test_every_declared_kind_has_a_platform_and_kinds_follow() -> None:
    assert list(PLATFORMS) == list(declared.SETTINGS)
    assert ("s2s", *declared.SETTINGS) == KINDS
    assert set(kinds.BUILDERS) == set(kinds.JUDGES) == set(KINDS)
    assert set(kinds.PREPARERS) == set(PLATFORMS)


def test_every_platform_module_is_registered() -> None:
    """A module that declares a PLATFORM but is missing from PLATFORMS would be dead code."""
    folder = Path(platforms.__file__).parent
    declaring = []
    for info in pkgutil.iter_modules([str(folder)]):
        module = importlib.import_module(f"listener.platforms.{info.name}")
        platform = getattr(module, "PLATFORM", None)
        if platform is not None:
            assert isinstance(platform, Platform), info.name
            assert PLATFORMS.get(platform.kind) is platform, f"{info.name} is not in PLATFORMS"
            declaring.append(platform.kind)
    assert sorted(declaring) == sorted(PLATFORMS)


@pytest.mark.parametrize("kind", ["linkedin", "hashing"])
def test_a_declared_kind_without_its_platform_module_is_refused(kind: str) -> None:
    """store.platforms declaring a kind whose module is missing (or declares no PLATFORM)
    stops the listener from importing, with what to write."""
    with pytest.raises(ImportError) as refused:
        platforms.declared_platform(kind)
    assert str(refused.value) == (
        f"store.platforms declares the kind '{kind}': listener/platforms/{kind}.py must "
        f"declare PLATFORM = Platform(settings=store.platforms.{kind.upper()}, ...)"
    )


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_each_platform_declares_every_part(kind: str) -> None:
    platform = PLATFORMS[kind]
    assert platform.kind == kind
    assert platform.settings is declared.SETTINGS[kind]
    assert platform.label.strip()
    assert platform.required and set(platform.required) <= set(platform.settings.keys)
    assert platform.click_ids and all(name.strip() for name in platform.click_ids)
    for part in (platform.request, platform.judge, platform.prepare, platform.mimic):
        assert callable(part)
    for secret in platform.settings.secrets:
        assert secret in platform.settings.keys
        assert is_secret_key(secret), f"config export would not mask {secret}"
        assert secret in common.SECRET_KEYS


def test_a_platform_missing_a_part_is_refused_when_declared() -> None:
    parts = {
        "label": "Meta",
        "request": lambda platform, ctx, needed: Built(None, "unused"),
        "judge": lambda attempt, status, body: None,
        "prepare": lambda attempt: attempt,
        "mimic": lambda body, error: (200, {}),
    }
    with pytest.raises(ValueError, match="requires ad_account, which its settings do not"):
        Platform(declared.FACEBOOK, required=("ad_account",), click_ids=("fbclid",), **parts)
    with pytest.raises(ValueError, match="names no click id"):
        Platform(declared.FACEBOOK, required=("pixel_id",), click_ids=(), **parts)


# -- each part works through the registry ----------------------------------------------------


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_a_complete_config_builds_a_request_with_the_event_id(kind: str) -> None:
    built = PLATFORMS[kind].build(context(kind, COMPLETE[kind], first_click_id(kind)))
    assert built.missing is None and built.request is not None
    assert built.request.method == "POST"
    body = json.loads(built.request.body)
    assert f"{kind}-click-id" in built.request.body
    if kind == "google":
        assert body["conversions"][0]["orderId"] == "tx-1"
    else:
        assert "pw-41-3" in built.request.body
    for secret in PLATFORMS[kind].settings.secrets:
        assert COMPLETE[kind][secret] not in str(built.request), "secrets are recorded masked"


@pytest.mark.parametrize(
    ("kind", "key"), [(kind, key) for kind, p in PLATFORMS.items() for key in p.required]
)
def test_a_required_setting_left_out_is_the_reason(kind: str, key: str) -> None:
    settings = {k: v for k, v in COMPLETE[kind].items() if k != key}
    built = PLATFORMS[kind].build(context(kind, settings, first_click_id(kind)))
    assert built.request is None
    assert built.missing == (
        f"postback '{kind} deposits' has no {key}: set {key} in its [[campaigns.postbacks]] table"
    )


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_a_click_without_the_platform_click_id_is_the_reason(kind: str) -> None:
    platform = PLATFORMS[kind]
    built = platform.build(context(kind, COMPLETE[kind], {"sub1": "x"}))
    assert built.request is None and built.missing is not None
    assert built.missing.startswith("the click has no " + platform.click_ids[0])
    assert f"{platform.label} attributes a conversion to its ad click" in built.missing
    assert f"(/click/ads?{platform.click_ids[0]}=…)" in built.missing


def test_several_click_ids_send_the_preferred_one_with_a_warning() -> None:
    platform = PLATFORMS["google"]
    params = {"wbraid": "W1", "gclid": "G1"}
    built = platform.build(context("google", COMPLETE["google"], params))
    assert built.request is not None
    assert json.loads(built.request.body)["conversions"][0]["gclid"] == "G1"
    assert built.warnings == [
        "the click has gclid, wbraid: only gclid was sent (Google Ads takes exactly one click id)"
    ]


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_the_sink_mimic_answers_as_the_judge_expects(kind: str) -> None:
    built = PLATFORMS[kind].build(context(kind, COMPLETE[kind], first_click_id(kind)))
    wire = kinds.prepare(stored_attempt(kind, built))
    for secret in PLATFORMS[kind].settings.secrets:
        assert COMPLETE[kind][secret] in str(wire.headers) + wire.url, "prepared for the wire"
    status, body = mimic.answer(kind, False, wire.body)
    assert kinds.judge(wire, status, body) is None
    status, body = mimic.answer(kind, True, wire.body)
    assert kinds.judge(wire, status, body) is not None
    assert "postwatch-sink" in body or "postwatch sink answering" in body, "never the platform's"


# -- the config file accepts exactly the declared settings -----------------------------------

CONFIG = """
[[offer_sources]]
name = "AffNet"

[[traffic_sources]]
name = "Ads"

[[campaigns]]
key = "ads"
traffic_source = "Ads"
offer_source = "AffNet"

[[campaigns.postbacks]]
name = "api"
kind = "KIND"
"""


def _postback(kind: str, settings: dict[str, str]) -> PostbackConfig:
    lines = "".join(f'{key} = "{value}"\n' for key, value in settings.items())
    return parse(CONFIG.replace("KIND", kind) + lines).campaigns[0].postbacks[0]


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_the_config_keeps_every_declared_setting(kind: str) -> None:
    accepted = PLATFORMS[kind].settings.accepted
    settings = {key: f"value-of-{key}" for key in accepted if key != "event_names"}
    config = _postback(kind, settings)
    assert config.platform == settings
    assert set(accepted) == {*PLATFORMS[kind].settings.keys, *declared.COMMON}


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_the_config_refuses_a_setting_the_platform_does_not_declare(kind: str) -> None:
    accepted = PLATFORMS[kind].settings.accepted
    others = {key for other in PLATFORMS.values() for key in other.settings.keys} - set(accepted)
    assert others, "every platform has settings of its own"
    for key in sorted(others):
        with pytest.raises(ConfigError) as refused:
            _postback(kind, {key: "x"})
        assert f"unknown key '{key}' (known keys: " in str(refused.value)
        assert ", ".join(accepted) in str(refused.value)


def test_an_s2s_postback_takes_no_platform_setting() -> None:
    with pytest.raises(ConfigError, match="unknown key 'pixel_id'"):
        _postback("s2s", {"pixel_id": "1"})


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_a_sink_mimics_each_platform_kind_and_nothing_else(kind: str) -> None:
    assert parse(f'[[sinks]]\nname = "s"\nmimic = "{kind}"\n').sinks[0].mimic == kind
    with pytest.raises(ConfigError, match=f"use one of: {', '.join(declared.SETTINGS)} "):
        parse('[[sinks]]\nname = "s"\nmimic = "s2s"\n')


# -- adding a platform -----------------------------------------------------------------------

NEW_PLATFORM = '''
"""A made-up platform, as a new module would declare it."""

from collections.abc import Mapping
from typing import Any

from listener.outbound import Built, Context, Outbound
from listener.platforms import common, hashing
from listener.platforms.common import Platform
from store import platforms
from store.records import Attempt


def request(platform: Platform, ctx: Context, needed: Mapping[str, str]) -> Built:
    click = common.click(ctx, platform)
    amounts, warnings = common.amounts(ctx, "value", "currency", "order")
    hashed, user_warnings = common.identifiers(
        ctx, ("em", hashing.meta_email), ("ph", hashing.e164_phone)
    )
    body = {"partner": needed["partner_id"], "id": common.event_id(ctx), click.name: click.value,
            **amounts, **hashed}
    url = common.base_url(ctx, "https://linkedin.invalid") + "/conversions"
    return Built(Outbound("POST", url, {}, common.to_json(body)), None, warnings + user_warnings)


def judge(attempt: Attempt, status: int, body: str) -> str | None:
    return None if status == 201 else f"HTTP {status}: LinkedIn answers 201"


def mimic(body: str, error: bool) -> tuple[int, Any]:
    return (422, {"message": "bad"}) if error else (201, {"id": common.TRACE_ID})


PLATFORM = Platform(
    settings=platforms.LINKEDIN,
    label="LinkedIn",
    required=("partner_id",),
    click_ids=("li_fat_id",),
    request=request,
    judge=judge,
    prepare=lambda attempt: attempt,
    mimic=mimic,
)
'''

USE_IT = '''
from listener import kinds
from listener.outbound import Context
from listener.platforms import mimic
from store.config import parse
from store.records import KINDS, Attempt, Campaign, Click, Conversion, TrafficSource

assert KINDS[-1] == "linkedin", KINDS
workspace = parse("""
[[sinks]]
name = "li"
mimic = "linkedin"

[[offer_sources]]
name = "AffNet"

[[traffic_sources]]
name = "Ads"

[[campaigns]]
key = "ads"
traffic_source = "Ads"
offer_source = "AffNet"

[[campaigns.postbacks]]
name = "li"
kind = "linkedin"
partner_id = "77"
""")
config = workspace.campaigns[0].postbacks[0]
config.id = 5
click = Click("c1", 1, "", {"li_fat_id": "LI-1", "email": "A@b.example"}, 1.0)
conversion = Conversion(9, "c1", 1, "Lead", "approved", None, 2.5, "EUR", "tx")
ctx = Context(config, conversion, click, workspace.campaigns[0], TrafficSource("Ads"), 2.0)
built = kinds.build(ctx)
assert built.request is not None, built.missing
attempt = Attempt(1, 1, 1, None, "linkedin", "POST", built.request.url, {},
                  built.request.body, "", "", config.platform)
status, answer = mimic.answer("linkedin", False, built.request.body)
assert kinds.judge(kinds.prepare(attempt), status, answer) is None
status, answer = mimic.answer("linkedin", True, built.request.body)
print(built.request.body)
print(kinds.judge(attempt, status, answer))
'''


def test_a_new_platform_is_its_settings_and_one_module(tmp_path: Path) -> None:
    """In a copy of the product: one PlatformSettings in store.platforms and one module in
    listener/platforms make a kind the config accepts, a sink mimics, and kinds build,
    judge and prepare."""
    root = Path(declared.__file__).parent.parent
    for package in ("store", "listener"):
        shutil.copytree(
            root / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    settings = tmp_path / "store" / "platforms.py"
    text = settings.read_text(encoding="utf-8")
    listed = "(FACEBOOK, GOOGLE, TIKTOK, BING)"
    assert listed in text
    declaration = 'LINKEDIN = PlatformSettings("linkedin", ("partner_id", "access_token"))\n'
    text = text.replace("\n# Every ad-platform kind", f"\n{declaration}\n# Every ad-platform kind")
    settings.write_text(text.replace(listed, "(FACEBOOK, GOOGLE, TIKTOK, BING, LINKEDIN)"), "utf-8")
    (tmp_path / "listener" / "platforms" / "linkedin.py").write_text(NEW_PLATFORM, "utf-8")
    result = subprocess.run(
        [sys.executable, "-c", USE_IT],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    body, failure = result.stdout.splitlines()
    assert json.loads(body) == {
        "partner": "77",
        "id": "pw-9-5",
        "li_fat_id": "LI-1",
        "value": 2.5,
        "currency": "EUR",
        "order": "tx",
        "em": hashlib.sha256(b"a@b.example").hexdigest(),
    }
    assert failure == "HTTP 422: LinkedIn answers 201"
