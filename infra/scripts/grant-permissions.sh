#!/usr/bin/env bash
# Grant AOC Functions the Microsoft 365 API permissions it needs: application permissions (app roles) of
# Microsoft Graph and the Office 365 Management APIs, assigned to a service principal in Entra ID.
#
# By default the target is the Function App's user-assigned managed identity (M365_AUTH_MODE=identity),
# read from the azd environment (AZURE_MANAGED_IDENTITY_PRINCIPAL_ID, an output of infra/main.bicep).
# With --app-id the target is the service principal of an app registration (M365_AUTH_MODE=msal): an
# app role assignment is the same thing as admin consent for that application permission.
#
# App role ids are looked up by their value in the resource service principal's appRoles at run time;
# nothing is hard-coded but the two well-known resource application ids. Idempotent: roles the target
# already holds are reported and skipped.
#
# Needs: Azure CLI (az), signed in (`az login`) to the tenant as Global Administrator or Privileged Role
# Administrator (granting Microsoft Graph application permissions requires one of them).
set -euo pipefail

readonly GRAPH_APP_ID="00000003-0000-0000-c000-000000000000"
readonly O365_MANAGEMENT_APP_ID="c5393580-f805-4401-95e8-94b7a6ef2fc2"

readonly GRAPH_ROLES=(
  "AuditLog.Read.All"                      # directory audits and sign-ins
  "Directory.Read.All"                     # sign-ins, names through directoryObjects/getByIds; governance:
                                           #   owners' accountEnabled/userType, memberOf directory roles
  "DeviceManagementApps.Read.All"          # Intune audit events
  "DeviceManagementConfiguration.Read.All" # Intune audit events
  "Application.Read.All"                   # governance: servicePrincipals/applications delta, owners,
                                           #   appRoleAssignments (README "Service principal governance")
)
# Governance in Update mode (GOVERNANCE_UPDATE_MODE=Update) writes servicePrincipal.notes. The least
# privileged application permission of PATCH /servicePrincipals/{id}, Application.ReadWrite.OwnedBy, only
# reaches apps this app owns, so governing the tenant's apps takes Application.ReadWrite.All.
readonly GOVERNANCE_WRITE_ROLE="Application.ReadWrite.All"
readonly MANAGEMENT_ROLES=("ActivityFeed.Read")
readonly MANAGEMENT_DLP_ROLE="ActivityFeed.ReadDlp"

usage() {
  cat <<'USAGE'
Usage: infra/scripts/grant-permissions.sh [TARGET] [OPTIONS]

Grant the Microsoft 365 application permissions AOC Functions needs to a service principal:
  Microsoft Graph:              AuditLog.Read.All, Directory.Read.All,
                                DeviceManagementApps.Read.All, DeviceManagementConfiguration.Read.All,
                                Application.Read.All (+ Application.ReadWrite.All in governance Update mode)
  Office 365 Management APIs:   ActivityFeed.Read (+ ActivityFeed.ReadDlp with --dlp)

TARGET (one of; default: the azd environment's AZURE_MANAGED_IDENTITY_PRINCIPAL_ID)
  --principal-id ID             object id of the service principal (a managed identity's principal id)
  --identity-name NAME --resource-group RG
                                a user-assigned managed identity, looked up with az identity show
  --app-id APP_ID               the service principal of this app registration (M365_AUTH_MODE=msal)

OPTIONS
  --dlp                         also grant ActivityFeed.ReadDlp (MANAGEMENT_INCLUDE_DLP=true)
  --governance-mode MODE        ReportOnly (default) or Update; default: the environment's
                                GOVERNANCE_UPDATE_MODE. Update also grants Application.ReadWrite.All, so
                                service principal governance can write notes; ReportOnly never writes
  --graph-url URL               Microsoft Graph root (default: the current az cloud's, e.g.
                                https://graph.microsoft.com; DoD tenants: https://dod-graph.microsoft.us)
  --dry-run                     show what would be granted, change nothing
  -h, --help                    this help

Run it as Global Administrator or Privileged Role Administrator of the Microsoft 365 tenant
(`az login --tenant <tenant id>`). Safe to run again: granted roles are skipped.
USAGE
}

die() {
  echo "error: $*" >&2
  exit 1
}

is_guid() {
  [[ "$1" =~ ^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$ ]]
}

principal_id=""
app_id=""
identity_name=""
resource_group=""
include_dlp=false
dry_run=false
graph_url=""
governance_mode="${GOVERNANCE_UPDATE_MODE:-ReportOnly}"

need_value() {
  [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || die "$1 needs a value (see --help)"
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --principal-id) need_value "$@"; principal_id="$2"; shift 2 ;;
    --app-id) need_value "$@"; app_id="$2"; shift 2 ;;
    --identity-name) need_value "$@"; identity_name="$2"; shift 2 ;;
    --resource-group) need_value "$@"; resource_group="$2"; shift 2 ;;
    --graph-url) need_value "$@"; graph_url="$2"; shift 2 ;;
    --governance-mode) need_value "$@"; governance_mode="$2"; shift 2 ;;
    --dlp) include_dlp=true; shift ;;
    --dry-run) dry_run=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

