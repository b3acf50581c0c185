"""Office 365 Management Activity API records, every content type -> canonical event fields.

All content types (Audit.AzureActiveDirectory, Audit.Exchange, Audit.SharePoint, Audit.General, DLP.All)
share the "o365" id namespace: the record `Id` is unique across them.

Decision: the same Entra change seen through Graph directoryAudits (source "entra_audit") and through the
Management API's Audit.AzureActiveDirectory (source "o365_management") becomes TWO events. Their ids
differ (Microsoft does not guarantee the native ids match) and the two records carry different fields
(Graph has display names and typed targets, Management has PUIDs and ExtendedProperties), so merging
would be a guess. Queries that must not double count filter by source.

Service: DLP records (DLP record types, or a Dlp* operation) are DLP whatever their Workload; otherwise
Workload decides, then RecordType (o365_record_types); anything unknown is Other. ResultStatus
PartiallySucceeded counts as success (the change took effect) with result_reason "PartiallySucceeded"; an
STS logon with a LogonError is a failure whatever its ResultStatus (Microsoft documents ResultStatus there
as the HTTP outcome).

Who acted (o365_identity reads the schema's enums):
- Entra records: the entity of Actor[] (the `User_<oid>` entity when there are several) gives the object id,
  UPN and name; the other application ids of Actor[] are the client app. PUIDs (UserKey) are never ids.
- STS logons: the Actor[] object id; the resource signed in to (Target[], else ApplicationId) is a target
  of type Application; ApplicationId is the client app; ErrorNumber is result_code.
- UserType 5 (app-only access, e.g. MailItemsAccessed by an app): the application is the actor (its
  appId as id, its name from the record or None for enrichment); the mailbox is the target.
- `app@sharepoint`: the application of the claim in UserKey / ApplicationId, never the claim string.
- DLP: the user the policy matched on (ExchangeMetaData.From, SharePointMetaData.From, else a UserId that
  is not the DLP agent); the match itself goes to `dlp`.
- System accounts (`NT AUTHORITY\\SYSTEM (...)`, `SHAREPOINT\\system`, `S-1-5-18`): type system, no id.
"""

from __future__ import annotations

import json
from typing import Any

from shared.ingestion.normalize._common import (
    client_ip,
    decode_json_value,
    integer,
    parse_timestamp,
    text,
)
from shared.ingestion.normalize.mappings import Mappings
from shared.ingestion.normalize.o365_identity import (
    APP_CLASSES,
    PLACEHOLDER_SPELLINGS,
    USER_TYPE_ACTORS,
    app_name,
    class_guid,
    decode_claim,
    identities,
    is_guid,
    present,
    user_type,
)
from shared.ingestion.normalize.o365_record_types import (
    DEFERRING_WORKLOADS,
    RECORD_TYPES,
    WORKLOAD_SERVICES,
    workload_service,
)

NAMESPACE = "o365"

_RESULTS = {
    "Succeeded": "success",
    "Success": "success",
    "True": "success",
    "Failed": "failure",
    "False": "failure",
    "succeeded": "success",
    "success": "success",
    "true": "success",
    "partiallysucceeded": "success",
    "failed": "failure",
    "failure": "failure",
    "false": "failure",
}
# Microsoft Planner overrides ResultStatus with an enum: 1 Success, 2 Failure, 3 AuthorizationFailure.
_PLANNER_RESULTS = {1: ("success", None), 2: ("failure", None), 3: ("failure", "AuthorizationFailure")}
_REASON_PROPERTIES = frozenset(("LoginError", "ResultStatusDetail", "resultDescription", "ErrorMessage"))
_STS_RECORD_TYPES = frozenset((9, 15))
_MAILBOX_RECORD_TYPES = frozenset((2, 3, 19, 50))
_ALERT_RECORD_TYPES = frozenset((40, 78, 98))
_ALERT_OPERATIONS = frozenset(("alerttriggered", "alertentitygenerated", "alertupdated"))
_SYSTEM_SIDS = frozenset(("s-1-5-18", "s-1-5-19", "s-1-5-20"))
_DLP_SEVERITY_ORDER = {"low": 1, "medium": 2, "high": 3}
# Teams MemberRoleType: 0 Member, 1 Owner, 2 Guest.
_TEAMS_ROLES = {0: "Member", 1: "Owner", 2: "Guest"}
# Targets listed per record (Teams members, sharing recipients, Copilot resources, Target[] entities):
# enough for any bulk action seen in the audit log, bounded so one record cannot make a huge document.
_MAX_LISTED_TARGETS = 1000


