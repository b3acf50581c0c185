"""Fixed facts the simulated applications and service principals are drawn from.

- `GRAPH_APP_ROLES`: Microsoft Graph application permissions (app roles) with their real ids, values and
  display names (Graph's permissions reference; the descriptions are the simulator's own short wording).
  The tenant's "Microsoft Graph" service principal publishes them as `appRoles`, so an
  appRoleAssignment's `appRoleId` resolves to a permission value as it does in Entra.
- `DIRECTORY_ROLES`: built-in Entra roles (real role template ids) a service principal may hold.
- The Microsoft services tenant that owns first-party apps, fictional vendors (Microsoft's sample company
  names) that publish third-party multi-tenant apps, and the name parts of line-of-business apps.
"""

from __future__ import annotations

from dataclasses import dataclass

MICROSOFT_GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# The tenant that owns Microsoft's first-party applications (appOwnerOrganizationId of their principals).
MICROSOFT_SERVICES_TENANT_ID = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
# The directory's first-party principals (devtools/simulator/directory.py): Microsoft apps, no owners here.
FIRST_PARTY_APP_IDS = frozenset(
    {
        "14d82eec-204b-4c2f-b7e8-296a70dab67e",  # Microsoft Graph PowerShell
        "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",  # Azure Portal
        "0000000a-0000-0000-c000-000000000000",  # Microsoft Intune
        "00000002-0000-0ff1-ce00-000000000000",  # Office 365 Exchange Online
        "00000003-0000-0ff1-ce00-000000000000",  # Office 365 SharePoint Online
        "1fec8e78-bce4-4aaf-ab1b-5451cc387264",  # Microsoft Teams
        "d3590ed6-52b3-4102-aeff-aad2292ab01c",  # Microsoft Office
        "04b07795-8ddb-461a-bbee-02f9e1bf7b46",  # Microsoft Azure CLI
    }
)
# The delegated permission User.Read (type "Scope" in requiredResourceAccess).
USER_READ_SCOPE_ID = "e1fe6dd8-ba31-4d61-89e7-88639da4683d"


@dataclass(frozen=True)
class GraphAppRole:
    """One Microsoft Graph application permission: appRole id, value, display name, and whether the
    simulator draws it as a high-privilege grant (the governance issue's default list and a few more)."""

    id: str
    value: str
    display_name: str
    high_privilege: bool

    def description(self) -> str:
        action = self.display_name[0].lower() + self.display_name[1:]
        return f"Allows the app to {action}, without a signed-in user."


