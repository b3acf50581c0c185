"""Office 365 Management Activity API records, every content type -> canonical event fields.

All content types (Audit.AzureActiveDirectory, Audit.Exchange, Audit.SharePoint, Audit.General, DLP.All)
share the "o365" id namespace: the record `Id` is unique across them.

Decision: the same Entra change seen through Graph directoryAudits (source "entra_audit") and through the
Management API's Audit.AzureActiveDirectory (source "o365_management") becomes TWO events. Their ids
differ (Microsoft does not guarantee the native ids match) and the two records carry different fields
(Graph has display names and typed targets, Management has PUIDs and ExtendedProperties), so merging
would be a guess. Queries that must not double count filter by source.

Service: DLP records (DLP record types, or a Dlp* operation) are DLP whatever their Workload; otherwise
Workload decides, then RecordType; anything unknown is Other. ResultStatus PartiallySucceeded counts as
success (the change took effect) with result_reason "PartiallySucceeded"; an STS logon with a LogonError
is a failure whatever its ResultStatus (Microsoft documents ResultStatus there as the HTTP outcome).
"""

from __future__ import annotations

from typing import Any

from shared.ingestion.normalize._common import (
    client_ip,
    decode_json_value,
    modified_properties,
    parse_timestamp,
    text,
)
from shared.ingestion.normalize.mappings import Mappings

NAMESPACE = "o365"

_WORKLOAD_SERVICES = {
    "exchange": "Exchange",
    "sharepoint": "SharePoint",
    "onedrive": "OneDrive",
    "azureactivedirectory": "Directory",
    "microsoftteams": "Teams",
    "securitycompliancecenter": "Security",
    "threatintelligence": "Security",
    "microsoft365defender": "Security",
    "microsoftdefender": "Security",
    "cloudappsecurity": "Security",
    "powerbi": "PowerPlatform",
    "microsoftflow": "PowerPlatform",
    "powerapps": "PowerPlatform",
    "powerplatform": "PowerPlatform",
    "dynamics 365": "PowerPlatform",
    "crm": "PowerPlatform",
}
_RECORD_TYPES: dict[int, tuple[str, str]] = {
    1: ("ExchangeAdmin", "Exchange"),
    2: ("ExchangeItem", "Exchange"),
    3: ("ExchangeItemGroup", "Exchange"),
    4: ("SharePoint", "SharePoint"),
    6: ("SharePointFileOperation", "SharePoint"),
    7: ("OneDrive", "OneDrive"),
    8: ("AzureActiveDirectory", "Directory"),
    9: ("AzureActiveDirectoryAccountLogon", "Directory"),
    10: ("DataCenterSecurityCmdlet", "Security"),
    11: ("ComplianceDLPSharePoint", "DLP"),
    13: ("ComplianceDLPExchange", "DLP"),
    14: ("SharePointSharingOperation", "SharePoint"),
    15: ("AzureActiveDirectoryStsLogon", "Directory"),
    18: ("SecurityComplianceCenterEOPCmdlet", "Security"),
    19: ("ExchangeAggregatedOperation", "Exchange"),
    20: ("PowerBIAudit", "PowerPlatform"),
    21: ("CRM", "PowerPlatform"),
    24: ("Discovery", "Security"),
    25: ("MicrosoftTeams", "Teams"),
    28: ("ThreatIntelligence", "Security"),
    29: ("MailSubmission", "Security"),
    30: ("MicrosoftFlow", "PowerPlatform"),
    33: ("ComplianceDLPSharePointClassification", "DLP"),
    36: ("SharePointListOperation", "SharePoint"),
    37: ("SharePointCommentOperation", "SharePoint"),
    40: ("SecurityComplianceAlerts", "Security"),
    41: ("ThreatIntelligenceUrl", "Security"),
    45: ("PowerAppsApp", "PowerPlatform"),
    46: ("PowerAppsPlan", "PowerPlatform"),
    47: ("ThreatIntelligenceAtpContent", "Security"),
    50: ("ExchangeItemAggregated", "Exchange"),
    54: ("SharePointListItemOperation", "SharePoint"),
    57: ("MicrosoftTeamsAdmin", "Teams"),
    59: ("MicrosoftTeamsDevice", "Teams"),
    60: ("MicrosoftTeamsAnalytics", "Teams"),
    63: ("DLPEndpoint", "DLP"),
    64: ("AirInvestigation", "Security"),
    65: ("Quarantine", "Security"),
    73: ("MicrosoftTeamsShifts", "Teams"),
    78: ("WDATPAlerts", "Security"),
    85: ("AttackSim", "Security"),
    87: ("SecurityComplianceRBAC", "Security"),
    98: ("MCASAlerts", "Security"),
    99: ("OnPremisesFileShareScannerDlp", "DLP"),
    100: ("OnPremisesSharePointScannerDlp", "DLP"),
    101: ("ExchangeSearch", "Exchange"),
    102: ("SharePointSearch", "SharePoint"),
    107: ("ComplianceDLPExchangeClassification", "DLP"),
    186: ("PowerPagesSite", "PowerPlatform"),
}
_RESULTS = {
    "succeeded": "success",
    "success": "success",
    "true": "success",
    "partiallysucceeded": "success",
    "failed": "failure",
    "failure": "failure",
    "false": "failure",
}
# UserType: 0 Regular, 1 Reserved, 2 Admin, 3 DcAdmin, 4 System, 5 Application, 6 ServicePrincipal,
# 7 CustomPolicy, 8 SystemPolicy.
_USER_TYPES = {
    0: "user",
    1: "user",
    2: "user",
    3: "user",
    4: "system",
    5: "app",
    6: "app",
    7: "system",
    8: "system",
}
# IdentityType of Actor/Target entries: 0 Claim, 1 Name, 2 Other, 3 PUID, 4 SPN, 5 UPN.
_IDENTITY_TYPES = {"claim": 0, "name": 1, "other": 2, "puid": 3, "spn": 4, "upn": 5}
_APP_TYPES = frozenset(("ServicePrincipal", "Application"))
_REASON_PROPERTIES = frozenset(("LoginError", "ResultStatusDetail", "resultDescription", "ErrorMessage"))


