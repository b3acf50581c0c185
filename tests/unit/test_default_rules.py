"""The default rule pack against realistic records: every rule fires on its positive cases and stays quiet
on its near misses (tests/fixtures/rules/default_pack_cases.yaml).

Each case is a raw wire record (Graph directoryAudit or signIn, Intune auditEvent, Management Activity API
record) that goes through the real normalizer, so the pack is tested on the events ingestion actually stores.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.alerts.staleness import stale_source_events
from shared.governance.alerting import GOVERNANCE_SOURCE, finding_event
from shared.governance.config import load_default_validators
from shared.governance.model import GovernedObject
from shared.governance.records import FindingRecord, finding_id
from shared.ingestion.events import Event
from shared.ingestion.normalize import SOURCES, normalize_record
from shared.ingestion.watermarks import SourceState
from shared.platform.clock import parse_utc
from shared.rules.engine import BusinessHours, RuleSet
from shared.rules.model import RuleError, parse_rule_file
from shared.rules.regex import LinearRegex
from shared.rules.source import DEFAULT_RULES_FILE

CASES_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "rules" / "default_pack_cases.yaml"
TENANT = "41463f53-8812-40f4-890f-865bf6e35190"
INGESTED_AT = "2026-11-10T12:00:00.000Z"
HOURS = BusinessHours.parse("08:00-18:00", "Mon-Fri", "Europe/London")
# What a deployment adds to the pack's empty lists (ALERT_* settings): a break-glass account by UPN and by
# object id, and the accepted domain.
EXTRA_LISTS: dict[str, list[Any]] = {
    "privileged_accounts": ["breakglass@contoso.com", "0f6c2b7e-3d41-4a8e-9b2f-5c7d1e9a4b30"],
    "internal_domains": ["contoso.com"],
}
KINDS = ("fires", "near_miss")
# Governance findings as events (issue 18): the service principal every governance case is about.
GOVERNED = GovernedObject.from_graph(
    {
        "id": "3c1d9e7a-5b2f-4c8d-9e6a-1f2b3c4d5e6f",
        "appId": "7e8f9a0b-1c2d-4e3f-8a5b-6c7d8e9f0a1b",
        "displayName": "Payroll Export",
        "servicePrincipalType": "Application",
    }
)
# The governance rules are the app's own checks (no SigmaHQ or Sentinel source); the hygiene ones (an
# expiring credential, no owner) are no ATT&CK technique.
GOVERNANCE_HYGIENE_RULES = frozenset({"governance.credential-expiring", "governance.ownerless-app"})
HEALTH_RULE = "aoc.source-stale"
GLOBAL_ADMIN_RULE = "entra.global-admin-added"
ADMIN_ROLE_RULE = "entra.admin-role-assigned"
AFTER_HOURS_RULE = "general.privileged-activity-after-hours"
README = Path(__file__).resolve().parents[2] / "README.md"
CREDIT = re.compile(r'Source: (SigmaHQ rules/cloud/|Sentinel: ")|Sentinel: "')
# The pack before issue 15; every rule added since credits a SigmaHQ rule or a Sentinel analytic.
ORIGINAL_RULES = frozenset(
    {
        "entra.global-admin-added",
        "entra.admin-role-assigned",
        "entra.app-registered",
        "entra.app-credential-added",
        "entra.oauth-consent",
        "entra.conditional-access-changed",
        "entra.named-location-changed",
        "entra.auth-methods-changed",
        "entra.bulk-user-deletion",
        "entra.privileged-password-reset",
        "entra.domain-federation-changed",
        "exchange.transport-rule-redirect",
        "exchange.mailbox-forwarding-external",
        "exchange.inbox-rule-forwarding-external",
        "exchange.full-access-granted",
        "sharepoint.external-sharing-enabled",
        "intune.device-wiped",
        "intune.compliance-policy-deleted",
        AFTER_HOURS_RULE,
        "general.audit-logging-disabled",
        HEALTH_RULE,
    }
)
# Issue 15, "A wider default pack": the behaviours it names, and the rule that detects each.
ISSUE_15_BEHAVIOURS = {
    "entra.temporary-access-pass-added": "Temporary Access Pass added",
    "entra.pim-settings-changed": "PIM settings or alerts changed",
    "entra.elevated-to-user-access-administrator": "elevation to User Access Administrator (Azure)",
    "entra.certificate-authority-changed": "a new root certificate authority for passwordless",
    "entra.app-owner-added": "an owner added to an application or service principal",
    "entra.app-uri-changed": "application URI changes",
    "purview.compliance-search-exported": "compliance search export",
    "entra.guest-converted-to-member": "a guest turned into a member",
    "entra.device-secrets-read-in-bulk": "BitLocker key or LAPS password reads in bulk (threshold)",
    "signin.mfa-fatigue": "MFA fatigue (threshold on the MFA-denied error codes)",
    "signin.legacy-authentication": "legacy-authentication sign-ins",
    "signin.blocked-by-conditional-access": "sign-ins blocked by Conditional Access in bulk",
    "entra.cross-tenant-access-changed": "cross-tenant access settings changed",
    "security.alert-high": "Security & Compliance alerts by severity (high)",
    "security.alert-medium": "Security & Compliance alerts by severity (medium)",
}
THRESHOLD_RULES = {
    "entra.bulk-user-deletion": (10, 10),
    "entra.device-secrets-read-in-bulk": (5, 60),
    "signin.mfa-fatigue": (5, 10),
    "signin.blocked-by-conditional-access": (10, 60),
    "sharepoint.mass-download": (500, 15),
    "sharepoint.mass-deletion": (200, 15),
    "teams.bulk-team-deletion": (4, 60),
}


def _pack_document() -> dict[str, Any]:
    document = yaml.safe_load(DEFAULT_RULES_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


PACK_DOCUMENT = _pack_document()
RULE_SET = RuleSet(parse_rule_file(copy.deepcopy(PACK_DOCUMENT), EXTRA_LISTS), HOURS)
CASES: dict[str, dict[str, list[dict[str, Any]]]] = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))[
    "cases"
]


def _all_cases() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for rule_id, kinds in CASES.items():
        for kind in KINDS:
            for case in (kinds or {}).get(kind) or []:
                yield rule_id, kind, case


def _params() -> list[Any]:
    return [
        pytest.param(rule_id, kind, case, id=f"{rule_id}:{kind}:{case['name']}")
        for rule_id, kind, case in _all_cases()
    ]


def _events(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The normalized event(s) of a case, each validated as an Event."""
    if "stale_source" in case:
        spec = case["stale_source"]
        state = SourceState(
            source=spec["source"], last_success=spec["last_success"], last_error=spec["last_error"]
        )
        events = stale_source_events(
            [state],
            {spec["source"]},
            TENANT,
            parse_utc(spec["now"]),
            float(spec["poll_interval_seconds"]),
        )
    elif "governance_finding" in case:
        events = [_governance_event(case["governance_finding"])]
    else:
        assert case["source"] in SOURCES, case["source"]
        events = [
            normalize_record(
                case["source"], copy.deepcopy(case["record"]), tenant_id=TENANT, ingested_at=INGESTED_AT
            )
        ]
    for event in events:
        Event.model_validate(event)
    return events