GRAPH_APP_ROLES: tuple[GraphAppRole, ...] = (
    # Drawn as ordinary grants.
    GraphAppRole(
        "df021288-bdef-4463-88db-98f22de89214", "User.Read.All", "Read all users' full profiles", False
    ),
    GraphAppRole("7ab1d382-f21e-4acd-a863-ba3e13f7da61", "Directory.Read.All", "Read directory data", False),
    GraphAppRole("5b567255-7703-4780-807c-7be8301ae99b", "Group.Read.All", "Read all groups", False),
    GraphAppRole(
        "98830695-27a2-44f7-8c18-0c3ebc9698f6", "GroupMember.Read.All", "Read all group memberships", False
    ),
    GraphAppRole(
        "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30", "Application.Read.All", "Read all applications", False
    ),
    GraphAppRole(
        "b0afded3-3588-46d8-8b3d-9842eff778da", "AuditLog.Read.All", "Read all audit log data", False
    ),
    GraphAppRole("b633e1c5-b582-4048-a93e-9f11b44c7e96", "Mail.Send", "Send mail as any user", False),
    GraphAppRole("810c84a8-4a9e-49e6-bf7d-12d183f40d01", "Mail.Read", "Read mail in all mailboxes", False),
    GraphAppRole(
        "798ee544-9d2d-430c-a058-570e29e34338", "Calendars.Read", "Read calendars in all mailboxes", False
    ),
    GraphAppRole(
        "332a536c-c7ef-4017-ab91-336970924f0d", "Sites.Read.All", "Read items in all site collections", False
    ),
    GraphAppRole(
        "01d4889c-1287-42c6-ac1f-5d1e02578ef6", "Files.Read.All", "Read files in all site collections", False
    ),
    GraphAppRole(
        "498476ce-e0fe-48b0-b801-37ba7e2685c6",
        "Organization.Read.All",
        "Read organization information",
        False,
    ),
    GraphAppRole("230c1aed-a721-4c5d-9cb4-a90514e508ef", "Reports.Read.All", "Read all usage reports", False),
    GraphAppRole(
        "246dd0d5-5bd0-4def-940b-0421030a5b68", "Policy.Read.All", "Read your organization's policies", False
    ),
    GraphAppRole(
        "483bed4a-2ad3-4361-a73b-c83ccdbdc53c",
        "RoleManagement.Read.Directory",
        "Read all directory RBAC settings",
        False,
    ),
    GraphAppRole(
        "dc377aa6-52d8-4e23-b271-2a7ae04cedf3",
        "DeviceManagementConfiguration.Read.All",
        "Read Microsoft Intune device configuration and policies",
        False,
    ),
    GraphAppRole(
        "2f51be20-0bb4-4fed-bf7b-db946066c75e",
        "DeviceManagementManagedDevices.Read.All",
        "Read Microsoft Intune devices",
        False,
    ),
    GraphAppRole(
        "bf394140-e372-4bf9-a898-299cfc7564e5",
        "SecurityEvents.Read.All",
        "Read your organization's security events",
        False,
    ),
    GraphAppRole(
        "2280dda6-0bfd-44ee-a2f4-cb867cfc4c1e", "Team.ReadBasic.All", "Get a list of all teams", False
    ),
    GraphAppRole(
        "7b2449af-6ccd-4f4d-9f78-e550c193f0d1", "ChannelMessage.Read.All", "Read all channel messages", False
    ),
    GraphAppRole(
        "883ea226-0bf2-4a8f-9f9d-92c9162a727d", "Sites.Selected", "Access selected site collections", False
    ),
    GraphAppRole(
        "741f803b-c850-494e-b5df-cde7c675a1ca",
        "User.ReadWrite.All",
        "Read and write all users' full profiles",
        False,
    ),
    GraphAppRole(
        "62a82d76-70ea-41e2-9197-370581804d09", "Group.ReadWrite.All", "Read and write all groups", False
    ),
    GraphAppRole(
        "9492366f-7969-46a4-8d15-ed1a20078fff",
        "Sites.ReadWrite.All",
        "Read and write items in all site collections",
        False,
    ),
    GraphAppRole(
        "ef54d2bf-783f-4e0f-bca1-3210c0444d99",
        "Calendars.ReadWrite",
        "Read and write calendars in all mailboxes",
        False,
    ),
    GraphAppRole(
        "9241abd9-d0e6-425a-bd4f-47ba86e767a4",
        "DeviceManagementConfiguration.ReadWrite.All",
        "Read and write Microsoft Intune device configuration and policies",
        False,
    ),
    # Drawn as high-privilege grants.
    GraphAppRole(
        "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8",
        "RoleManagement.ReadWrite.Directory",
        "Read and write all directory RBAC settings",
        True,
    ),
    GraphAppRole(
        "06b708a9-e830-4db3-a914-8e69da51d44f",
        "AppRoleAssignment.ReadWrite.All",
        "Manage app permission grants and app role assignments",
        True,
    ),
    GraphAppRole(
        "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
        "Application.ReadWrite.All",
        "Read and write all applications",
        True,
    ),
    GraphAppRole(
        "19dbc75e-c2e2-444c-a770-ec69d8559fc7",
        "Directory.ReadWrite.All",
        "Read and write directory data",
        True,
    ),
    GraphAppRole(
        "01c0a623-fc9b-48e9-b794-0756f8e8f067",
        "Policy.ReadWrite.ConditionalAccess",
        "Read and write your organization's conditional access policies",
        True,
    ),
    GraphAppRole(
        "50483e42-d915-4231-9639-7fdb7fd190e5",
        "UserAuthenticationMethod.ReadWrite.All",
        "Read and write all users' authentication methods",
        True,
    ),
    GraphAppRole(
        "7e05723c-0bb0-42da-be95-ae9f08a6e53c", "Domain.ReadWrite.All", "Read and write domains", True
    ),
    GraphAppRole(
        "e2a3a72e-5f79-4c64-b1b1-878b674786c9", "Mail.ReadWrite", "Read and write mail in all mailboxes", True
    ),
    GraphAppRole(
        "75359482-378d-4052-8f01-80520e7db3cd",
        "Files.ReadWrite.All",
        "Read and write files in all site collections",
        True,
    ),
    GraphAppRole(
        "a82116e5-55eb-4c41-a434-62fe8a61c773",
        "Sites.FullControl.All",
        "Have full control of all site collections",
        True,
    ),
    GraphAppRole(
        "dd199f4a-f148-40a4-a2ec-f0069cc799ec",
        "RoleAssignmentSchedule.ReadWrite.Directory",
        "Read, update, and delete all policies for privileged role assignments of your company's directory",
        True,
    ),
    GraphAppRole(
        "18a4783c-866b-4cc7-a460-3d5e5662c884",
        "Application.ReadWrite.OwnedBy",
        "Manage apps that this app creates or owns",
        True,
    ),
    GraphAppRole(
        "a402ca1c-2696-4531-972d-6e5ee4aa11ea",
        "Policy.ReadWrite.PermissionGrant",
        "Manage consent and permission grant policies",
        True,
    ),
    GraphAppRole(
        "dbaae8cf-10b5-4b86-a4a1-f871c94c6695",
        "GroupMember.ReadWrite.All",
        "Read and write all group memberships",
        True,
    ),
)
GRAPH_ROLES_BY_ID = {role.id: role for role in GRAPH_APP_ROLES}
GRAPH_ROLES_BY_VALUE = {role.value.lower(): role for role in GRAPH_APP_ROLES}
ORDINARY_GRAPH_ROLES = tuple(role for role in GRAPH_APP_ROLES if not role.high_privilege)
HIGH_PRIVILEGE_GRAPH_ROLES = tuple(role for role in GRAPH_APP_ROLES if role.high_privilege)
assert len(GRAPH_ROLES_BY_ID) == len(GRAPH_APP_ROLES) == len(GRAPH_ROLES_BY_VALUE)


