"""The national clouds: where to get tokens, and where Microsoft Graph and the Management Activity API live.

Sources (checked against Microsoft's documentation):

- Entra ID authority hosts and Graph roots: "Microsoft Graph national cloud deployments"
  (learn.microsoft.com/graph/deployments). GCC High and DoD share the US Government authority
  (login.microsoftonline.us) but have different Graph roots (graph.microsoft.us and
  dod-graph.microsoft.us). 21Vianet's authority is login.chinacloudapi.cn (MSAL also knows it as
  login.partner.microsoftonline.cn).
- Management Activity API roots: "Office 365 Management Activity API reference", section
  "Activity API operations" (manage.office.com, manage.office365.us for GCC High,
  manage.protection.apps.mil for DoD); 21Vianet uses manage.office365.cn.

- Access-token issuers: "Access token claims reference" (learn.microsoft.com/entra/identity-platform/
  access-token-claims-reference): v1.0 tokens carry `iss` `https://sts.windows.net/{tid}/`, v2.0 tokens
  `{v2 issuer host}/{tid}/v2.0`. The v1 issuer host is `sts.windows.net` in the global and US Government
  clouds and `sts.chinacloudapi.cn` for 21Vianet; the v2 issuer host is the authority host, except for
  21Vianet, whose `login.chinacloudapi.cn` metadata names `login.partner.microsoftonline.cn` as issuer
  (MSAL's built-in cloud metadata; Microsoft Q&A "token issuers for the sovereign clouds").

GCC (not GCC High) is the global cloud except for the Management API, which is at
https://manage-gcc.office.com: use `resolve_endpoints("global", management_base=...,
management_resource=...)` with that URL for both.

Token scopes come from a *resource* (the App ID URI of the API), kept apart from the *base* URL that
requests go to. Overriding a base (the local tenant simulator, e.g. graph_base
"http://127.0.0.1:7072/graph") keeps the cloud's real resource, so the app asks for the same scope
("https://graph.microsoft.com/.default") whether it talks to Microsoft or to the simulator. A resource
can be overridden on its own when it really differs (GCC's Management API).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Literal, get_args
from urllib.parse import urlsplit

CloudName = Literal["global", "usgov", "dod", "china"]
CLOUD_NAMES: tuple[CloudName, ...] = get_args(CloudName)


@dataclass(frozen=True)
class CloudEndpoints:
    """Absolute URLs without a trailing slash.

    `graph_base` and `management_base` are roots without a version (".../v1.0" and "/api/v1.0" are the
    callers' business). `graph_resource` and `management_resource` are what token scopes are made of.
    `v1_issuer_host` and `v2_issuer_host` are the hosts in the `iss` of the access tokens Entra ID
    issues for our own API (see `v1_issuer` / `v2_issuer`).
    """

    authority_host: str
    graph_base: str
    management_base: str
    graph_resource: str
    management_resource: str
    v1_issuer_host: str
    v2_issuer_host: str

    def v1_issuer(self, tenant_id: str) -> str:
        """The `iss` of a v1.0 access token issued by `tenant_id`, e.g. "https://sts.windows.net/{tid}/"."""
        return f"{self.v1_issuer_host}/{tenant_id}/"

    def v2_issuer(self, tenant_id: str) -> str:
        """The `iss` of a v2.0 access token, e.g. "https://login.microsoftonline.com/{tid}/v2.0"."""
        return f"{self.v2_issuer_host}/{tenant_id}/v2.0"

    @property
    def graph_scope(self) -> str:
        """The client-credentials scope for Microsoft Graph, e.g. "https://graph.microsoft.com/.default"."""
        return f"{self.graph_resource}/.default"

    @property
    def management_scope(self) -> str:
        """The client-credentials scope for the Management Activity API."""
        return f"{self.management_resource}/.default"


def _cloud(
    authority_host: str,
    graph: str,
    management: str,
    *,
    v1_issuer_host: str = "https://sts.windows.net",
    v2_issuer_host: str | None = None,
) -> CloudEndpoints:
    return CloudEndpoints(
        authority_host=authority_host,
        graph_base=graph,
        management_base=management,
        graph_resource=graph,
        management_resource=management,
        v1_issuer_host=v1_issuer_host,
        v2_issuer_host=v2_issuer_host or authority_host,
    )


CLOUDS: MappingProxyType[CloudName, CloudEndpoints] = MappingProxyType(
    {
        "global": _cloud(
            "https://login.microsoftonline.com", "https://graph.microsoft.com", "https://manage.office.com"
        ),
        # Microsoft 365 GCC High (Azure US Government).
        "usgov": _cloud(
            "https://login.microsoftonline.us", "https://graph.microsoft.us", "https://manage.office365.us"
        ),
        # Microsoft 365 DoD.
        "dod": _cloud(
            "https://login.microsoftonline.us",
            "https://dod-graph.microsoft.us",
            "https://manage.protection.apps.mil",
        ),
        # Microsoft 365 operated by 21Vianet.
        "china": _cloud(
            "https://login.chinacloudapi.cn",
            "https://microsoftgraph.chinacloudapi.cn",
            "https://manage.office365.cn",
            v1_issuer_host="https://sts.chinacloudapi.cn",
            v2_issuer_host="https://login.partner.microsoftonline.cn",
        ),
    }
)


def parse_cloud_name(value: str) -> CloudName:
    """`value` as a CloudName (case and surrounding blanks ignored); ValueError names the choices."""
    name = value.strip().lower()
    for cloud in CLOUD_NAMES:
        if cloud == name:
            return cloud
    raise ValueError(f"unknown cloud {value!r}: expected one of {', '.join(CLOUD_NAMES)}")


def _absolute_url(name: str, value: str) -> str:
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an absolute http(s) URL, got {value!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"{name} must not have a query or fragment, got {value!r}")
    return url


def resolve_endpoints(
    cloud: CloudName,
    *,
    authority_host: str | None = None,
    graph_base: str | None = None,
    management_base: str | None = None,
    graph_resource: str | None = None,
    management_resource: str | None = None,
    v1_issuer_host: str | None = None,
    v2_issuer_host: str | None = None,
) -> CloudEndpoints:
    """The cloud's endpoints, with each given override winning.

    Overriding a base does not change the matching resource (see the module docstring); pass
    `graph_resource` / `management_resource` to change a scope. Overriding the authority with another
    host (a local simulator) makes that host the v2 token issuer too, as a real authority is its own v2
    issuer; the v1 issuer stays the cloud's. Empty strings count as "not given", so unset app settings
    can be passed straight through.
    """
    if cloud not in CLOUDS:
        raise ValueError(f"unknown cloud {cloud!r}: expected one of {', '.join(CLOUD_NAMES)}")
    overrides = {
        "authority_host": authority_host,
        "graph_base": graph_base,
        "management_base": management_base,
        "graph_resource": graph_resource,
        "management_resource": management_resource,
        "v1_issuer_host": v1_issuer_host,
        "v2_issuer_host": v2_issuer_host,
    }
    changes = {name: _absolute_url(name, value) for name, value in overrides.items() if value}
    base = CLOUDS[cloud]
    moved_authority = changes.get("authority_host", base.authority_host) != base.authority_host
    if moved_authority and "v2_issuer_host" not in changes:
        changes["v2_issuer_host"] = changes["authority_host"]
    return replace(base, **changes)