def _system_name(user_id: str) -> str | None:
    """The readable name of a system account UserId, or None when it is not one."""
    folded = user_id.casefold()
    if folded.startswith(("nt authority\\", "sharepoint\\system")):
        return user_id
    if folded in _SYSTEM_SIDS or folded.startswith("s-1-5-18"):
        return "System"
    return None


def _is_dlp_agent(value: str) -> bool:
    """DlpAgent, DLPAgent, DlpPolicyEventBasedAssistant...: the service that logs DLP matches."""
    return value[:3].casefold() == "dlp" and "@" not in value


def _actor_ip(get: Any) -> str | None:
    return (
        client_ip(get("ClientIP"))
        or client_ip(get("ClientIPAddress"))
        or client_ip(get("ActorIpAddress"))
        or client_ip(get("ActorIP"))
    )


def _dlp_actor(get: Any) -> dict[str, Any]:
    """The user whose content or mail matched the policy; the DLP agent only when no user is named."""
    matched = None
    for key in ("ExchangeMetaData", "SharePointMetaData", "EndpointMetaData"):
        metadata = get(key)
        if type(metadata) is dict:
            matched = present(metadata.get("From"))
            if matched:
                break
    user_id = present(get("UserId"))
    if matched is None and user_id is not None and not _is_dlp_agent(user_id):
        matched = user_id
    ip = _actor_ip(get)
    if matched is None:
        agent = user_id or present(get("UserKey"))
        return {"type": "system", "id": None, "upn": None, "display": agent, "ip": ip, "client_app": None}
    at = "@" in matched
    return {
        "type": "user",
        "id": None,
        "upn": matched if at else None,
        "display": None if at else matched,
        "ip": ip,
        "client_app": None,
    }


def _alert_actor(get: Any) -> dict[str, Any]:
    """Alert records are written by the alerting service (UserId SecurityComplianceAlerts)."""
    display = present(get("Source")) or present(get("UserId"))
    return {"type": "system", "id": None, "upn": None, "display": display, "ip": None, "client_app": None}