def _guid_shaped(value: str) -> bool:
    return len(value) == 36 and value[8] == "-" and value[13] == "-" and value[18] == "-" and value[23] == "-"


def _prefixed_guid(value: str) -> tuple[str, str] | None:
    """`User_<guid>` / `ServicePrincipal_<guid>` -> (prefix, guid)."""
    prefix, _, guid = value.rpartition("_")
    if prefix and prefix.isalpha() and _guid_shaped(guid):
        return prefix, guid
    return None


def _identities(items: list[Any]) -> list[dict[str, Any]]:
    """Group AzureActiveDirectory Actor/Target [{ID, Type}] entries into entities.

    A typical entity: User_<guid> (Other), <guid> (Other), User (Other), jane@contoso.com (UPN), PUID.
    """
    entities: list[dict[str, Any]] = []
    current: dict[str, Any] = {"type": None, "id": None, "display": None, "upn": None}
    for item in items:
        if type(item) is not dict:
            continue
        value = item.get("ID")
        if type(value) is not str or not value:
            continue
        kind = item.get("Type")
        if type(kind) is str:
            kind = _IDENTITY_TYPES.get(kind.casefold())
        if kind == 2:
            prefixed = _prefixed_guid(value) if "_" in value else None
            if prefixed:
                if current["id"] and current["id"].casefold() != prefixed[1].casefold():
                    entities.append(current)
                    current = {"type": None, "id": None, "display": None, "upn": None}
                current["type"], current["id"] = prefixed
            elif _guid_shaped(value):
                if current["id"] is None:
                    current["id"] = value
                elif current["id"].casefold() != value.casefold():
                    entities.append(current)
                    current = {"type": None, "id": value, "display": None, "upn": None}
            elif current["type"] is None and " " not in value:
                current["type"] = value
        elif kind == 5:
            current["upn"] = current["upn"] or value
        elif kind == 1:
            current["display"] = current["display"] or value
    if current["id"] or current["upn"] or current["display"] or current["type"]:
        entities.append(current)
    return entities