targets=0
[[ -n "$principal_id" ]] && targets=$((targets + 1))
[[ -n "$app_id" ]] && targets=$((targets + 1))
[[ -n "$identity_name" ]] && targets=$((targets + 1))
[[ $targets -le 1 ]] || die "give only one of --principal-id, --app-id, --identity-name"
if [[ -n "$identity_name" && -z "$resource_group" ]]; then
  die "--identity-name needs --resource-group"
fi
case "$governance_mode" in
  ReportOnly | Update) ;;
  *) die "the governance mode (GOVERNANCE_UPDATE_MODE or --governance-mode) must be ReportOnly or Update, not: ${governance_mode}" ;;
esac

command -v az >/dev/null 2>&1 || die "the Azure CLI (az) is required: https://aka.ms/azure-cli"
az account show --only-show-errors >/dev/null 2>&1 || die "not signed in: run az login --tenant <tenant id>"

if [[ -z "$graph_url" ]]; then
  graph_url="$(az cloud show --query endpoints.microsoftGraphResourceId -o tsv 2>/dev/null || true)"
  [[ -n "$graph_url" && "$graph_url" != "None" ]] || graph_url="https://graph.microsoft.com"
fi
graph_url="${graph_url%/}"

# az rest adds a token only for the hosts of the current cloud's endpoints, and sends none at all to
# another Graph host (such as DoD's under AzureUSGovernment): name the token's resource every time.
graph_rest() {
  az rest --resource "$graph_url" "$@"
}

graph_get() { # graph_get PATH JMESPATH -> tsv
  graph_rest --method GET --url "${graph_url}$1" --query "$2" -o tsv --only-show-errors
}

# --- Resolve the target service principal ----------------------------------------------------------

if [[ -n "$app_id" ]]; then
  is_guid "$app_id" || die "--app-id must be an application (client) id, a GUID"
  principal_id="$(graph_get "/v1.0/servicePrincipals(appId='${app_id}')?\$select=id" id 2>/dev/null || true)"
  [[ -n "$principal_id" ]] ||
    die "no service principal for app id ${app_id} in this tenant; create it with: az ad sp create --id ${app_id}"
elif [[ -n "$identity_name" ]]; then
  principal_id="$(az identity show --name "$identity_name" --resource-group "$resource_group" \
    --query principalId -o tsv --only-show-errors)"
elif [[ -z "$principal_id" ]]; then
  if command -v azd >/dev/null 2>&1; then
    principal_id="$(azd env get-value AZURE_MANAGED_IDENTITY_PRINCIPAL_ID 2>/dev/null || true)"
  fi
  [[ -n "$principal_id" ]] ||
    die "no target: run azd provision first, or pass --principal-id, --identity-name/--resource-group or --app-id"
fi
is_guid "$principal_id" || die "not a principal (object) id: ${principal_id}"

target_name="$(graph_get "/v1.0/servicePrincipals/${principal_id}?\$select=displayName" displayName 2>/dev/null || true)"
[[ -n "$target_name" ]] ||
  die "service principal ${principal_id} not found in this tenant (signed in to the right tenant? az login --tenant ...)"