def _governance_event(spec: dict[str, Any]) -> dict[str, Any]:
    """The event shared.governance.alerting publishes for a finding opened at 12:00 that day."""
    opened = "2026-11-03T12:00:00.000Z"
    finding = FindingRecord(
        id=finding_id(TENANT, GOVERNED.id, spec["validator_id"], spec["subject"]),
        pk=TENANT,
        object_id=GOVERNED.id,
        object_name=GOVERNED.display_name,
        app_id=GOVERNED.service_principal.app_id,
        state="open",
        first_seen=opened,
        opened_at=opened,
        last_seen=opened,
        evaluation_id="ev-" + "0" * 32,
        **spec,
    )
    return finding_event(finding, GOVERNED, parse_utc(INGESTED_AT))


def _matched(event: dict[str, Any]) -> list[str]:
    return [compiled.id for compiled in RULE_SET.match(event)]


# --- every case ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("rule_id", "kind", "case"), _params())
def test_default_rule_case(rule_id: str, kind: str, case: dict[str, Any]) -> None:
    events = _events(case)
    matches = [_matched(event) for event in events]
    if kind == "fires":
        assert events, "a positive case must produce an event"
        assert all(rule_id in ids for ids in matches), f"{rule_id} did not fire; matched {matches}"
    else:
        assert not any(rule_id in ids for ids in matches), (
            f"{rule_id} fired on a near miss; matched {matches}"
        )


# --- coverage of the pack ---------------------------------------------------------------------------------


def test_every_rule_has_a_positive_and_a_near_miss_case() -> None:
    rule_ids = {rule["id"] for rule in PACK_DOCUMENT["rules"]}
    missing, unknown = sorted(rule_ids - set(CASES)), sorted(set(CASES) - rule_ids)
    assert not missing, f"rules without cases: {missing}"
    assert not unknown, f"cases for rules not in the pack: {unknown}"
    for rule_id, kinds in CASES.items():
        for kind in KINDS:
            assert (kinds or {}).get(kind), f"{rule_id} has no {kind} case"


