"""The fake tenant's directory: users, service principals and groups, fixed by the seed.

Audit records reference these objects, sometimes by object id only; Graph
`directoryObjects/getByIds` resolves every one of them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

TENANT_DOMAIN = "contoso.onmicrosoft.com"


def guid(rng: random.Random) -> str:
    """A version-4 style GUID drawn from `rng` (deterministic, unlike uuid.uuid4)."""
    value = rng.getrandbits(128)
    value = (value & ~(0xF << 76)) | (0x4 << 76)  # version 4
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# (display name, UPN local part, job title). Non-ASCII names on purpose: Graph and the
# Management API send them as UTF-8 and the app must keep them intact.
_PEOPLE: tuple[tuple[str, str, str], ...] = (
    ("Zoë Łukasz", "zoe.lukasz", "Global Administrator"),
    ("田中 太郎", "taro.tanaka", "IT Administrator"),
    ("Søren Ødegård", "soren.odegard", "Security Engineer"),
    ("Adele Vance", "adelev", "Retail Manager"),
    ("Alex Wilber", "alexw", "Marketing Assistant"),
    ("Megan Bowen", "meganb", "Marketing Manager"),
    ("Lee Gu", "leeg", "Director"),
    ("Nestor Wilke", "nestorw", "Director"),
    ("Patti Fernandez", "pattif", "President"),
    ("Lynne Robbins", "lynner", "Planner"),
    ("Diego Siciliani", "diegos", "HR Manager"),
    ("Isaiah Langer", "isaiahl", "Sales Rep"),
    ("Johanna Lorenz", "johannal", "Senior Engineer"),
    ("Grady Archie", "gradya", "Designer"),
    ("Henrietta Mueller", "henriettam", "Developer"),
    ("Joni Sherman", "jonis", "Paralegal"),
    ("Lidia Holloway", "lidiah", "Product Manager"),
    ("Miriam Graham", "miriamg", "Director"),
    ("Pradeep Gupta", "pradeepg", "Accountant"),
    ("José Núñez", "jose.nunez", "Sales Manager"),
    ("Ayşe Y\u0131lmaz", "ayse.yilmaz", "Support Engineer"),
    ("François Lefèvre", "francois.lefevre", "Controller"),
    ("Björn Åström", "bjorn.astrom", "Network Engineer"),
    ("Małgorzata Wójcik", "malgorzata.wojcik", "Analyst"),
    ("Nguyễn Văn An", "an.nguyen", "Developer"),
    ("Дмитрий Иванов", "dmitry.ivanov", "Architect"),
    ("Αλέξανδρος Παπαδόπουλος", "alexandros.papadopoulos", "Consultant"),
    ("김민준", "minjun.kim", "Intern"),
    ("محمد العلي", "mohammed.alali", "Finance Lead"),
    ("Ærin Þórsdóttir", "aerin.thorsdottir", "Helpdesk Technician"),
)
_ADMIN_COUNT = 6  # the first people are the tenant's administrators

# Real first-party application ids, plus a few line-of-business apps.
_APPS: tuple[tuple[str, str | None], ...] = (
    ("Microsoft Graph PowerShell", "14d82eec-204b-4c2f-b7e8-296a70dab67e"),
    ("Azure Portal", "c44b4083-3bb0-49c1-b47d-974e53cbdf3c"),
    ("Microsoft Intune", "0000000a-0000-0000-c000-000000000000"),
    ("Office 365 Exchange Online", "00000002-0000-0ff1-ce00-000000000000"),
    ("Office 365 SharePoint Online", "00000003-0000-0ff1-ce00-000000000000"),
    ("Microsoft Teams", "1fec8e78-bce4-4aaf-ab1b-5451cc387264"),
    ("Microsoft Office", "d3590ed6-52b3-4102-aeff-aad2292ab01c"),
    ("Microsoft Azure CLI", "04b07795-8ddb-461a-bbee-02f9e1bf7b46"),
    ("Contoso HR Sync", None),
    ("Backup Connector für Exchange", None),
    ("Zoë's Automation", None),
    ("監査エクスポート", None),
)
_GROUPS: tuple[tuple[str, str], ...] = (
    ("All Company", "allcompany"),
    ("Finance Team", "finance"),
    ("Helpdesk Admins", "helpdesk-admins"),
    ("Équipe Marketing", "equipe-marketing"),
    ("営業部", "sales-jp"),
    ("Conditional Access Exclusions", "ca-exclusions"),
    ("Intune Pilot Devices", "intune-pilot"),
    ("Sales and Marketing", "salesandmarketing"),
)

# Built-in Entra roles with their real template ids.
ROLES: tuple[tuple[str, str, str], ...] = (
    ("Global Administrator", "62e90394-69f5-4237-9190-012177145e10", "CompanyAdministrator"),
    ("Exchange Administrator", "29232cdf-9323-42fd-ade2-1d097af3e4de", "ExchangeServiceAdministrator"),
    ("SharePoint Administrator", "f28a1f50-f6e7-4571-818b-6a12f2af6b6c", "SharePointServiceAdministrator"),
    ("Intune Administrator", "3a2c62db-5318-420d-8d74-23affee5d9d5", "IntuneServiceAdministrator"),
    ("User Administrator", "fe930be7-5e62-47db-91af-98c3a49a38b1", "UserAccountAdministrator"),
    ("Privileged Role Administrator", "e8611ab8-c189-46e8-94e1-60213ab1f814", "PrivilegedRoleAdministrator"),
    ("Security Administrator", "194ae4cb-b126-40b2-bd5b-6091b380977d", "SecurityAdministrator"),
    ("Application Administrator", "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3", "ApplicationAdministrator"),
)


@dataclass(frozen=True, slots=True)
class User:
    id: str
    display_name: str
    upn: str
    job_title: str

    @property
    def given_name(self) -> str:
        return self.display_name.split(" ")[0]

    @property
    def surname(self) -> str | None:
        parts = self.display_name.split(" ", 1)
        return parts[1] if len(parts) > 1 else None


@dataclass(frozen=True, slots=True)
class ServicePrincipal:
    id: str
    app_id: str
    display_name: str


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    display_name: str
    mail_nickname: str


DirectoryObject = User | ServicePrincipal | Group


@dataclass(frozen=True)
class Directory:
    domain: str
    users: tuple[User, ...]
    admins: tuple[User, ...]
    service_principals: tuple[ServicePrincipal, ...]
    groups: tuple[Group, ...]
    by_id: dict[str, DirectoryObject]

    def get(self, object_id: str) -> DirectoryObject | None:
        return self.by_id.get(object_id.lower())


def build_directory(seed: int) -> Directory:
    rng = random.Random(f"{seed}:directory")  # noqa: S311 - deterministic test data, not security
    users = tuple(
        User(id=guid(rng), display_name=name, upn=f"{local}@{TENANT_DOMAIN}", job_title=title)
        for name, local, title in _PEOPLE
    )
    sps = tuple(
        ServicePrincipal(id=guid(rng), app_id=app_id or guid(rng), display_name=name)
        for name, app_id in _APPS
    )
    groups = tuple(Group(id=guid(rng), display_name=name, mail_nickname=nick) for name, nick in _GROUPS)
    by_id: dict[str, DirectoryObject] = {}
    objects: tuple[DirectoryObject, ...] = (*users, *sps, *groups)
    for obj in objects:
        by_id[obj.id] = obj
    return Directory(
        domain=TENANT_DOMAIN,
        users=users,
        admins=users[:_ADMIN_COUNT],
        service_principals=sps,
        groups=groups,
        by_id=by_id,
    )


def graph_type_name(obj: DirectoryObject) -> str:
    if isinstance(obj, User):
        return "user"
    if isinstance(obj, ServicePrincipal):
        return "servicePrincipal"
    return "group"


def to_graph(obj: DirectoryObject) -> dict[str, Any]:
    """The object as Graph v1.0 returns it from directoryObjects/getByIds."""
    if isinstance(obj, User):
        return {
            "@odata.type": "#microsoft.graph.user",
            "id": obj.id,
            "businessPhones": [],
            "displayName": obj.display_name,
            "givenName": obj.given_name,
            "jobTitle": obj.job_title,
            "mail": obj.upn,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": None,
            "surname": obj.surname,
            "userPrincipalName": obj.upn,
        }
    if isinstance(obj, ServicePrincipal):
        return {
            "@odata.type": "#microsoft.graph.servicePrincipal",
            "id": obj.id,
            "accountEnabled": True,
            "appDisplayName": obj.display_name,
            "appId": obj.app_id,
            "displayName": obj.display_name,
            "servicePrincipalNames": [obj.app_id],
            "servicePrincipalType": "Application",
            "tags": [],
        }
    return {
        "@odata.type": "#microsoft.graph.group",
        "id": obj.id,
        "description": None,
        "displayName": obj.display_name,
        "groupTypes": [],
        "mail": None,
        "mailEnabled": False,
        "mailNickname": obj.mail_nickname,
        "securityEnabled": True,
    }
