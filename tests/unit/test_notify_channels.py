"""Notification channels from the ALERT_CHANNELS setting (shared/notify/channels.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.notify.channels import DEFAULT_RATE_PER_SECOND, ChannelConfig, parse_channels
from shared.rules.model import SEVERITY_ORDER

# Values that must never appear in an error message or a repr: the URL of a webhook is a credential.
TEAMS_URL = "https://contoso.webhook.office.com/webhookb2/tok-3f9a1c77@tenant/IncomingWebhook/sig-8e21d0"
SLACK_URL = "https://hooks.slack.com/services/T0001/B0002/xoxb-slack-token-5c1e"
WEBHOOK_URL = "https://siem.contoso.example/ingest/aoc?key=query-key-9b7f"
SIGNING_SECRET = "whsec_signing-secret-d41d8cd9"
SECRET_TEXTS = (
    "tok-3f9a1c77",
    "sig-8e21d0",
    "xoxb-slack-token",
    "query-key-9b7f",
    "whsec_signing",
    "d41d8cd9",
)


def channels_json(*channels: dict[str, Any]) -> str:
    return json.dumps(list(channels))


def teams(**fields: Any) -> dict[str, Any]:
    return {"name": "secops-teams", "type": "teams", "url": TEAMS_URL, **fields}


def slack(**fields: Any) -> dict[str, Any]:
    return {"name": "secops-slack", "type": "slack", "url": SLACK_URL, **fields}


def webhook(**fields: Any) -> dict[str, Any]:
    return {"name": "siem", "type": "webhook", "url": WEBHOOK_URL, "secret": SIGNING_SECRET, **fields}


def refused(text: str) -> str:
    with pytest.raises(ValueError, match=r"^ALERT_CHANNELS") as caught:
        parse_channels(text)
    message = str(caught.value)
    for secret in (*SECRET_TEXTS, TEAMS_URL, SLACK_URL, WEBHOOK_URL, SIGNING_SECRET):
        assert secret not in message, f"{secret!r} leaked into {message!r}"
    # raised `from None`: a traceback never shows the chained error that carries the input
    assert caught.value.__context__ is None or caught.value.__suppress_context__
    return message


def test_a_valid_list_of_each_channel_type() -> None:
    channels = parse_channels(
        channels_json(
            teams(min_severity="high"),
            slack(rules=["entra.global-admin-added"]),
            webhook(min_severity="informational", rate_per_second=2.5),
        )
    )
    assert [(c.name, c.type) for c in channels] == [
        ("secops-teams", "teams"),
        ("secops-slack", "slack"),
        ("siem", "webhook"),
    ]
    first, second, third = channels
    assert first.url.get_secret_value() == TEAMS_URL
    assert first.min_severity == "high"
    assert first.secret is None
    assert second.rules == ["entra.global-admin-added"]
    assert third.secret is not None
    assert third.secret.get_secret_value() == SIGNING_SECRET
    assert third.rate == 2.5


def test_defaults() -> None:
    channels = parse_channels(channels_json(teams(), slack(), webhook()))
    assert [c.min_severity for c in channels] == ["medium", "medium", "medium"]
    assert [c.rules for c in channels] == [[], [], []]
    assert [c.rate_per_second for c in channels] == [None, None, None]
    assert [c.rate for c in channels] == [4.0, 1.0, DEFAULT_RATE_PER_SECOND["webhook"]]


def test_an_explicit_rate_overrides_the_default() -> None:
    (channel,) = parse_channels(channels_json(teams(rate_per_second=0.5)))
    assert channel.rate == 0.5


@pytest.mark.parametrize("text", [None, "", "   ", "\n", "[]"])
def test_no_channels(text: str | None) -> None:
    assert parse_channels(text) == []


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:10000/hooks/teams", "http://localhost:7071/api/sink", "http://localhost/sink"],
)
def test_plain_http_is_allowed_to_loopback(url: str) -> None:
    (channel,) = parse_channels(channels_json(webhook(url=url)))
    assert channel.url.get_secret_value() == url


def test_urls_and_secrets_are_never_shown_in_repr_or_dumps() -> None:
    channels = parse_channels(channels_json(teams(), webhook()))
    for channel in channels:
        shown = f"{channel!r} {channel} {channel.model_dump()} {channel.model_dump_json()}"
        for secret in (*SECRET_TEXTS, TEAMS_URL, WEBHOOK_URL, SIGNING_SECRET):
            assert secret not in shown


# --- wants -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("min_severity", "wanted"),
    [
        ("informational", {"informational", "low", "medium", "high", "critical"}),
        ("low", {"low", "medium", "high", "critical"}),
        (None, {"medium", "high", "critical"}),  # default: medium
        ("high", {"high", "critical"}),
        ("critical", {"critical"}),
    ],
)
def test_wants_filters_by_minimum_severity(min_severity: str | None, wanted: set[str]) -> None:
    fields = {} if min_severity is None else {"min_severity": min_severity}
    (channel,) = parse_channels(channels_json(teams(**fields)))
    assert {s for s in SEVERITY_ORDER if channel.wants("entra.global-admin-added", s)} == wanted


def test_wants_filters_by_rule_when_rules_are_listed() -> None:
    (channel,) = parse_channels(
        channels_json(
            slack(
                rules=["entra.global-admin-added", "exchange.mailbox-forwarding-external"],
                min_severity="high",
            )
        )
    )
    assert channel.wants("entra.global-admin-added", "critical")
    assert channel.wants("exchange.mailbox-forwarding-external", "high")
    assert not channel.wants("entra.admin-role-assigned", "critical")  # not listed
    assert not channel.wants("entra.global-admin-added", "medium")  # listed, but below the minimum
    assert not channel.wants("ENTRA.GLOBAL-ADMIN-ADDED", "critical")  # rule ids are exact


def test_wants_every_rule_when_none_are_listed() -> None:
    (channel,) = parse_channels(channels_json(teams()))
    assert channel.wants("any.rule", "medium")
    assert channel.wants("another.rule", "critical")
    assert not channel.wants("any.rule", "low")


# --- errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f'[{{"name": "secops", "type": "teams", "url": "{TEAMS_URL}"',  # truncated
        f"[{{'name': 'secops', 'type': 'teams', 'url': '{TEAMS_URL}'}}]",  # Python, not JSON
        f"name=secops,url={TEAMS_URL}",
    ],
)
def test_bad_json_is_refused_without_echoing_it(text: str) -> None:
    assert refused(text) == "ALERT_CHANNELS must be a JSON list of channels"


def test_an_unknown_type_is_refused() -> None:
    message = refused(channels_json(teams(), slack(type="discord")))
    assert message.startswith("ALERT_CHANNELS[1.type]: ")
    assert "'teams', 'slack' or 'webhook'" in message


@pytest.mark.parametrize(
    "url",
    [
        "http://siem.contoso.example/ingest/aoc?key=query-key-9b7f",
        "http://10.0.0.5/hook/tok-3f9a1c77",
        "ftp://files.contoso.example/tok-3f9a1c77",
        "contoso.webhook.office.com/webhookb2/tok-3f9a1c77",
    ],
)
def test_plain_http_to_other_hosts_and_other_schemes_are_refused(url: str) -> None:
    message = refused(channels_json(webhook(url=url)))
    assert message.startswith("ALERT_CHANNELS[0.url]: ")
    assert "https://" in message
    assert url not in message


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost.attacker.example/collect",
        "http://localhost@attacker.example/collect",
        "http://127.0.0.1.attacker.example/collect",
        "http://localhostevil.example/collect",
    ],
)
def test_plain_http_to_hosts_that_only_look_like_loopback_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"ALERT_CHANNELS\[0\.url\]"):
        parse_channels(channels_json(webhook(url=url)))


def test_duplicate_names_are_refused() -> None:
    message = refused(
        channels_json(teams(name="secops"), slack(name="secops"), webhook(name="siem"), webhook(name="siem"))
    )
    assert message == "ALERT_CHANNELS: channel names must be unique: secops, siem"


@pytest.mark.parametrize(
    ("extra", "location"),
    [
        ({"token": "xoxb-slack-token-extra"}, "0.token"),
        ({"headers": {"Authorization": "Bearer tok-3f9a1c77"}}, "0.headers"),
        ({"webhook_url": TEAMS_URL}, "0.webhook_url"),
    ],
)
def test_unknown_fields_are_refused(extra: dict[str, Any], location: str) -> None:
    message = refused(channels_json(teams(**extra)))
    assert message == f"ALERT_CHANNELS[{location}]: Extra inputs are not permitted"


@pytest.mark.parametrize(
    ("channel", "start"),
    [
        (teams(name="sec ops!"), "ALERT_CHANNELS[0.name]: "),
        (teams(min_severity="urgent"), "ALERT_CHANNELS[0.min_severity]: "),
        (teams(rate_per_second=0), "ALERT_CHANNELS[0.rate_per_second]: "),
        (teams(rate_per_second=1000), "ALERT_CHANNELS[0.rate_per_second]: "),
        (teams(url=None), "ALERT_CHANNELS[0.url]: "),
        (webhook(secret=12345), "ALERT_CHANNELS[0.secret]: "),
        ({"name": "nourl", "type": "teams"}, "ALERT_CHANNELS[0.url]: Field required"),
    ],
)
def test_other_invalid_fields_name_the_channel_position_and_field(
    channel: dict[str, Any], start: str
) -> None:
    assert refused(channels_json(channel)).startswith(start)


def test_not_a_list_is_refused() -> None:
    message = refused(json.dumps(teams()))
    assert "valid list" in message


def test_every_problem_is_reported_and_none_echoes_a_secret() -> None:
    message = refused(
        channels_json(
            teams(type="yammer"),
            slack(url="http://hooks.slack.com/services/T0001/B0002/xoxb-slack-token-5c1e"),
            webhook(min_severity="sev1", signing_key=SIGNING_SECRET),
        )
    )
    assert "ALERT_CHANNELS[0.type]" in message
    assert "ALERT_CHANNELS[1.url]" in message
    assert "ALERT_CHANNELS[2.min_severity]" in message
    assert "ALERT_CHANNELS[2.signing_key]" in message


def test_channel_config_is_frozen() -> None:
    (channel,) = parse_channels(channels_json(teams()))
    assert isinstance(channel, ChannelConfig)
    with pytest.raises(ValueError, match="frozen"):
        channel.min_severity = "low"