def test_case_names_and_record_ids_are_unique() -> None:
    names = [(rule_id, case["name"]) for rule_id, _, case in _all_cases()]
    assert len(names) == len(set(names))
    native_ids = [
        case["record"].get("id") or case["record"].get("Id")
        for _, _, case in _all_cases()
        if "record" in case
    ]
    assert all(native_ids)
    assert len(native_ids) == len(set(native_ids)), "two cases share a record id (copy-paste?)"


def test_stale_near_miss_within_three_intervals_yields_no_event() -> None:
    recent = next(c for c in CASES[HEALTH_RULE]["near_miss"] if "2 poll intervals" in c["name"])
    assert _events(recent) == []


# --- one incident, one alert --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES[GLOBAL_ADMIN_RULE]["fires"], ids=lambda case: case["name"])
def test_global_admin_assignment_raises_only_the_global_admin_alert(case: dict[str, Any]) -> None:
    (event,) = _events(case)
    assert _matched(event) == [GLOBAL_ADMIN_RULE]  # not entra.admin-role-assigned as well


@pytest.mark.parametrize("case", CASES[ADMIN_ROLE_RULE]["fires"], ids=lambda case: case["name"])
def test_other_role_assignment_raises_the_admin_role_alert_not_the_global_admin_one(
    case: dict[str, Any],
) -> None:
    (event,) = _events(case)
    assert _matched(event) == [ADMIN_ROLE_RULE]


# --- the pack itself ---------------------------------------------------------------------------------------


def test_pack_has_the_original_rules_and_at_least_20_more_with_unique_ids() -> None:
    ids = [rule["id"] for rule in PACK_DOCUMENT["rules"]]
    assert set(ids) >= ORIGINAL_RULES
    assert len(set(ids) - ORIGINAL_RULES) >= 20
    assert len(ids) == len(set(ids))
    assert [rule.id for rule in RULE_SET.rules] == ids


@pytest.mark.parametrize("rule_id", sorted(ISSUE_15_BEHAVIOURS), ids=str)
def test_the_behaviours_issue_15_asks_for_have_a_rule(rule_id: str) -> None:
    assert RULE_SET.get(rule_id) is not None, ISSUE_15_BEHAVIOURS[rule_id]


def test_every_new_rule_credits_its_sigma_or_sentinel_source() -> None:
    for rule in RULE_SET.rules:
        if rule.id not in ORIGINAL_RULES and not rule.id.startswith("governance."):
            assert CREDIT.search(rule.description), rule.id


def test_every_rule_testing_operation_is_indexed_by_operation() -> None:
    """A rule whose top level tests `operation` is only checked against events of those operations: the
    pack stays cheap however many rules it has. Only the after-hours rule is checked for every event."""
    generic = sorted(rule.id for rule in RULE_SET.rules if RULE_SET.indexed_operations(rule.id) is None)
    assert generic == [AFTER_HOURS_RULE]
    for rule_id, kind, case in _all_cases():
        keys = RULE_SET.indexed_operations(rule_id)
        if kind == "fires" and keys is not None:
            for event in _events(case):
                assert event["operation"].casefold() in keys, (rule_id, case["name"])


def test_readme_coverage_table_lists_every_rule() -> None:
    readme = README.read_text(encoding="utf-8")
    coverage = readme.split("### Default pack coverage", 1)[1].split("\n### ", 1)[0]
    missing = [rule.id for rule in RULE_SET.rules if f"`{rule.id}`" not in coverage]
    assert not missing, f"README 'Default pack coverage' does not list {missing}"


def test_every_rule_has_severity_description_and_mitre() -> None:
    for rule in RULE_SET.rules:
        assert rule.severity, rule.id
        assert rule.title.strip(), rule.id
        assert rule.description.strip(), rule.id
        if rule.id != HEALTH_RULE and rule.id not in GOVERNANCE_HYGIENE_RULES:
            assert rule.mitre, f"{rule.id} has no MITRE ATT&CK technique"


def test_threshold_rules_are_the_documented_ones() -> None:
    """Threshold cases test the per-event condition (the count is the alert service's job); the counts
    and windows are pinned here because README states them."""
    thresholds = {
        rule.id: (rule.threshold.count, rule.threshold.window_minutes)
        for rule in RULE_SET.rules
        if rule.threshold is not None
    }
    assert thresholds == THRESHOLD_RULES