def _actor(get: Any, record_type: int | None, service: str) -> dict[str, Any]:
    number = get("UserType")
    if type(number) is not int:
        number = user_type(number)
    kind = USER_TYPE_ACTORS.get(number) if number is not None else None
    actor_id = upn = display = None
    client_id = client_name = None

    actors = get("Actor")
    if type(actors) is list and actors:
        entities, app_ids = identities(actors)
        if entities:
            entity = entities[0]
            for candidate in entities:
                if candidate["type"] == "User":
                    entity = candidate
                    break
            actor_id, upn, display = entity["id"], entity["upn"], entity["display"]
            entity_type = entity["type"]
            if entity_type == "ServicePrincipal":
                kind = "service_principal"
            elif entity_type == "Application":
                kind = "application"
            elif entity_type == "User" or (upn and kind is None):
                kind = "user"
            for other in entities:
                if other is not entity and other["type"] in APP_CLASSES:
                    client_name = client_name or other["display"]
        if app_ids:
            client_id = app_ids[0]
            if kind in ("service_principal", "application"):
                client_name = client_name or display

    user_id = get("UserId")
    if type(user_id) is not str or not user_id:
        user_id = None
    elif user_id[0] <= " " or user_id[-1] <= " " or user_id in PLACEHOLDER_SPELLINGS:
        user_id = present(user_id)
    if user_id is not None:
        if "@" in user_id:
            if "|" in user_id and (claim := decode_claim(user_id)) is not None:
                if claim[0] == "application":
                    kind = "application"
                    client_id = client_id or claim[1]
                else:
                    upn = upn or claim[2]
            elif user_id[:4] == "app@" and user_id.casefold() == "app@sharepoint":
                kind = "application"
            elif kind is None or kind == "user":
                upn = upn or user_id
            elif kind == "system":
                display = display or user_id  # a datacenter account (UserType 3)
            # UserType 5 records name the mailbox owner in UserId: that is the target, not the actor.
        elif (system_name := _system_name(user_id)) is not None:
            kind, display, actor_id = "system", display or system_name, None
        elif "_" in user_id and (found := class_guid(user_id)) is not None:
            actor_id = actor_id or found[1]
            if found[0] == "ServicePrincipal":
                kind = "service_principal"
            elif found[0] == "Application":
                kind = "application"
        elif is_guid(user_id):
            actor_id = actor_id or user_id
        elif user_id[:4].casefold() != "s-1-":
            display = display or user_id

    if actor_id is None and kind != "system":
        user_key = get("UserKey")
        if type(user_key) is str:
            if len(user_key) == 36 and user_key[8] == "-" and user_key[23] == "-":
                actor_id = user_key  # an object id; PUIDs (`1003...@tenant`) are never ids
            elif (upn is None or kind == "application") and "|" in user_key:
                claim = decode_claim(user_key)
                if claim is not None and claim[0] == "application":
                    client_id = client_id or claim[1]
                elif claim is not None:
                    upn = upn or claim[2]

    context = get("AppAccessContext")
    if context is not None and type(context) is dict:
        client_id = client_id or present(context.get("ClientAppId"))
        client_name = client_name or present(context.get("ClientAppName"))
    if client_id is None:
        if record_type in _STS_RECORD_TYPES or service == "SharePoint" or service == "OneDrive":
            value = get("ApplicationId")
            if value:
                client_id = present(value)
            value = get("ApplicationDisplayName")
            if value and client_name is None:
                client_name = present(value)
        if client_id is None and service == "Exchange":  # AppId / ClientAppId: Exchange schemas only
            value = get("AppId") or get("ClientAppId")
            if value:
                client_id = present(value)

    if kind == "application":
        # An app acting on its own: its object id when the record has one, else its appId.
        actor_id = actor_id or client_id
        display = display or client_name or app_name(client_id)
        upn = None
    elif kind == "service_principal":
        upn = None
    if kind is None:
        kind = "user" if (actor_id or upn or display) else "unknown"
    return {
        "type": kind,
        "id": actor_id,
        "upn": upn,
        "display": display,
        "ip": client_ip(get("ClientIP")) or _actor_ip(get),
        "client_app": None
        if client_id is None and client_name is None
        else {"id": client_id, "name": client_name or app_name(client_id)},
    }


def _target(kind: str | None, target_id: Any, display: Any) -> dict[str, Any]:
    if type(target_id) is str:
        if not target_id or target_id[0] <= " " or target_id[-1] <= " " or target_id in PLACEHOLDER_SPELLINGS:
            target_id = present(target_id)
    elif target_id is not None:
        target_id = text(target_id)
    if type(display) is str:
        if not display or display[0] <= " " or display[-1] <= " " or display in PLACEHOLDER_SPELLINGS:
            display = present(display)
        if display is not None and "|" in display and (claim := decode_claim(display)) is not None:
            display = claim[2] or claim[1]
    elif display is not None:
        display = text(display)
    return {"type": kind, "id": target_id, "display": display, "modified_properties": []}


def _properties(changes: Any) -> list[dict[str, Any]]:
    """Common.ModifiedProperty objects, or the plain property names of Exchange item updates."""
    if type(changes) is not list:
        return []
    properties = []
    for change in changes:
        if type(change) is dict:
            properties.append(
                {
                    "name": text(change.get("Name")) or "",
                    "old": decode_json_value(change.get("OldValue")),
                    "new": decode_json_value(change.get("NewValue")),
                }
            )
        elif type(change) is str and change:
            properties.append({"name": change, "old": None, "new": None})
    return properties


