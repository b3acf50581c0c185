"""The governance model read from Microsoft Graph v1.0 wire JSON (shared/governance/model.py).

The payloads below are written from the Graph v1.0 reference: a servicePrincipal and its application
with `$select`, the owners listing (directoryObject items told apart by `@odata.type`, including the
"limited information" form Graph returns without permission to read users), appRoleAssignments with
the Microsoft Graph resource service principal's appRoles, memberOf (a group and a directoryRole) and
roleManagement/directory/roleAssignments. The other governance tests build their objects from them.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from shared.governance.model import (
    MICROSOFT_GRAPH_APP_ID,
    Application,
    DirectoryPrincipal,
    GovernedObject,
    ServicePrincipal,
    directory_roles_from_member_of,
    directory_roles_from_role_assignments,
)

TENANT = "41463f53-8812-40f4-890f-865bf6e35190"
SP_ID = "00063ffc-54e9-405d-b8f3-56124728e051"
APP_OBJECT_ID = "3c1f2a5e-7b8d-4e9f-a0b1-c2d3e4f5a6b7"
APP_ID = "8b1025e4-1dd2-430b-a150-2ef79cd700f5"
GRAPH_SP_ID = "fea94d6d-b5bf-44d2-a887-4f72a8d74f44"
ALICE_ID = "6e7b768e-07e2-4810-8459-485f84f8f204"
BOB_ID = "87d349ed-44d7-43e1-9a83-5f2406dee5bd"
CAROL_ID = "5bde3e51-d13b-4db1-9948-fe4b109d11a7"
DAVE_ID = "c7c3a0d5-bf9a-4a7b-9d2e-2f4a0f2a7e11"
PIPELINE_SP_ID = "2f0a3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
SP_SECRET_KEY = "dfd3a6c4-9a6c-4f0b-8a87-0e7d3a1b2c3d"
SP_CERT_KEY = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5e"
APP_SECRET_KEY = "0c5e2f1a-3b4d-4e6f-8a9b-1c2d3e4f5a6b"
MAIL_READWRITE_ROLE = "e2a3a72e-5f79-4c64-b1b1-878b674786c9"
ROLE_MANAGEMENT_ROLE = "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8"
USER_READ_ALL_ROLE = "df021288-bdef-4463-88db-98f22de89214"
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
APPLICATION_ADMIN = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"
MICROSOFT_SERVICES_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"

# GET /v1.0/servicePrincipals/{id}?$select=id,appId,displayName,appDisplayName,notes,accountEnabled,
#   servicePrincipalType,appOwnerOrganizationId,signInAudience,passwordCredentials,keyCredentials,
#   verifiedPublisher,tags
SERVICE_PRINCIPAL: dict[str, Any] = {
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals(id,appId,displayName)/$entity",
    "id": SP_ID,
    "appId": APP_ID,
    "displayName": "Contoso Payroll Sync",
    "appDisplayName": "Contoso Payroll Sync",
    "notes": "alice@contoso.com; Bob@Contoso.com",
    "accountEnabled": True,
    "servicePrincipalType": "Application",
    "appOwnerOrganizationId": TENANT,
    "signInAudience": "AzureADMyOrg",
    "tags": ["WindowsAzureActiveDirectoryIntegratedApp"],
    "passwordCredentials": [
        {
            "customKeyIdentifier": None,
            "displayName": "nightly sync",
            "endDateTime": "2027-03-01T09:30:00Z",
            "hint": "Q~3",
            "keyId": SP_SECRET_KEY,
            "secretText": None,
            "startDateTime": "2026-11-01T09:30:00Z",
        }
    ],
    "keyCredentials": [
        {
            "customKeyIdentifier": "52B4E2F83E12F45C3B1B5E0F4B6C1A0B8C2D9E77",
            "displayName": "CN=payroll-sync",
            "endDateTime": "2027-06-01T00:00:00Z",
            "key": None,
            "keyId": SP_CERT_KEY,
            "startDateTime": "2026-06-01T00:00:00Z",
            "type": "AsymmetricX509Cert",
            "usage": "Verify",
        }
    ],
    "verifiedPublisher": {"displayName": None, "verifiedPublisherId": None, "addedDateTime": None},
}

# GET /v1.0/applications(appId='{appId}')?$select=id,appId,displayName,notes,signInAudience,
#   publisherDomain,passwordCredentials,keyCredentials,verifiedPublisher
APPLICATION: dict[str, Any] = {
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#applications(id,appId,displayName)/$entity",
    "id": APP_OBJECT_ID,
    "appId": APP_ID,
    "displayName": "Contoso Payroll Sync",
    "notes": None,
    "signInAudience": "AzureADMyOrg",
    "publisherDomain": "contoso.onmicrosoft.com",
    "passwordCredentials": [
        {
            "customKeyIdentifier": None,
            "displayName": "ci deploy",
            "endDateTime": "2027-05-15T08:00:00.1234567Z",
            "hint": "8Qy",
            "keyId": APP_SECRET_KEY,
            "secretText": None,
            "startDateTime": "2026-11-16T08:00:00.1234567Z",
        }
    ],
    "keyCredentials": [],
    "verifiedPublisher": {"displayName": None, "verifiedPublisherId": None, "addedDateTime": None},
}

# GET /v1.0/servicePrincipals/{id}/owners
#   ?$select=id,displayName,userPrincipalName,accountEnabled,userType,appId
SP_OWNERS: dict[str, Any] = {
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects(id,displayName)",
    "value": [
        {
            "@odata.type": "#microsoft.graph.user",
            "id": ALICE_ID,
            "displayName": "Alice Wong",
            "userPrincipalName": "alice@contoso.com",
            "accountEnabled": True,
            "userType": "Member",
        },
        {
            "@odata.type": "#microsoft.graph.servicePrincipal",
            "id": PIPELINE_SP_ID,
            "displayName": "Deploy Pipeline",
            "appId": "4f6d1c2e-8a9b-4c3d-9e0f-1a2b3c4d5e6f",
            "accountEnabled": True,
        },
    ],
}

# GET /v1.0/applications/{id}/owners?$select=... (Bob is an owner of both; Carol is a guest)
APP_OWNERS: dict[str, Any] = {
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects(id,displayName)",
    "value": [
        {
            "@odata.type": "#microsoft.graph.user",
            "id": BOB_ID,
            "displayName": "Bob Kelly",
            "userPrincipalName": "bob@contoso.com",
            "accountEnabled": True,
            "userType": "Member",
        },
        {
            "@odata.type": "#microsoft.graph.user",
            "id": ALICE_ID,
            "displayName": "Alice Wong",
            "userPrincipalName": "alice@contoso.com",
            "accountEnabled": True,
            "userType": "Member",
        },
        {
            "@odata.type": "#microsoft.graph.user",
            "id": CAROL_ID,
            "displayName": "Carol Ortiz (Fabrikam)",
            "userPrincipalName": "carol_fabrikam.com#EXT#@contoso.onmicrosoft.com",
            "accountEnabled": True,
            "userType": "Guest",
        },
    ],
}

# What Graph returns for an owner the caller may not read: only @odata.type and id, the rest null.
LIMITED_OWNER: dict[str, Any] = {
    "@odata.type": "#microsoft.graph.user",
    "id": DAVE_ID,
    "displayName": None,
    "userPrincipalName": None,
    "accountEnabled": None,
    "userType": None,
}

# GET /v1.0/servicePrincipals/{id}/appRoleAssignments
APP_ROLE_ASSIGNMENTS: dict[str, Any] = {
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals('00063ffc')/appRoleAssignments",
    "value": [
        {
            "id": "_BMGAOlUXUC484VgRyjgUWqjCWq4eDlNoSxhTEJxHzA",
            "deletedDateTime": None,
            "appRoleId": MAIL_READWRITE_ROLE,
            "createdDateTime": "2026-10-02T04:22:45.4980259Z",
            "principalDisplayName": "Contoso Payroll Sync",
            "principalId": SP_ID,
            "principalType": "ServicePrincipal",
            "resourceDisplayName": "Microsoft Graph",
            "resourceId": GRAPH_SP_ID,
        },
        {
            "id": "_BMGAOlUXUC484VgRyjgUYoLvaEWxnRGiNZXfxcvm2o",
            "deletedDateTime": None,
            "appRoleId": USER_READ_ALL_ROLE,
            "createdDateTime": "2026-10-02T04:22:46Z",
            "principalDisplayName": "Contoso Payroll Sync",
            "principalId": SP_ID,
            "principalType": "ServicePrincipal",
            "resourceDisplayName": "Microsoft Graph",
            "resourceId": GRAPH_SP_ID,
        },
    ],
}

# GET /v1.0/servicePrincipals(appId='00000003-0000-0000-c000-000000000000')
#   ?$select=id,appId,displayName,appRoles
GRAPH_RESOURCE: dict[str, Any] = {
    "id": GRAPH_SP_ID,
    "appId": MICROSOFT_GRAPH_APP_ID,
    "displayName": "Microsoft Graph",
    "appRoles": [
        {
            "allowedMemberTypes": ["Application"],
            "description": "Allows the app to create, read, update, and delete mail in all mailboxes "
            "without a signed-in user. Does not include permission to send mail.",
            "displayName": "Read and write mail in all mailboxes",
            "id": MAIL_READWRITE_ROLE,
            "isEnabled": True,
            "origin": "Application",
            "value": "Mail.ReadWrite",
        },
        {
            "allowedMemberTypes": ["Application"],
            "description": "Allows the app to read and manage the role-based access control (RBAC) settings "
            "for your company's directory, without a signed-in user.",
            "displayName": "Read and write all directory RBAC settings",
            "id": ROLE_MANAGEMENT_ROLE,
            "isEnabled": True,
            "origin": "Application",
            "value": "RoleManagement.ReadWrite.Directory",
        },
        {
            "allowedMemberTypes": ["Application"],
            "description": "Allows the app to read user profiles without a signed in user.",
            "displayName": "Read all users' full profiles",
            "id": USER_READ_ALL_ROLE,
            "isEnabled": True,
            "origin": "Application",
            "value": "User.Read.All",
        },
    ],
}

# GET /v1.0/servicePrincipals/{id}/memberOf: a group (skipped) and an activated directory role
MEMBER_OF: dict[str, Any] = {
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects",
    "value": [
        {
            "@odata.type": "#microsoft.graph.group",
            "id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "createdDateTime": None,
            "description": "All payroll integrations",
            "displayName": "Payroll Apps",
            "groupTypes": [],
            "mailEnabled": False,
            "securityEnabled": True,
        },
        {
            "@odata.type": "#microsoft.graph.directoryRole",
            "id": "b6d7e8f9-0a1b-4c2d-8e3f-4a5b6c7d8e9f",
            "deletedDateTime": None,
            "description": "Can create and manage all aspects of app registrations and enterprise apps.",
            "displayName": "Application Administrator",
            "roleTemplateId": APPLICATION_ADMIN,
        },
    ],
}

# GET /v1.0/roleManagement/directory/roleAssignments?$filter=principalId eq '{id}'
ROLE_ASSIGNMENTS: dict[str, Any] = {
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#roleManagement/directory/roleAssignments",
    "value": [
        {
            "id": "lAPpYvVpN0KRkAEhdxReEJC2sEqbR_9Hr48lds9SGHI-1",
            "principalId": SP_ID,
            "directoryScopeId": "/",
            "roleDefinitionId": GLOBAL_ADMIN,
        },
        {
            "id": "5wuT_mJe20eRr5jDpJo4sVvdzd0RHH1Bjq8jH7fTNw0-1",
            "principalId": SP_ID,
            "directoryScopeId": f"/{APP_OBJECT_ID}",
            "roleDefinitionId": APPLICATION_ADMIN,
        },
    ],
}


def graph_object(
    *,
    sp: dict[str, Any] | None = None,
    application: dict[str, Any] | None = APPLICATION,
    owners: list[dict[str, Any]] | None = None,
    application_owners: list[dict[str, Any]] | None = None,
    assignments: list[dict[str, Any]] | None = None,
    member_of: list[dict[str, Any]] | None = None,
    role_assignments: list[dict[str, Any]] | None = None,
) -> GovernedObject:
    """A GovernedObject from the samples above, any part replaced. The default is a well-kept
    single-tenant app: notes name two enabled member owners, secrets within policy, Mail.ReadWrite
    granted, no directory role."""
    return GovernedObject.from_graph(
        copy.deepcopy(sp if sp is not None else SERVICE_PRINCIPAL),
        application=copy.deepcopy(application),
        owners=copy.deepcopy(owners if owners is not None else SP_OWNERS["value"]),
        application_owners=copy.deepcopy(
            application_owners if application_owners is not None else APP_OWNERS["value"]
        ),
        app_role_assignments=copy.deepcopy(
            assignments if assignments is not None else APP_ROLE_ASSIGNMENTS["value"]
        ),
        resources=[copy.deepcopy(GRAPH_RESOURCE)],
        member_of=copy.deepcopy(member_of if member_of is not None else []),
        role_assignments=copy.deepcopy(role_assignments if role_assignments is not None else []),
    )


def sp_with(**changes: Any) -> dict[str, Any]:
    record = copy.deepcopy(SERVICE_PRINCIPAL)
    record.update(changes)
    return record


def app_with(**changes: Any) -> dict[str, Any]:
    record = copy.deepcopy(APPLICATION)
    record.update(changes)
    return record


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_service_principal_fields_from_graph() -> None:
    sp = ServicePrincipal.from_graph(SERVICE_PRINCIPAL)
    assert (sp.id, sp.app_id, sp.display_name) == (SP_ID, APP_ID, "Contoso Payroll Sync")
    assert sp.notes == "alice@contoso.com; Bob@Contoso.com"
    assert sp.account_enabled is True
    assert sp.service_principal_type == "Application"
    assert sp.app_owner_organization_id == TENANT
    assert sp.sign_in_audience == "AzureADMyOrg"
    assert sp.tags == ("WindowsAzureActiveDirectoryIntegratedApp",)
    (secret,) = sp.password_credentials
    assert (secret.key_id, secret.display_name, secret.hint) == (SP_SECRET_KEY, "nightly sync", "Q~3")
    assert secret.start_date_time == utc("2026-11-01T09:30:00Z")
    assert secret.end_date_time == utc("2027-03-01T09:30:00Z")
    (cert,) = sp.key_credentials
    assert (cert.type, cert.usage, cert.key_id) == ("AsymmetricX509Cert", "Verify", SP_CERT_KEY)
    assert sp.verified_publisher is not None
    assert sp.verified_publisher.is_verified is False


def test_secret_material_is_never_kept() -> None:
    record = sp_with(
        passwordCredentials=[
            {**SERVICE_PRINCIPAL["passwordCredentials"][0], "secretText": "Q~3xYzNotForStorage"}
        ],
        keyCredentials=[{**SERVICE_PRINCIPAL["keyCredentials"][0], "key": "MIIDdzCCAl+gAwIBAgIQ"}],
    )
    dumped = str(ServicePrincipal.from_graph(record).model_dump(mode="json", by_alias=True))
    assert "Q~3xYzNotForStorage" not in dumped
    assert "MIIDdzCCAl" not in dumped
    assert "52B4E2F8" not in dumped  # customKeyIdentifier: "Do not use"


def test_application_fields_and_seven_digit_fractions() -> None:
    app = Application.from_graph(APPLICATION)
    assert (app.id, app.app_id, app.publisher_domain, app.notes) == (
        APP_OBJECT_ID,
        APP_ID,
        "contoso.onmicrosoft.com",
        None,
    )
    (secret,) = app.password_credentials
    assert secret.start_date_time == dt.datetime(2026, 11, 16, 8, 0, 0, 123456, tzinfo=dt.UTC)
    assert app.key_credentials == ()


def test_owners_are_told_apart_by_odata_type() -> None:
    alice, pipeline = (DirectoryPrincipal.model_validate(o) for o in SP_OWNERS["value"])
    carol = DirectoryPrincipal.model_validate(APP_OWNERS["value"][2])
    limited = DirectoryPrincipal.model_validate(LIMITED_OWNER)
    assert (alice.kind, pipeline.kind, carol.kind, limited.kind) == (
        "user",
        "servicePrincipal",
        "user",
        "user",
    )
    assert alice.standing() == "accountable"
    assert carol.is_guest
    assert carol.standing() == "guest"
    assert carol.standing(allow_guests=True) == "accountable"
    assert pipeline.standing() == "service-principal"
    assert pipeline.standing(allow_service_principals=True) == "accountable"
    assert limited.standing() == "unknown"  # never assumed enabled
    disabled = DirectoryPrincipal.model_validate({**APP_OWNERS["value"][0], "accountEnabled": False})
    assert disabled.standing() == "disabled"


def test_a_guest_is_recognised_by_its_upn_when_user_type_was_not_read() -> None:
    owner = {**APP_OWNERS["value"][2]}
    del owner["userType"]
    assert DirectoryPrincipal.model_validate(owner).is_guest
    member = {**APP_OWNERS["value"][0]}
    del member["userType"]
    assert not DirectoryPrincipal.model_validate(member).is_guest


def test_governed_object_from_graph_gathers_everything() -> None:
    obj = graph_object(member_of=MEMBER_OF["value"], role_assignments=ROLE_ASSIGNMENTS["value"])
    assert obj.id == SP_ID
    assert obj.display_name == "Contoso Payroll Sync"
    assert obj.application is not None
    assert obj.application.id == APP_OBJECT_ID
    # Alice owns both objects: listed once, the service principal's entry first
    assert [o.id for o in obj.all_owners()] == [ALICE_ID, PIPELINE_SP_ID, BOB_ID, CAROL_ID]
    assert [o.user_principal_name for o in obj.accountable_owners()] == [
        "alice@contoso.com",
        "bob@contoso.com",
    ]
    assert [o.id for o in obj.accountable_owners(allow_guests=True)] == [ALICE_ID, BOB_ID, CAROL_ID]
    assert [(p.value, p.resource_app_id, p.resource_display_name) for p in obj.app_permissions] == [
        ("Mail.ReadWrite", MICROSOFT_GRAPH_APP_ID, "Microsoft Graph"),
        ("User.Read.All", MICROSOFT_GRAPH_APP_ID, "Microsoft Graph"),
    ]
    assert obj.app_permissions[0].granted_at == dt.datetime(2026, 10, 2, 4, 22, 45, 498025, tzinfo=dt.UTC)
    assert [(r.role_template_id, r.directory_scope_id, r.via) for r in obj.directory_roles] == [
        (APPLICATION_ADMIN, "/", "memberOf"),
        (GLOBAL_ADMIN, "/", "roleAssignment"),
        (APPLICATION_ADMIN, f"/{APP_OBJECT_ID}", "roleAssignment"),
    ]
    assert [(c.location, c.kind, c.key_id) for c in obj.credentials()] == [
        ("servicePrincipal", "password", SP_SECRET_KEY),
        ("servicePrincipal", "certificate", SP_CERT_KEY),
        ("application", "password", APP_SECRET_KEY),
    ]


def test_a_permission_is_unnamed_when_its_resource_was_not_supplied() -> None:
    obj = GovernedObject.from_graph(SERVICE_PRINCIPAL, app_role_assignments=APP_ROLE_ASSIGNMENTS["value"])
    assert [(p.value, p.resource_app_id) for p in obj.app_permissions] == [(None, None), (None, None)]
    assert obj.app_permissions[0].resource_display_name == "Microsoft Graph"


def test_deleted_assignments_are_left_out() -> None:
    assignments = copy.deepcopy(APP_ROLE_ASSIGNMENTS["value"])
    assignments[0]["deletedDateTime"] = "2026-11-30T10:00:00Z"
    obj = graph_object(assignments=assignments)
    assert [p.value for p in obj.app_permissions] == ["User.Read.All"]


def test_round_trip_through_json_keeps_the_object() -> None:
    obj = graph_object(member_of=MEMBER_OF["value"], role_assignments=ROLE_ASSIGNMENTS["value"])
    document = obj.model_dump(mode="json")
    assert document["service_principal"]["password_credentials"][0]["end_date_time"] == "2027-03-01T09:30:00Z"
    assert GovernedObject.model_validate(document) == obj
    assert obj.with_notes("carol@contoso.com").notes == "carol@contoso.com"
    assert obj.notes == "alice@contoso.com; Bob@Contoso.com"


def test_missing_optional_properties_are_tolerated() -> None:
    obj = GovernedObject.from_graph({"id": SP_ID.upper()})
    assert obj.id == SP_ID  # GUIDs are kept in lower case
    assert obj.display_name == SP_ID
    assert (obj.notes, obj.application, obj.owners, obj.credentials()) == (None, None, (), ())
    nulls = ServicePrincipal.from_graph({"id": SP_ID, "passwordCredentials": None, "tags": None})
    assert (nulls.password_credentials, nulls.tags) == ((), ())


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"accountEnabled": "true"}, "accountEnabled"),
        ({"notes": 42}, "notes"),
        ({"appId": "not-a-guid"}, "appId"),
        ({"passwordCredentials": [{"keyId": SP_SECRET_KEY, "endDateTime": "next March"}]}, "endDateTime"),
        ({"verifiedPublisher": {"verifiedPublisherId": 1234}}, "verifiedPublisherId"),
    ],
)
def test_wrong_types_are_refused_with_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ServicePrincipal.from_graph(sp_with(**changes))
    assert field in str(caught.value)


def test_a_removed_delta_entry_is_refused() -> None:
    removed = {
        "@odata.type": "#microsoft.graph.servicePrincipal",
        "id": SP_ID,
        "@removed": {"reason": "deleted"},
    }
    with pytest.raises(ValueError, match="removed"):
        GovernedObject.from_graph(removed)


def test_an_assignment_of_another_principal_is_refused() -> None:
    assignments = copy.deepcopy(APP_ROLE_ASSIGNMENTS["value"])
    assignments[1]["principalId"] = PIPELINE_SP_ID
    with pytest.raises(ValueError, match="not to service principal"):
        graph_object(assignments=assignments)


def test_an_application_of_another_app_is_refused() -> None:
    with pytest.raises(ValidationError, match="is not the service principal's"):
        graph_object(application=app_with(appId="11111111-2222-4333-8444-555555555555"))


def test_member_of_skips_groups_and_role_assignments_take_expanded_templates() -> None:
    assert [r.display_name for r in directory_roles_from_member_of(MEMBER_OF["value"])] == [
        "Application Administrator"
    ]
    custom_definition = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
    expanded = [
        {
            "roleDefinitionId": custom_definition,
            "directoryScopeId": "/",
            "roleDefinition": {"displayName": "Payroll App Manager", "templateId": custom_definition},
        },
        {"roleDefinitionId": GLOBAL_ADMIN, "roleDefinition": {"displayName": "Global Administrator"}},
    ]
    roles = directory_roles_from_role_assignments(expanded)
    assert [(r.role_template_id, r.display_name, r.tenant_wide) for r in roles] == [
        (custom_definition, "Payroll App Manager", True),
        (GLOBAL_ADMIN, "Global Administrator", True),
    ]


@pytest.mark.parametrize("suffix", ["\n", " ", "x", "\r\n"])
def test_a_guid_with_anything_after_it_is_refused(suffix: str) -> None:
    from pydantic import TypeAdapter

    from shared.governance.model import Guid

    adapter: TypeAdapter[str] = TypeAdapter(Guid)
    good = "00000000-0000-4000-8000-000000000001"
    assert adapter.validate_python(good) == good
    with pytest.raises(ValidationError, match="is not a GUID"):
        adapter.validate_python(good + suffix)