def _actor(get: Any, dlp: bool) -> dict[str, Any]:
    """DLP records are logged by the DLP agent (UserType System, UserKey DlpAgent) but their UserId is
    the user whose activity matched the policy: that user is the actor."""
    user_id = text(get("UserId"))
    user_type = get("UserType")
    kind = _USER_TYPES.get(user_type) if type(user_type) is int else None
    if dlp and user_id and "@" in user_id:
        kind = "user"
    actor_id = upn = display = None
    actors = get("Actor")
    if type(actors) is list and actors:
        entities = _identities(actors)
        if entities:
            entity = entities[0]
            actor_id, upn, display = entity["id"], entity["upn"], entity["display"]
            if entity["type"] in _APP_TYPES:
                kind = "app"
    if user_id:
        folded = user_id.casefold()
        prefixed = _prefixed_guid(user_id) if "_" in user_id else None
        if folded == "app@sharepoint":
            kind = "app"
        elif folded.startswith(("nt authority\\", "sharepoint\\system", "s-1-5-18")):
            kind = "system"
            display = display or user_id
        elif prefixed:
            actor_id = actor_id or prefixed[1]
            if prefixed[0] in _APP_TYPES:
                kind = "app"
        elif "@" in user_id and kind in (None, "user"):
            upn = upn or user_id
        else:
            display = display or user_id
        kind = kind or "user"
    if kind == "app":
        context = get("AppAccessContext")
        if type(context) is dict:
            actor_id = actor_id or text(context.get("ClientAppId"))
            display = display or text(context.get("ClientAppName"))
        actor_id = actor_id or text(get("ApplicationId"))
        display = display or text(get("ApplicationDisplayName"))
    if not dlp:
        actor_id = actor_id or text(get("UserKey"))
    return {
        "type": kind or ("unknown" if actor_id is None else "user"),
        "id": actor_id,
        "upn": upn,
        "display": display,
        "ip": client_ip(get("ClientIP"))
        or client_ip(get("ClientIPAddress"))
        or client_ip(get("ActorIpAddress")),
    }


def _target(kind: str | None, target_id: Any, display: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "id": target_id if type(target_id) is str and target_id else text(target_id),
        "display": display if type(display) is str and display else text(display),
        "modified_properties": [],
    }


def _dlp_targets(get: Any) -> list[dict[str, Any]]:
    targets = []
    policies = get("PolicyDetails")
    if type(policies) is list:
        for policy in policies:
            if type(policy) is dict:
                targets.append(_target("DlpPolicy", policy.get("PolicyId"), policy.get("PolicyName")))
    sharepoint = get("SharePointMetaData")
    if type(sharepoint) is dict:
        targets.append(_target("File", sharepoint.get("FilePathUrl"), sharepoint.get("FileName")))
    exchange = get("ExchangeMetaData")
    if type(exchange) is dict:
        targets.append(_target("Message", exchange.get("MessageID"), exchange.get("Subject")))
    return targets


def _teams_targets(record: dict[str, Any]) -> list[dict[str, Any]]:
    get = record.get
    targets = []
    team_id = get("TeamGuid") or get("AADGroupId")
    if team_id or get("TeamName"):
        targets.append(_target("Team", team_id, get("TeamName")))
    if get("ChannelGuid") or get("ChannelName"):
        targets.append(_target("Channel", get("ChannelGuid"), get("ChannelName")))
    members = get("Members")
    if type(members) is list:
        for member in members:
            if type(member) is dict:
                targets.append(_target("User", member.get("UPN"), member.get("DisplayName")))
    name = text(get("Name"))
    if name and ("OldValue" in record or "NewValue" in record):
        if not targets:
            targets.append(_target(None, get("ObjectId"), None))
        targets[0]["modified_properties"].append(
            {
                "name": name,
                "old": decode_json_value(get("OldValue")),
                "new": decode_json_value(get("NewValue")),
            }
        )
    return targets