def test_pack_compiles_without_extra_lists() -> None:
    rule_set = RuleSet(parse_rule_file(copy.deepcopy(PACK_DOCUMENT)), HOURS)
    assert len(rule_set.compiled) == len(PACK_DOCUMENT["rules"])


def test_without_internal_domains_every_forwarding_address_is_external() -> None:
    """The pack's documented default: an empty internal_domains list treats every address as external."""
    rule_set = RuleSet(parse_rule_file(copy.deepcopy(PACK_DOCUMENT)), HOURS)
    internal = next(
        c
        for c in CASES["exchange.mailbox-forwarding-external"]["near_miss"]
        if c["name"] == "Set-Mailbox forwards to an internal address"
    )
    (event,) = _events(internal)
    assert "exchange.mailbox-forwarding-external" in [c.id for c in rule_set.match(event)]


def test_after_hours_uses_the_business_time_zone() -> None:
    """Saturday 02:00 London is after hours; the case timestamps mean what their names say."""
    zone = HOURS.zone
    saturday = dt.datetime(2026, 11, 7, 2, 0, tzinfo=zone)
    tuesday = dt.datetime(2026, 11, 3, 10, 0, tzinfo=zone)
    assert saturday.weekday() == 5
    assert HOURS.is_after_hours(saturday)
    assert tuesday.weekday() == 1
    assert not HOURS.is_after_hours(tuesday)


# --- the consent-permission regex: RE2 has no lookaround ---------------------------------------------------

CONSENT_RULE = "entra.oauth-consent"
NOT_AFTER_WORD_OR_DOT, NOT_BEFORE_WORD_OR_DOT = r"(?:^|[^\w.])", r"(?:[^\w.]|$)"


def _regexes(condition: Any) -> Iterator[str]:
    if isinstance(condition, dict):
        if "regex" in condition:
            yield condition["regex"]
        for value in condition.values():
            yield from _regexes(value)
    elif isinstance(condition, list):
        for item in condition:
            yield from _regexes(item)


def _consent_regex() -> str:
    (rule,) = [r for r in PACK_DOCUMENT["rules"] if r["id"] == CONSENT_RULE]
    (pattern,) = _regexes(rule["when"])
    return pattern


CONSENT_REGEX = _consent_regex()
# The pack's regex as it was written for `re`, with lookaround: the oracle the RE2 form must agree with.
# ASCII, because RE2's \w is ASCII (README "Rule format").
LOOKAROUND_ORACLE = re.compile(
    CONSENT_REGEX.replace(NOT_AFTER_WORD_OR_DOT, r"(?<![\w.])", 1).replace(
        NOT_BEFORE_WORD_OR_DOT, r"(?![\w.])", 1
    ),
    re.IGNORECASE | re.ASCII,
)
PERMISSION_TOKENS = [
    "Mail.ReadWrite",
    "Mail.Send",
    "Directory.ReadWrite.All",
    "Sites.FullControl.All",
    "full_access_as_app",
    "User.Read",
    "mail.readwrite",
    ".",
    " ",
    ",",
    "_",
    "-",
    "x",
    "All",
    "\n",
    "é",
    '"',
]


def test_the_consent_regex_is_its_lookaround_form_rewritten_for_re2() -> None:
    assert CONSENT_REGEX.startswith(NOT_AFTER_WORD_OR_DOT)
    assert CONSENT_REGEX.endswith(NOT_BEFORE_WORD_OR_DOT)
    assert LOOKAROUND_ORACLE.pattern.startswith(r"(?<![\w.])(Directory\.ReadWrite\.All|")
    assert LOOKAROUND_ORACLE.pattern.endswith(r"|full_access_as_app)(?![\w.])")


@settings(max_examples=2000, deadline=None, derandomize=True)
@given(text=st.lists(st.sampled_from(PERMISSION_TOKENS), max_size=12).map("".join))
def test_the_consent_regex_under_re2_agrees_with_its_lookaround_form(text: str) -> None:
    assert LinearRegex(CONSENT_REGEX, case_sensitive=False).search(text) is bool(
        LOOKAROUND_ORACLE.search(text)
    )


def _consent_with_scope(scope: str) -> dict[str, Any]:
    """The pack's "one user consents to Mail.ReadWrite" case, with `scope` in place of Mail.ReadWrite."""
    (case,) = [c for c in CASES[CONSENT_RULE]["fires"] if "consents to Mail.ReadWrite" in c["name"]]
    record = copy.deepcopy(case["record"])
    for prop in record["targetResources"][0]["modifiedProperties"]:
        if prop["displayName"] == "ConsentAction.Permissions":
            assert " Mail.ReadWrite " in prop["newValue"]
            prop["newValue"] = prop["newValue"].replace(" Mail.ReadWrite ", f" {scope} ")
    return {**case, "record": record}


