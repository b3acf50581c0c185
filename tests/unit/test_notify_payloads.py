"""Notification payloads: Teams, Slack and webhook formats, their limits, and webhook signing."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from pydantic import ValidationError

from shared.notify.payloads import (
    SIGNATURE_HEADER,
    TEAMS_MAX_BYTES,
    TIMESTAMP_HEADER,
    NotificationContent,
    PayloadTooLargeError,
    encode_body,
    escape_mrkdwn,
    sign,
    signed_headers,
    slack_payload,
    teams_payload,
    verify_signature,
    webhook_payload,
)

LINK = "https://aoc.example.net/api/alerts/al-123"
SECRET = "whsec_test_secret"
NOW = 1_795_000_000.0


def make_content(**overrides: Any) -> NotificationContent:
    values: dict[str, Any] = {
        "alert_id": "al-123",
        "rule_id": "entra.role-assignment.privileged",
        "title": "Privileged role assigned",
        "severity": "high",
        "description": "A member was added to the Global Administrator role.",
        "mitre": ["T1098.003"],
        "occurrences": 3,
        "first_seen": "2026-11-22T10:15:00Z",
        "last_seen": "2026-11-22T10:45:00Z",
        "tenant_id": "00000000-0000-0000-0000-000000000001",
        "group_key": "actor.upn=admin@contoso.com",
        "facts": [
            ("Actor", "admin@contoso.com"),
            ("Operation", "Add member to role"),
            ("Target", "eve@contoso.com"),
        ],
        "link": LINK,
    }
    values.update(overrides)
    return NotificationContent(**values)


def card_of(payload: dict[str, Any]) -> dict[str, Any]:
    return payload["attachments"][0]["content"]


def facts_of(card: dict[str, Any]) -> dict[str, str]:
    fact_set = next(item for item in card["body"] if item["type"] == "FactSet")
    return {fact["title"]: fact["value"] for fact in fact_set["facts"]}


def huge_content(**overrides: Any) -> NotificationContent:
    values: dict[str, Any] = {
        "description": "é" * 200 * 1024,
        "facts": [(f"Fact {i}", f"{i}:" + "x" * 20_000 + '"\n\u0001') for i in range(50)],
    }
    return make_content(**(values | overrides))


# --- model ----------------------------------------------------------------------------------------


def test_content_is_frozen_and_rejects_unknown_fields() -> None:
    content = make_content()
    with pytest.raises(ValidationError):
        content.title = "changed"
    with pytest.raises(ValidationError):
        make_content(colour="red")
    with pytest.raises(ValidationError):
        make_content(severity="severe")


# --- Teams ----------------------------------------------------------------------------------------


def test_teams_envelope_is_a_workflows_message_with_one_adaptive_card() -> None:
    payload = teams_payload(make_content())

    assert payload["type"] == "message"
    assert len(payload["attachments"]) == 1
    attachment = payload["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.4"
    assert card["msteams"] == {"width": "Full"}


def test_teams_card_body_title_severity_description_and_facts() -> None:
    card = card_of(teams_payload(make_content()))
    title, subtitle, description = card["body"][:3]

    assert title == {
        "type": "TextBlock",
        "text": "Privileged role assigned",
        "weight": "bolder",
        "size": "medium",
        "wrap": True,
        "color": "attention",
    }
    assert "HIGH" in subtitle["text"]
    assert "entra.role-assignment.privileged" in subtitle["text"]
    assert description["text"] == "A member was added to the Global Administrator role."
    assert description["wrap"] is True
    facts = facts_of(card)
    assert list(facts)[:3] == ["Actor", "Operation", "Target"]
    assert facts["Actor"] == "admin@contoso.com"
    assert facts["Occurrences"] == "3"
    assert facts["First seen"] == "2026-11-22T10:15:00Z"
    assert facts["Last seen"] == "2026-11-22T10:45:00Z"
    assert facts["MITRE ATT&CK"] == "T1098.003"
    assert facts["Tenant"] == "00000000-0000-0000-0000-000000000001"


@pytest.mark.parametrize(
    ("severity", "color"),
    [
        ("critical", "attention"),
        ("high", "attention"),
        ("medium", "warning"),
        ("low", "default"),
        ("informational", "default"),
    ],
)
def test_teams_title_color_follows_severity(severity: str, color: str) -> None:
    card = card_of(teams_payload(make_content(severity=severity)))
    assert card["body"][0]["color"] == color


def test_teams_open_alert_action_present_with_link() -> None:
    card = card_of(teams_payload(make_content()))
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open alert", "url": LINK}]


def test_teams_no_actions_without_link() -> None:
    card = card_of(teams_payload(make_content(link=None)))
    assert "actions" not in card


def test_teams_reminder_round_is_shown() -> None:
    card = card_of(teams_payload(make_content(round=3)))
    assert "Reminder 3" in card["body"][1]["text"]


def test_teams_small_payload_is_not_truncated() -> None:
    content = make_content()
    payload = teams_payload(content)
    assert "…" not in encode_body(payload).decode("utf-8")


def test_teams_huge_description_and_facts_fit_in_28_kb_keeping_title_and_link() -> None:
    content = huge_content(title="Mass role assignment", severity="critical")
    payload = teams_payload(content)
    body = encode_body(payload)

    assert len(body) <= TEAMS_MAX_BYTES
    assert json.loads(body) == payload
    card = card_of(payload)
    assert card["body"][0]["text"] == "Mass role assignment"
    assert card["body"][0]["color"] == "attention"
    assert "CRITICAL" in card["body"][1]["text"]
    assert card["actions"][0]["url"] == LINK
    facts = facts_of(card)
    assert facts["Fact 0"].endswith("…")


def test_teams_description_is_truncated_before_facts() -> None:
    content = make_content(description="d" * 40_000)
    payload = teams_payload(content)

    assert len(encode_body(payload)) <= TEAMS_MAX_BYTES
    description = card_of(payload)["body"][2]["text"]
    assert description.endswith("…")
    assert 20_000 < len(description) < 40_000
    assert facts_of(card_of(payload))["Actor"] == "admin@contoso.com"


def test_teams_fits_close_to_the_limit() -> None:
    payload = teams_payload(make_content(description="d" * 40_000))
    assert len(encode_body(payload)) > TEAMS_MAX_BYTES - 16


def test_teams_many_facts_are_dropped_rather_than_the_title() -> None:
    content = make_content(facts=[(f"label {i}", "v") for i in range(5000)], description="")
    payload = teams_payload(content)

    assert len(encode_body(payload)) <= TEAMS_MAX_BYTES
    assert card_of(payload)["body"][0]["text"] == "Privileged role assigned"
    assert card_of(payload)["actions"][0]["url"] == LINK


def test_teams_raises_when_the_link_alone_is_too_large() -> None:
    with pytest.raises(PayloadTooLargeError):
        teams_payload(make_content(link="https://x.example/" + "a" * TEAMS_MAX_BYTES))


# --- Slack ----------------------------------------------------------------------------------------


def sections(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [block for block in payload["blocks"] if block["type"] == "section"]


def test_slack_payload_structure() -> None:
    payload = slack_payload(make_content())

    assert payload["text"] == "[HIGH] Privileged role assigned"
    types = [block["type"] for block in payload["blocks"]]
    assert types == ["header", "section", "section", "context", "actions"]
    header = payload["blocks"][0]
    assert header["text"]["type"] == "plain_text"
    assert header["text"]["text"] == "[HIGH] Privileged role assigned"
    description, facts = sections(payload)
    assert description["text"] == {
        "type": "mrkdwn",
        "text": "A member was added to the Global Administrator role.",
    }
    field_texts = [field["text"] for field in facts["fields"]]
    assert field_texts[0] == "*Actor*\nadmin@contoso.com"
    assert "*Occurrences*\n3" in field_texts
    assert "*First seen*\n2026-11-22T10:15:00Z" in field_texts
    assert "*Last seen*\n2026-11-22T10:45:00Z" in field_texts
    assert "*MITRE ATT&amp;CK*\nT1098.003" in field_texts
    assert all(field["type"] == "mrkdwn" for field in facts["fields"])
    context = " ".join(element["text"] for element in payload["blocks"][3]["elements"])
    assert "entra.role-assignment.privileged" in context
    assert "00000000-0000-0000-0000-000000000001" in context
    assert "al-123" in context


def test_slack_button_present_with_link_and_absent_without() -> None:
    actions = slack_payload(make_content())["blocks"][-1]
    assert actions["type"] == "actions"
    button = actions["elements"][0]
    assert button["type"] == "button"
    assert button["url"] == LINK
    assert button["text"] == {"type": "plain_text", "text": "Open alert"}

    without = slack_payload(make_content(link=None))
    assert all(block["type"] != "actions" for block in without["blocks"])


def test_slack_limits_hold_for_huge_content() -> None:
    content = huge_content(
        title="T" * 500,
        facts=[(f"Fact {i}" + "<&>" * 1000, "&" * 5000) for i in range(600)],
    )
    payload = slack_payload(content)

    assert len(payload["blocks"]) <= 50
    assert payload["blocks"][0]["text"]["text"].endswith("…")
    assert len(payload["blocks"][0]["text"]["text"]) <= 150
    assert payload["blocks"][-1]["type"] == "actions"
    assert len(payload["text"]) <= 3000
    for section in sections(payload):
        if "text" in section:
            assert len(section["text"]["text"]) <= 3000
        for field in section.get("fields", []):
            assert len(field["text"]) <= 2000
            assert "&amp" not in field["text"].replace("&amp;", "")
        assert len(section.get("fields", [])) <= 10
    assert sections(payload)[0]["text"]["text"].endswith("…")


def test_slack_escapes_mentions_links_and_ampersands() -> None:
    content = make_content(
        title="Ping <!channel> & co",
        description="Hi <@U123> see <https://evil.example|click> & more",
        facts=[("<@U123>", "a & b > c")],
    )
    payload = slack_payload(content)
    description, facts = sections(payload)

    assert description["text"]["text"] == (
        "Hi &lt;@U123&gt; see &lt;https://evil.example|click&gt; &amp; more"
    )
    assert facts["fields"][0]["text"] == "*&lt;@U123&gt;*\na &amp; b &gt; c"
    assert payload["text"] == "[HIGH] Ping &lt;!channel&gt; &amp; co"
    assert "<" not in json.dumps(sections(payload))


def test_slack_truncation_never_splits_an_entity() -> None:
    payload = slack_payload(make_content(description="&" * 4000))
    text = sections(payload)[0]["text"]["text"]
    assert len(text) <= 3000
    assert text.endswith("&amp;…")


def test_escape_mrkdwn_escapes_ampersand_first() -> None:
    assert escape_mrkdwn("&lt; <b>") == "&amp;lt; &lt;b&gt;"


def test_slack_without_description_has_no_empty_section() -> None:
    payload = slack_payload(make_content(description=""))
    assert all(section.get("text", {}).get("text", "x") for section in sections(payload))
    assert [block["type"] for block in payload["blocks"]] == ["header", "section", "context", "actions"]


# --- webhook --------------------------------------------------------------------------------------


def test_webhook_payload_round_trips() -> None:
    content = make_content(round=2)
    payload = webhook_payload(content)

    assert payload["type"] == "aoc.alert"
    assert payload["version"] == 1
    assert payload["alert"]["facts"][0] == {"name": "Actor", "value": "admin@contoso.com"}
    decoded = json.loads(encode_body(payload))
    assert decoded == payload
    alert = dict(decoded["alert"])
    alert["facts"] = [(fact["name"], fact["value"]) for fact in alert["facts"]]
    assert NotificationContent.model_validate(alert) == content


def test_encode_body_is_compact_utf8() -> None:
    assert encode_body({"a": "é", "b": [1, 2]}) == '{"a":"é","b":[1,2]}'.encode()


# --- signing --------------------------------------------------------------------------------------

BODY = encode_body(webhook_payload(make_content()))


def test_sign_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1795000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1_795_000_000, BODY) == "sha256=" + expected


def test_sign_rejects_an_empty_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        sign("", 1, b"x")


def test_signed_headers_verify() -> None:
    headers = signed_headers(SECRET, BODY, NOW + 0.7)

    assert headers[TIMESTAMP_HEADER] == "1795000000"
    assert headers[SIGNATURE_HEADER].startswith("sha256=")
    assert verify_signature(SECRET, BODY, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], NOW + 10)


def test_verify_accepts_uppercase_hex() -> None:
    headers = signed_headers(SECRET, BODY, NOW)
    upper = "sha256=" + headers[SIGNATURE_HEADER].removeprefix("sha256=").upper()
    assert verify_signature(SECRET, BODY, headers[TIMESTAMP_HEADER], upper, NOW)


def test_verify_fails_on_tampered_body() -> None:
    headers = signed_headers(SECRET, BODY, NOW)
    tampered = BODY.replace(b"al-123", b"al-124")
    assert tampered != BODY
    assert not verify_signature(SECRET, tampered, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], NOW)


def test_verify_fails_with_wrong_secret() -> None:
    headers = signed_headers(SECRET, BODY, NOW)
    assert not verify_signature("other", BODY, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], NOW)
    assert not verify_signature("", BODY, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], NOW)


def test_verify_fails_when_timestamp_header_is_altered() -> None:
    headers = signed_headers(SECRET, BODY, NOW)
    assert not verify_signature(SECRET, BODY, str(int(NOW) + 1), headers[SIGNATURE_HEADER], NOW)


@pytest.mark.parametrize(
    ("age", "valid"),
    [(0, True), (300, True), (-300, True), (301, False), (3600, False), (-301, False), (-86_400, False)],
)
def test_verify_enforces_the_timestamp_window(age: int, valid: bool) -> None:
    sent_at = NOW - age
    headers = signed_headers(SECRET, BODY, sent_at)
    result = verify_signature(SECRET, BODY, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], NOW)
    assert result is valid


def test_verify_uses_the_given_tolerance() -> None:
    headers = signed_headers(SECRET, BODY, NOW - 60)
    args = (SECRET, BODY, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], NOW)
    assert verify_signature(*args, tolerance_seconds=60)
    assert not verify_signature(*args, tolerance_seconds=59)


def test_verify_fails_on_missing_headers() -> None:
    headers = signed_headers(SECRET, BODY, NOW)
    assert not verify_signature(SECRET, BODY, None, headers[SIGNATURE_HEADER], NOW)
    assert not verify_signature(SECRET, BODY, headers[TIMESTAMP_HEADER], None, NOW)
    assert not verify_signature(SECRET, BODY, "", headers[SIGNATURE_HEADER], NOW)
    assert not verify_signature(SECRET, BODY, headers[TIMESTAMP_HEADER], "", NOW)


@pytest.mark.parametrize(
    "signature",
    [
        "sha256=zz",
        "sha256=" + "z" * 64,
        "sha1=" + "0" * 40,
        "0" * 64,
        "sha256=" + "0" * 63,
        "sha256=" + "\u0660" * 64,  # Arabic-Indic zeros
    ],
)
def test_verify_fails_on_garbled_signature(signature: str) -> None:
    timestamp = signed_headers(SECRET, BODY, NOW)[TIMESTAMP_HEADER]
    assert not verify_signature(SECRET, BODY, timestamp, signature, NOW)


@pytest.mark.parametrize(
    "timestamp", ["abc", "1.5e9", "-1795000000", "\u0661\u0667\u0669\u0665" + "\u0660" * 6, "9" * 40]
)
def test_verify_fails_on_garbled_timestamp(timestamp: str) -> None:
    signature = signed_headers(SECRET, BODY, NOW)[SIGNATURE_HEADER]
    assert not verify_signature(SECRET, BODY, timestamp, signature, NOW)


def test_verify_fails_when_now_is_not_finite() -> None:
    headers = signed_headers(SECRET, BODY, NOW)
    assert not verify_signature(
        SECRET, BODY, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], float("nan")
    )