@dataclass(frozen=True)
class DirectoryRoleTemplate:
    """A built-in Entra role: display name, role template id (the same in every tenant), and a short
    description (the simulator's wording)."""

    display_name: str
    template_id: str
    description: str


DIRECTORY_ROLES: tuple[DirectoryRoleTemplate, ...] = (
    DirectoryRoleTemplate(
        "Global Administrator",
        "62e90394-69f5-4237-9190-012177145e10",
        "Can manage all aspects of Microsoft Entra ID and Microsoft services.",
    ),
    DirectoryRoleTemplate(
        "Privileged Role Administrator",
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
        "Can manage role assignments in Microsoft Entra ID and Privileged Identity Management.",
    ),
    DirectoryRoleTemplate(
        "Privileged Authentication Administrator",
        "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
        "Can access to view, set and reset authentication method information for any user.",
    ),
    DirectoryRoleTemplate(
        "Application Administrator",
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
        "Can create and manage all aspects of app registrations and enterprise apps.",
    ),
    DirectoryRoleTemplate(
        "Cloud Application Administrator",
        "158c047a-c907-4556-b7ef-446551a6b5f7",
        "Can create and manage all aspects of app registrations and enterprise apps except App Proxy.",
    ),
    DirectoryRoleTemplate(
        "User Administrator",
        "fe930be7-5e62-47db-91af-98c3a49a38b1",
        "Can manage all aspects of users and groups, including resetting passwords for limited admins.",
    ),
    DirectoryRoleTemplate(
        "Exchange Administrator",
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
        "Can manage all aspects of the Exchange product.",
    ),
    DirectoryRoleTemplate(
        "Security Reader",
        "5d6b6bb7-de71-4623-b4af-96380a352509",
        "Can read security information and reports in Microsoft Entra ID and Office 365.",
    ),
    DirectoryRoleTemplate(
        "Global Reader",
        "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
        "Can read everything that a Global Administrator can, but not update anything.",
    ),
    DirectoryRoleTemplate(
        "Directory Readers", "88d8e3e3-8f55-4a1e-953a-9b9898b8876b", "Can read basic directory information."
    ),
)
# Drawn for the few service principals that hold a role: reader roles are the common case.
DIRECTORY_ROLE_WEIGHTS: tuple[float, ...] = (1, 1, 0.5, 2, 2, 1, 1, 3, 3, 4)
assert len(DIRECTORY_ROLE_WEIGHTS) == len(DIRECTORY_ROLES)