def _targets(record: dict[str, Any], service: str, operation: str) -> list[dict[str, Any]]:
    get = record.get
    if service == "DLP":
        return _dlp_targets(get)
    targets: list[dict[str, Any]] = []
    entries = get("Target")
    parameters = get("Parameters")
    if type(entries) is list and entries:
        for entity in _identities(entries):
            targets.append(_target(entity["type"], entity["id"], entity["display"] or entity["upn"]))
    elif service == "Teams":
        targets = _teams_targets(record)
    elif type(parameters) is list:
        # Exchange admin cmdlet: the target is ObjectId, the cmdlet parameters are what it set.
        noun = operation.partition("-")[2] or None
        target = _target(noun, get("ObjectId"), None)
        target["modified_properties"] = [
            {"name": text(parameter.get("Name")) or "", "old": None, "new": parameter.get("Value")}
            for parameter in parameters
            if type(parameter) is dict
        ]
        targets.append(target)
    elif get("SourceFileName") or get("SiteUrl") or get("ItemType"):
        targets.append(
            _target(text(get("ItemType")), get("ObjectId") or get("SiteUrl"), get("SourceFileName"))
        )
        if get("TargetUserOrGroupName"):
            targets.append(
                _target(text(get("TargetUserOrGroupType")) or "User", None, get("TargetUserOrGroupName"))
            )
    elif get("MailboxOwnerUPN") or get("MailboxGuid"):
        targets.append(_target("Mailbox", get("MailboxGuid"), get("MailboxOwnerUPN")))
    elif get("ObjectId"):
        targets.append(_target(None, get("ObjectId"), None))
    changes = get("ModifiedProperties")
    if type(changes) is list and changes:
        properties = modified_properties(changes, "Name", "OldValue", "NewValue")
        if not targets:
            targets.append(_target(None, get("ObjectId"), None))
        targets[0]["modified_properties"].extend(properties)
    return targets


def _result(get: Any, operation: str) -> tuple[str, str | None]:
    status = get("ResultStatus")
    folded = status.casefold() if type(status) is str else ""
    result = _RESULTS.get(folded, "unknown")
    reason = None
    logon_error = text(get("LogonError"))
    if logon_error or operation == "UserLoginFailed":
        result, reason = "failure", logon_error
    if result == "failure" and reason is None:
        extended = get("ExtendedProperties")
        if type(extended) is list:
            for item in extended:
                if type(item) is dict and item.get("Name") in _REASON_PROPERTIES:
                    reason = text(item.get("Value"))
                    if reason:
                        break
    elif folded == "partiallysucceeded":
        reason = "PartiallySucceeded"
    return result, reason


def normalize(record: dict[str, Any], mappings: Mappings) -> tuple[str | None, dict[str, Any]]:
    get = record.get
    operation = text(get("Operation"))
    record_type = get("RecordType")
    if type(record_type) is str and record_type.isdigit():
        record_type = int(record_type)
    known = _RECORD_TYPES.get(record_type) if type(record_type) is int else None
    workload = get("Workload")
    if (known is not None and known[1] == "DLP") or (
        operation is not None and operation[:3].casefold() == "dlp"
    ):
        service = "DLP"
    else:
        service = (
            (_WORKLOAD_SERVICES.get(workload.casefold()) if type(workload) is str else None)
            or (known[1] if known is not None else None)
            or "Other"
        )
    if known is not None:
        category: str | None = known[0]
    elif type(record_type) is int:
        category = f"RecordType {record_type}"
    else:
        category = None
    result, reason = _result(get, operation or "")
    correlation_id = text(get("CorrelationId"))
    if correlation_id is None:
        context = get("AppAccessContext")
        if type(context) is dict:
            correlation_id = text(context.get("CorrelationId"))
        correlation_id = correlation_id or text(get("InterSystemsId"))
    return text(get("Id")), {
        "service": service,
        "category": category,
        "operation": operation,
        "operation_type": mappings.operation_type(operation or "", None),
        "result": result,
        "result_reason": reason,
        "actor": _actor(get, service == "DLP"),
        "targets": _targets(record, service, operation or ""),
        "timestamp": parse_timestamp(get("CreationTime")),
        "correlation_id": correlation_id,
    }