@pytest.mark.parametrize(
    ("scope", "fires"),
    [
        ("Mail.ReadWrite", True),
        ("MAIL.READWRITE", True),
        ("Mail.ReadWrite,Mail.Send", True),
        ("Mail.ReadWrite.Shared", False),  # a different, narrower-named permission
        ("Mail.ReadWriteX", False),
        ("XMail.ReadWrite", False),
        ("Contoso.Mail.ReadWrite", False),
        ("Mail.Read", False),
    ],
)
def test_consent_rule_fires_on_whole_permission_names_only(scope: str, fires: bool) -> None:
    (event,) = _events(_consent_with_scope(scope))
    assert (CONSENT_RULE in _matched(event)) is fires


# --- rule files that must be refused ------------------------------------------------------------------------

_BASE_RULE = {"title": "Test rule", "description": "A rule used by a test.", "severity": "high"}


@pytest.mark.parametrize(
    ("rule_id", "when", "field", "reason"),
    [
        (
            "test.bad-regex",
            {"all": [{"field": "operation", "regex": "(unclosed"}]},
            "when.all[0].regex",
            "regex",
        ),
        (
            "test.two-operators",
            {"all": [{"field": "operation", "eq": "Set-Mailbox", "contains": "Mailbox"}]},
            "when.all[0]",
            "exactly one operator",
        ),
        ("test.unknown-list", {"field": "operation", "in": "$no_such_list"}, "when.in", "no list named"),
        ("test.bad-path", {"field": "targets[.display", "eq": "x"}, "when.field", "field path"),
    ],
)
def test_invalid_rule_is_refused_naming_rule_and_field(
    rule_id: str, when: dict[str, Any], field: str, reason: str
) -> None:
    document = copy.deepcopy(PACK_DOCUMENT)
    document["rules"].append({"id": rule_id, **_BASE_RULE, "when": when})
    with pytest.raises(RuleError) as caught:
        parse_rule_file(document, EXTRA_LISTS)
    assert len(caught.value.problems) == 1, caught.value.problems  # the pack's own rules are fine
    (problem,) = caught.value.problems
    assert f"rule {rule_id!r}" in problem
    assert field in problem
    assert reason in problem


def test_duplicate_rule_id_is_refused() -> None:
    document = copy.deepcopy(PACK_DOCUMENT)
    document["rules"].append(copy.deepcopy(document["rules"][0]))
    with pytest.raises(RuleError) as caught:
        parse_rule_file(document)
    assert caught.value.problems == [f"rule {document['rules'][0]['id']!r}: id: used more than once"]


# --- governance findings (issue 18) ---------------------------------------------------------------------


def _governance_rules() -> list[dict[str, Any]]:
    return [rule for rule in PACK_DOCUMENT["rules"] if rule["id"].startswith("governance.")]


def test_governance_rules_the_issue_names_have_their_severities() -> None:
    severities = {rule["id"]: rule["severity"] for rule in _governance_rules()}
    assert severities == {
        "governance.high-privilege-permission": "critical",
        "governance.credential-expiring": "medium",
        "governance.ownerless-app": "medium",
        "governance.secret-with-privileged-role": "high",
        "governance.unverified-multitenant-app": "medium",
    }


def test_each_governance_rule_matches_a_shipped_validator_of_aoc_governance_events() -> None:
    """A rule naming a validator id the validators file does not ship would never fire."""
    shipped = {config.id for config in load_default_validators().validators}
    named: list[str] = []
    for rule in _governance_rules():
        conditions = {c["field"]: c for c in rule["when"]["all"]}
        assert conditions["source"] == {"field": "source", "eq": GOVERNANCE_SOURCE}, rule["id"]
        named.append(conditions["governance.validator_id"]["eq"])
        assert rule["group_by"] == ["governance.object_id"], rule["id"]
    assert set(named) <= shipped
    assert len(named) == len(set(named)), "two rules for one validator"


def test_an_audit_event_with_governance_words_does_not_fire_a_governance_rule() -> None:
    """Only the app's own events carry `source: aoc_governance`: a directory audit record cannot forge one."""
    (event,) = _events(CASES["governance.ownerless-app"]["fires"][0])
    forged = {**copy.deepcopy(event), "source": "entra_audit"}
    assert "governance.ownerless-app" in _matched(event)
    assert not [rule for rule in _matched(forged) if rule.startswith("governance.")]