# Fictional vendors (Microsoft's sample company names) that publish multi-tenant apps:
# (publisher name, publisher domain).
VENDORS: tuple[tuple[str, str], ...] = (
    ("Fabrikam, Inc.", "fabrikam.com"),
    ("Northwind Traders", "northwindtraders.com"),
    ("Adatum Corporation", "adatum.com"),
    ("Litware, Inc.", "litwareinc.com"),
    ("Tailspin Toys", "tailspintoys.com"),
    ("Wingtip Toys", "wingtiptoys.com"),
    ("Proseware, Inc.", "proseware.com"),
    ("Woodgrove Bank", "woodgrovebank.com"),
    ("Alpine Ski House", "alpineskihouse.com"),
    ("Trey Research", "treyresearch.net"),
    ("Lucerne Publishing", "lucernepublishing.com"),
    ("Coho Winery", "cohowinery.com"),
    ("Relecloud", "relecloud.com"),
    ("VanArsdel, Ltd.", "vanarsdelltd.com"),
    ("Datum Software GmbH", "datum-software.de"),
)
VENDOR_PRODUCTS = (
    "Expense Cloud",
    "Secure Mail Gateway",
    "HR Connect",
    "Board Portal",
    "Contract Manager",
    "Survey Studio",
    "Backup Vault",
    "Signature Hub",
    "Travel Desk",
    "Learning Portal",
    "Analytics Connector",
    "Ticketing",
    "Archiver für Exchange",
    "Planner Sync",
    "Phishing Simulator",
    "Kalender-Assistent",
)

# Line-of-business app names: "{team} {purpose}", numbered from the second of a name on.
TEAMS = (
    "Finance",
    "HR",
    "Payroll",
    "Sales",
    "Marketing",
    "Legal",
    "Support",
    "IT Ops",
    "Security",
    "Data",
    "Facilities",
    "Procurement",
    "Engineering",
    "Research",
    "Customer Success",
    "Logistik",
    "Recrutement",
    "経理",
    "Compliance",
    "Identity",
)
PURPOSES = (
    "Reporting API",
    "Sync Service",
    "Automation",
    "Connector",
    "Web App",
    "Daemon",
    "Provisioning",
    "Export Job",
    "Mailer",
    "Portal",
    "Bot",
    "ETL Pipeline",
    "Backup Agent",
    "Webhook Receiver",
    "Terraform Runner",
    "Dashboard",
)
MANAGED_IDENTITY_NAMES = (
    "func-aoc-prod",
    "vm-build-agent",
    "logic-invoice-approval",
    "aks-agentpool",
    "adf-ingest",
    "app-portal",
)
SECRET_DISPLAY_NAMES = (
    "prod",
    "CI pipeline",
    "Terraform",
    None,
    "rotated by ops",
    "Zoë's laptop",
    "integration-test",
    "client secret",
    "Schlüssel 2025",
    "temporary",
)
CERTIFICATE_SUBJECTS = ("CN=contoso-automation", "CN=svc-daemon", "CN=api.contoso.com", "CN=sso-signing")
FREE_TEXT_NOTES = (
    "Owned by the finance team",
    "Ask IT Ops before changing anything",
    "Legacy integration - do not delete",
    "Ticket INC-48213",
    "Verantwortlich: Plattform-Team",
)