def _dlp(get: Any) -> dict[str, Any] | None:
    """The policy, rule, severity, actions and sensitive information types of PolicyDetails[].Rules[]."""
    policies = get("PolicyDetails")
    if type(policies) is not list:
        return None
    policy_name = rule_name = severity = None
    actions: list[str] = []
    sensitive_types: list[str] = []
    for policy in policies:
        if type(policy) is not dict:
            continue
        policy_name = policy_name or present(policy.get("PolicyName"))
        rules = policy.get("Rules")
        if type(rules) is not list:
            continue
        for rule in rules:
            if type(rule) is not dict:
                continue
            rule_name = rule_name or present(rule.get("RuleName"))
            rule_severity = present(rule.get("Severity"))
            if rule_severity is not None and _DLP_SEVERITY_ORDER.get(
                rule_severity.casefold(), 0
            ) > _DLP_SEVERITY_ORDER.get((severity or "").casefold(), -1):
                severity = rule_severity
            rule_actions = rule.get("Actions")
            if type(rule_actions) is list:
                for action in rule_actions:
                    if type(action) is str and action and action not in actions:
                        actions.append(action)
            conditions = rule.get("ConditionsMatched")
            matched = conditions.get("SensitiveInformation") if type(conditions) is dict else None
            if type(matched) is list:
                for item in matched:
                    if type(item) is dict:
                        name = present(item.get("SensitiveInformationTypeName"))
                        if name is not None and name not in sensitive_types:
                            sensitive_types.append(name)
    return {
        "policy": policy_name,
        "rule": rule_name,
        "severity": severity,
        "actions": actions,
        "sensitive_types": sensitive_types,
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


def _alert_data(value: Any) -> dict[str, Any]:
    """The alert's Data blob: a JSON object as a string (an = alert name, sev = severity, f3u = the
    users involved, etype / eid = the entity of an AlertEntityGenerated record)."""
    if type(value) is dict:
        return value
    if type(value) is str and value[:1] == "{":
        try:
            decoded = json.loads(value)
        except ValueError:
            return {}
        return decoded if type(decoded) is dict else {}
    return {}


def _security_alert(get: Any) -> dict[str, Any]:
    data = _alert_data(get("Data"))
    entity = present(get("AlertEntityId"))
    if entity is None:
        for key in ("f3u", "eid", "suid"):
            entity = present(text(data.get(key)))
            if entity is not None:
                break
    return {
        "id": present(get("AlertId")),
        "name": present(get("Name")) or present(data.get("an")),
        "severity": present(get("Severity")) or present(data.get("sev")),
        "category": present(get("Category")),
        "status": present(get("Status")),
        "source": present(get("Source")),
        "entity": entity,
    }


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
        for member in members[:_MAX_LISTED_TARGETS]:
            if type(member) is dict:
                upn = present(member.get("UPN"))
                target = _target("User", upn, member.get("DisplayName") or upn)
                role = integer(member.get("Role"))
                if role in _TEAMS_ROLES:
                    target["modified_properties"].append(
                        {"name": "Role", "old": None, "new": _TEAMS_ROLES[role]}
                    )
                targets.append(target)
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


def _power_bi_targets(get: Any) -> list[dict[str, Any]]:
    """The artifact by name (report, dashboard, dataset, ...), then its workspace."""
    targets = []
    for kind, id_key, name_key in (
        ("Report", "ReportId", "ReportName"),
        ("Dashboard", "DashboardId", "DashboardName"),
        ("Dataset", "DatasetId", "DatasetName"),
        ("Dataflow", "DataflowId", "DataflowName"),
        ("App", "AppId", "AppName"),
    ):
        name = present(get(name_key))
        if name is not None:
            targets.append(_target(kind, get(id_key), name))
            break
    if not targets:
        name = present(get("ObjectDisplayName")) or present(get("ArtifactName")) or present(get("ItemName"))
        object_id = present(get("ArtifactId")) or present(get("ObjectId"))
        if name is not None or object_id is not None:
            targets.append(
                _target(present(get("ObjectType")) or present(get("ArtifactKind")), object_id, name)
            )
    workspace = present(get("WorkSpaceName")) or present(get("WorkspaceName"))
    if workspace is not None:
        targets.append(_target("Workspace", get("WorkspaceId"), workspace))
    sharing = get("SharingInformation")
    if type(sharing) is list:
        for recipient in sharing[:_MAX_LISTED_TARGETS]:
            if type(recipient) is dict:
                email = present(recipient.get("RecipientEmail"))
                targets.append(_target("User", email, recipient.get("RecipientName") or email))
    return targets


def _viva_engage_targets(get: Any) -> list[dict[str, Any]]:
    targets = []
    target_user = present(get("TargetUserId"))
    target_object = present(get("TargetObjectId"))
    if target_user or target_object:
        targets.append(_target("User", target_object or target_user, target_user))
    group = present(get("GroupName"))
    if group is not None:
        targets.append(_target("Group", None, group))
    file_name = present(get("FileName"))
    if file_name is not None:
        targets.append(_target("File", text(get("FileId")), file_name))
    if not targets and get("MessageId") is not None:
        targets.append(_target("Message", text(get("MessageId")), None))
    return targets


def _copilot_targets(get: Any) -> list[dict[str, Any]]:
    data = get("CopilotEventData")
    if type(data) is not dict:
        return []
    targets = []
    host = present(data.get("AppHost"))
    if host is not None:
        targets.append(_target("CopilotApp", None, host))
    resources = data.get("AccessedResources")
    if type(resources) is list:
        for resource in resources[:_MAX_LISTED_TARGETS]:
            if type(resource) is dict:
                targets.append(
                    _target(
                        present(resource.get("Type")) or "Resource", resource.get("Id"), resource.get("Name")
                    )
                )
    return targets


def _mailbox_targets(get: Any, actor: dict[str, Any]) -> list[dict[str, Any]]:
    """The mailbox (owner's address as the name); for single-item operations, the item too."""
    owner = present(get("MailboxOwnerUPN"))
    if owner is None and actor["type"] in ("application", "service_principal"):
        user_id = present(get("UserId"))
        owner = user_id if user_id is not None and "@" in user_id else None
    targets = []
    if owner is not None or present(get("MailboxGuid")) is not None:
        targets.append(_target("Mailbox", get("MailboxGuid"), owner))
    item = get("Item")
    if type(item) is dict:
        subject = present(item.get("Subject"))
        item_id = present(item.get("Id"))
        if subject is not None or item_id is not None:
            targets.append(_target("MailItem", item_id, subject))
    return targets


def _sts_targets(get: Any) -> list[dict[str, Any]]:
    """The resource application signed in to: Target[] (a GUID, Type Claim), else ObjectId (the same
    resource), else ApplicationId."""
    entries = get("Target")
    resource = None
    if type(entries) is list and len(entries) == 1 and type(entry := entries[0]) is dict:
        value = entry.get("ID")  # the usual shape: one GUID of Type Claim
        if type(value) is str and is_guid(value):
            resource = value
    if resource is None and type(entries) is list and entries:
        entities, app_ids = identities(entries)
        for entity in entities:
            if entity["id"] is not None:
                resource = entity["id"]
                break
        resource = resource or (app_ids[0] if app_ids else None)
    if resource is None:
        object_id = present(get("ObjectId"))
        resource = (
            object_id if object_id is not None and is_guid(object_id) else present(get("ApplicationId"))
        )
    if resource is None or not is_guid(resource):
        return []
    return [_target("Application", resource, app_name(resource))]


def _cmdlet_target(get: Any, parameters: list[Any]) -> dict[str, Any]:
    """An admin cmdlet (Exchange, Security & Compliance): the target is ObjectId (named by
    ModifiedObjectResolvedName), the cmdlet parameters are what it set."""
    operation = text(get("Operation")) or ""
    noun = operation.partition("-")[2] or None
    target = _target(noun, get("ObjectId"), get("ModifiedObjectResolvedName"))
    target["modified_properties"] = [
        {"name": text(parameter.get("Name")) or "", "old": None, "new": parameter.get("Value")}
        for parameter in parameters
        if type(parameter) is dict
    ]
    return target


def _targets(
    record: dict[str, Any], service: str, record_type: int | None, actor: dict[str, Any]
) -> list[dict[str, Any]]:
    get = record.get
    targets: list[dict[str, Any]] = []
    if (service == "SharePoint" or service == "OneDrive") and (
        get("SourceFileName") or get("SiteUrl") or get("ItemType")
    ):
        targets.append(
            _target(
                text(get("ItemType")),
                get("ObjectId") or get("SiteUrl"),
                get("SourceFileName") or get("ObjectId") or get("SiteUrl"),
            )
        )
        shared_with = get("TargetUserOrGroupName")
        if shared_with:
            targets.append(_target(text(get("TargetUserOrGroupType")) or "User", None, shared_with))
    elif service == "Exchange" and type(parameters := get("Parameters")) is list:
        targets.append(_cmdlet_target(get, parameters))
    elif record_type in _STS_RECORD_TYPES:
        targets = _sts_targets(get)
    elif type(entries := get("Target")) is list and entries:
        entities, _ = identities(entries)
        for entity in entities[:_MAX_LISTED_TARGETS]:
            targets.append(_target(entity["type"], entity["id"], entity["display"] or entity["upn"]))
    elif service == "Teams":
        targets = _teams_targets(record)
    elif record_type == 20 or (service == "PowerPlatform" and get("WorkSpaceName") is not None):
        targets = _power_bi_targets(get)
    elif service == "VivaEngage":
        targets = _viva_engage_targets(get)
    elif get("CopilotEventData") is not None:
        targets = _copilot_targets(get)
    elif type(parameters := get("Parameters")) is list:
        targets.append(_cmdlet_target(get, parameters))
    elif record_type in _MAILBOX_RECORD_TYPES or get("MailboxOwnerUPN") or get("MailboxGuid"):
        targets = _mailbox_targets(get, actor)
    elif get("FormName") is not None or get("FormId") is not None:
        targets.append(_target("Form", get("FormId"), get("FormName")))
    elif get("ObjectId"):
        targets.append(_target(None, get("ObjectId"), None))
    changes = get("ModifiedProperties")
    if type(changes) is list and changes:
        properties = _properties(changes)
        if properties:
            if not targets:
                targets.append(_target(None, get("ObjectId"), None))
            holder = targets[-1] if targets[-1]["type"] == "MailItem" else targets[0]
            holder["modified_properties"].extend(properties)
    for target in targets:
        if target["id"] is None and target["display"] is None and not target["modified_properties"]:
            return [
                t
                for t in targets
                if t["id"] is not None or t["display"] is not None or t["modified_properties"]
            ]
    return targets


def _result(get: Any, operation: str, service: str) -> tuple[str, str | None]:
    status = get("ResultStatus")
    if service == "Planner":
        code = integer(status)
        if code is not None and code in _PLANNER_RESULTS:
            return _PLANNER_RESULTS[code]
    if type(status) is str:
        result = _RESULTS.get(status)
        folded = status if result is not None else status.casefold()
        if result is None:
            result = _RESULTS.get(folded, "unknown")
    else:
        folded, result = "", "unknown"
    reason = None
    logon_error = get("LogonError")
    if logon_error is not None:
        logon_error = present(text(logon_error))
    if logon_error or operation == "UserLoginFailed":
        result, reason = "failure", logon_error
    if result == "failure" and reason is None:
        extended = get("ExtendedProperties")
        if type(extended) is list:
            for item in extended:
                if (
                    type(item) is dict
                    and type(name := item.get("Name")) is str
                    and name in _REASON_PROPERTIES
                ):
                    reason = present(text(item.get("Value")))
                    if reason:
                        break
        if reason is not None and reason.count(";") >= 2:
            # Account logon LoginError: `<code>;<name>;<message>`; the code is result_code.
            number, _, rest = reason.partition(";")
            if integer(number) is not None:
                reason = rest.partition(";")[2].strip() or rest
    elif folded in ("partiallysucceeded", "PartiallySucceeded"):
        reason = "PartiallySucceeded"
    return result, reason


def _result_code(get: Any, record_type: int | None) -> int | None:
    """STS ErrorNumber (the schema calls it ErrorCode), the account logon LoginStatus."""
    if record_type == 15:
        code = get("ErrorNumber")
        return integer(code if code is not None else get("ErrorCode"))
    if record_type == 9:
        return integer(get("LoginStatus"))
    return None


def _service(known: tuple[str, str] | None, workload: Any, operation: str | None) -> str:
    if (known is not None and known[1] == "DLP") or (
        operation is not None and operation[:3].casefold() == "dlp"
    ):
        return "DLP"
    if type(workload) is str and workload:
        folded = workload.casefold()
        found = WORKLOAD_SERVICES.get(folded) or workload_service(workload)
        if found is not None:
            if known is not None and folded in DEFERRING_WORKLOADS:
                return known[1]
            return found
    return known[1] if known is not None else "Other"


_Classification = tuple[int | None, str, str | None, bool]
_CLASSIFICATIONS: dict[tuple[Any, Any, Any], _Classification] = {}
_CLASSIFICATION_CACHE_LIMIT = 10_000


def _classify(raw_type: Any, workload: Any, operation: str | None) -> _Classification:
    """(RecordType, service, category, is an alert record) of a record's RecordType, Workload and
    Operation: few distinct combinations, so the caller memoizes them."""
    record_type = raw_type if type(raw_type) is int else integer(raw_type)
    known = RECORD_TYPES.get(record_type) if record_type is not None else None
    service = _service(known, workload, operation)
    if known is not None:
        category: str | None = known[0]
    elif record_type is not None:
        category = f"RecordType {record_type}"
    else:
        category = None
    alert = record_type in _ALERT_RECORD_TYPES or (
        operation is not None and operation.casefold() in _ALERT_OPERATIONS
    )
    return record_type, service, category, alert


def normalize(record: dict[str, Any], mappings: Mappings) -> tuple[str | None, dict[str, Any]]:
    get = record.get
    operation = text(get("Operation"))
    raw_type = get("RecordType")
    workload = get("Workload")
    try:
        # A boolean RecordType is never cached: True == 1 and hash alike, but RecordType true is not 1.
        key = (raw_type, workload, operation) if raw_type is not True and raw_type is not False else None
        classification = _CLASSIFICATIONS.get(key) if key is not None else None
    except TypeError:  # an unhashable RecordType or Workload (a list, an object)
        key, classification = None, None
    if classification is None:
        classification = _classify(raw_type, workload, operation)
        if key is not None and len(_CLASSIFICATIONS) < _CLASSIFICATION_CACHE_LIMIT:
            _CLASSIFICATIONS[key] = classification
    record_type, service, category, alert = classification
    if service == "DLP":
        actor = _dlp_actor(get)
        targets = _dlp_targets(get)
    elif alert:
        actor = _alert_actor(get)
        targets = []
    else:
        actor = _actor(get, record_type, service)
        targets = _targets(record, service, record_type, actor)
    result, reason = _result(get, operation or "", service)
    correlation_id = text(get("CorrelationId"))
    if correlation_id is None:
        context = get("AppAccessContext")
        if type(context) is dict:
            correlation_id = text(context.get("CorrelationId"))
        correlation_id = correlation_id or text(get("InterSystemsId"))
    doc: dict[str, Any] = {
        "service": service,
        "category": category,
        "operation": operation,
        "operation_type": mappings.operation_type(operation or "", None),
        "result": result,
        "result_reason": reason,
        "result_code": _result_code(get, record_type) if record_type == 15 or record_type == 9 else None,
        "actor": actor,
        "targets": targets,
        "timestamp": parse_timestamp(get("CreationTime")),
        "correlation_id": correlation_id,
    }
    if service == "DLP":
        match = _dlp(get)
        if match is not None:
            doc["dlp"] = match
    elif alert:
        security_alert = _security_alert(get)
        doc["security_alert"] = security_alert
        if security_alert["id"] is not None or security_alert["name"] is not None:
            doc["targets"] = [_target("Alert", security_alert["id"], security_alert["name"])]
    return text(get("Id")), doc