echo "Target: ${target_name} (service principal ${principal_id})"
echo "Graph:  ${graph_url}"

# --- What the target holds already ------------------------------------------------------------------

# "resourceId:appRoleId" per line, following @odata.nextLink.
existing=""
url="${graph_url}/v1.0/servicePrincipals/${principal_id}/appRoleAssignments?\$select=resourceId,appRoleId"
while [[ -n "$url" && "$url" != "None" ]]; do
  page="$(graph_rest --method GET --url "$url" --query "value[].join(':', [resourceId, appRoleId])" -o tsv --only-show-errors)"
  existing+="${page}"$'\n'
  url="$(graph_rest --method GET --url "$url" --query '"@odata.nextLink"' -o tsv --only-show-errors)"
done

# --- Resolve every role first, so a missing resource or role changes nothing ------------------------

# One "label<TAB>value<TAB>resource id<TAB>app role id" line per permission.
plan=""

# plan_roles RESOURCE_APP_ID LABEL ROLE_VALUE...
plan_roles() {
  local resource_app_id="$1" label="$2"
  shift 2
  local resource_id roles_tsv value role_id
  if ! resource_id="$(graph_get "/v1.0/servicePrincipals(appId='${resource_app_id}')?\$select=id" id 2>/dev/null)" ||
    [[ -z "$resource_id" ]]; then
    die "${label} (app id ${resource_app_id}) has no service principal in this tenant; an administrator can create it with: az ad sp create --id ${resource_app_id}"
  fi
  # "value<TAB>id" for every enabled application permission (app role) of the resource.
  roles_tsv="$(graph_get "/v1.0/servicePrincipals/${resource_id}?\$select=appRoles" \
    "appRoles[?isEnabled && contains(allowedMemberTypes, 'Application')].[value, id]")"
  for value in "$@"; do
    role_id="$(awk -F '\t' -v v="$value" '$1 == v { print $2; exit }' <<<"$roles_tsv")"
    [[ -n "$role_id" ]] || die "${label} has no application permission named ${value}"
    plan+="${label}"$'\t'"${value}"$'\t'"${resource_id}"$'\t'"${role_id}"$'\n'
  done
}

graph_roles=("${GRAPH_ROLES[@]}")
management_roles=("${MANAGEMENT_ROLES[@]}")
if [[ "$include_dlp" == true ]]; then
  management_roles+=("$MANAGEMENT_DLP_ROLE")
fi
if [[ "$governance_mode" == Update ]]; then
  graph_roles+=("$GOVERNANCE_WRITE_ROLE")
fi
echo "Governance: ${governance_mode}"

plan_roles "$GRAPH_APP_ID" "Microsoft Graph" "${graph_roles[@]}"
plan_roles "$O365_MANAGEMENT_APP_ID" "Office 365 Management APIs" "${management_roles[@]}"

# --- Grant what is missing ----------------------------------------------------------------------------

granted=0
skipped=0
while IFS=$'\t' read -r label value resource_id role_id; do
  [[ -n "$label" ]] || continue
  if grep -qiF "${resource_id}:${role_id}" <<<"$existing"; then
    echo "  = ${label}: ${value} (already granted)"
    skipped=$((skipped + 1))
  elif [[ "$dry_run" == true ]]; then
    echo "  + ${label}: ${value} (dry run: not granted)"
  else
    graph_rest --method POST --only-show-errors -o none \
      --url "${graph_url}/v1.0/servicePrincipals/${principal_id}/appRoleAssignments" \
      --headers "Content-Type=application/json" \
      --body "{\"principalId\": \"${principal_id}\", \"resourceId\": \"${resource_id}\", \"appRoleId\": \"${role_id}\"}" \
      </dev/null
    echo "  + ${label}: ${value} (granted)"
    granted=$((granted + 1))
  fi
done <<<"$plan"

echo "Done: ${granted} granted, ${skipped} already present."
if [[ $granted -gt 0 ]]; then
  echo "Tokens issued before the grant do not carry the new roles; a managed identity's token can be" \
    "cached for up to 24 hours. Restart the Function App to pick them up sooner:" \
    "az functionapp restart --name <app> --resource-group <rg>"
fi
