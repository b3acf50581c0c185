// AOC Functions: everything the app needs in Azure, for `azd up` (or `az deployment sub create`).
//
//   rg-<environmentName>
//   ├─ id-…      user-assigned managed identity (the app's only principal)
//   ├─ plan-…    Flex Consumption plan (FC1)  ─ func-…  Function App, Python 3.11
//   ├─ st…       storage: host state, deployment package, queues (+ -poison), tables, blob containers
//   ├─ cosmos-…  Cosmos DB for NoSQL (serverless by default), database 'aoc' and its containers
//   ├─ kv-…      Key Vault (RBAC) for m365-client-secret, m365-certificate-pem, devops-pat
//   ├─ log-… / appi-…  Log Analytics + Application Insights (Entra ID ingestion only)
//   └─ role assignments for the identity (and, with grantDeployingUser, for you); with
//      logAnalyticsWorkspaceResourceId, Log Analytics Reader on that workspace (wherever it lives)
//
// Queue, table, blob and Cosmos container names are read from shared/platform/resources.json by the modules.
// The Microsoft 365 API permissions are app role assignments in Entra ID, not Azure resources: grant
// them with infra/scripts/grant-permissions.sh after provisioning.

targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; names the resource group and seeds the unique resource names.')
param environmentName string

@minLength(1)
@description('Region for every resource. It must offer Flex Consumption: az functionapp list-flexconsumption-locations.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the deploying user (azd sets AZURE_PRINCIPAL_ID). Used only with grantDeployingUser.')
param principalId string = ''

@description('Principal type of principalId (ServicePrincipal when a pipeline deploys).')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param principalType string = 'User'

@description('Give principalId the same data-plane access as the app (storage, Cosmos DB, App Insights) plus Key Vault Secrets Officer, to run the CLI or bootstrap against Azure and to set secrets.')
param grantDeployingUser bool = false

@description('Resource group name; default rg-<environmentName>.')
param resourceGroupName string = ''

// --- App settings that are parameters -------------------------------------------------------------

@description('M365_TENANT_ID: the Microsoft 365 tenant to collect from; empty means the deployment tenant.')
param m365TenantId string = tenant().tenantId

@description('M365_AUTH_MODE: identity (the managed identity; grant it with scripts/grant-permissions.sh) or msal (an app registration).')
@allowed([
  'identity'
  'msal'
])
param m365AuthMode string = 'identity'

@description('M365_CLIENT_ID: application (client) id of the app registration, msal mode only.')
param m365ClientId string = ''

@description('msal mode: authenticate with a client secret (Key Vault m365-client-secret) or a certificate (m365-certificate-pem).')
@allowed([
  'secret'
  'certificate'
])
param m365CredentialType string = 'secret'

@description('M365_CERTIFICATE_THUMBPRINT (optional, certificate credential).')
param m365CertificateThumbprint string = ''

@description('M365_CLOUD.')
@allowed([
  'global'
  'usgov'
  'dod'
  'china'
])
param m365Cloud string = 'global'

@description('SOURCE_ENTRA_SIGNIN: Entra sign-in logs; off by default because of their volume.')
param sourceEntraSignin bool = false

@description('MANAGEMENT_INCLUDE_DLP: also collect DLP.All (needs ActivityFeed.ReadDlp).')
param managementIncludeDlp bool = false

@description('EVENT_RETENTION_DAYS, and the default TTL of the events container.')
@minValue(1)
@maxValue(24855)
param eventRetentionDays int = 365

@description('DEVOPS_AUTH_MODE: token (the app\'s managed identity, added to the Azure DevOps organization; the default) or pat (Key Vault secret devops-pat).')
@allowed([
  'pat'
  'token'
])
param devopsAuthMode string = 'token'

@description('GOVERNANCE_UPDATE_MODE: ReportOnly (the default) records the service principal notes PATCH governance would send; Update sends it, which needs Application.ReadWrite.OwnedBy or Application.ReadWrite.All for the app.')
@allowed([
  'ReportOnly'
  'Update'
])
param governanceUpdateMode string = 'ReportOnly'

@description('DEVOPS_ORGANIZATION of the backup pipeline.')
param devopsOrganization string = ''

@description('DEVOPS_PROJECT of the backup pipeline.')
param devopsProject string = ''

@description('DEVOPS_PIPELINE_ID of the backup pipeline.')
param devopsPipelineId string = ''

// --- Sizing -----------------------------------------------------------------------------------------

@description('Cosmos DB capacity mode. serverless: pay per RU consumed. autoscale: shared database throughput. Fixed once the account exists.')
@allowed([
  'serverless'
  'autoscale'
])
param cosmosThroughputMode string = 'serverless'

@description('Autoscale maximum RU/s of the database (autoscale mode only; billed from 10% of it): a multiple of 1000.')
@minValue(1000)
@maxValue(1000000)
param cosmosAutoscaleMaxThroughput int = 1000

@description('Flex Consumption instance memory in MB (billing is per GB-second of this size).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Flex Consumption maximum instance count.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Key Vault soft-delete retention in days.')
@minValue(7)
@maxValue(90)
param keyVaultSoftDeleteRetentionInDays int = 90

@description('Key Vault purge protection (irreversible).')
param keyVaultEnablePurgeProtection bool = false

// --- Optional secrets: written to Key Vault only when non-empty ------------------------------------
// An empty value leaves an existing secret as it is, so a secret set later with `az keyvault secret set`
// survives the next provision.

@secure()
@description('Client secret of the app registration, stored as Key Vault secret m365-client-secret.')
param m365ClientSecret string = ''

@secure()
@description('Private key + certificate PEM, stored as Key Vault secret m365-certificate-pem.')
param m365CertificatePem string = ''

@secure()
@description('Azure DevOps PAT (Build: Read & execute), stored as Key Vault secret devops-pat.')
param devopsPat string = ''

@secure()
@description('Notification channels (ALERT_CHANNELS JSON), stored as Key Vault secret alert-channels. Empty leaves the secret as it is: ALERT_CHANNELS always refers to it.')
param alertChannels string = ''

@description('ALERT_LINK_BASE_URL: where notifications link alerts to (e.g. the Static Web App). Empty: the app\'s /api.')
param alertLinkBaseUrl string = ''

@description('Business hours, days and IANA time zone for the after-hours rule.')
param alertBusinessHours string = '08:00-18:00'
param alertBusinessDays string = 'Mon-Fri'
param alertTimezone string = 'UTC'

@description('Accepted domains (comma-separated); mail forwarding anywhere else is external.')
param alertInternalDomains string = ''

@description('Privileged account UPNs (comma-separated) for the privileged password reset rule.')
param alertPrivilegedAccounts string = ''

// No 'swa': SWA mode believes the x-ms-client-principal header, which only App Service authentication
// in front of the app makes trustworthy, and a Flex Consumption app cannot be a Static Web App's linked
// backend. The app itself refuses SWA mode without that platform (shared/platform/settings.py).
@description('API_AUTH_MODE: keys (function keys) or entra (Entra ID bearer tokens).')
@allowed([
  'keys'
  'entra'
])
param apiAuthMode string = 'keys'

@description('API_AUDIENCE: the API app registration\'s Application ID URI, e.g. api://aoc-functions (entra mode).')
param apiAudience string = ''

@description('API_CLIENT_ID: the API app registration\'s Application (client) ID, the audience of v2.0 tokens (entra mode).')
param apiClientId string = ''

@description('API_ALLOWED_TENANTS: comma-separated tenant ids whose tokens are accepted. Empty: this tenant.')
param apiAllowedTenants string = ''

@description('Services and operations (comma-separated) only callers with AOC.Privacy may see.')
param apiSensitiveServices string = ''
param apiSensitiveOperations string = ''

@description('More origins allowed to call the API from a browser (comma-separated). The console\'s Static Web App origin is always allowed.')
param apiCorsOrigins string = ''

@description('AOC_COMMIT: the commit this deployment was built from, answered by GET /api/version. azure.yaml\'s preprovision hook sets it to the checked-out commit (git rev-parse --short HEAD); empty: unknown.')
@maxLength(100)
param aocCommit string = ''

// --- Activity datasets (issue 19) --------------------------------------------------------------------

@description('Resource id of the Log Analytics workspace (Microsoft Sentinel\'s) the log_analytics dataset sources query: the app\'s identity gets Log Analytics Reader on it, and its GUID becomes LOG_ANALYTICS_WORKSPACE_ID. Empty: no role assignment.')
param logAnalyticsWorkspaceResourceId string = ''

@description('LOG_ANALYTICS_WORKSPACE_ID: the workspace\'s GUID (Workspace ID); empty: read from logAnalyticsWorkspaceResourceId (none: log_analytics sources report "not configured").')
param logAnalyticsWorkspaceId string = ''

@description('LOG_ANALYTICS_ENDPOINT: the query API; empty: the one of M365_CLOUD\'s Azure cloud.')
param logAnalyticsEndpoint string = ''

@description('LOG_ANALYTICS_SERVER_TIMEOUT_SECONDS: server timeout of one query (at most 600).')
@minValue(1)
@maxValue(600)
param logAnalyticsServerTimeoutSeconds int = 180

@description('DATASETS_REFRESH_PER_MINUTE: POST /api/refresh calls per caller per minute.')
@minValue(1)
@maxValue(600)
param datasetsRefreshPerMinute int = 6

@description('DATASETS_REFRESH_SCHEDULE: NCRONTAB schedule (6 fields, UTC) of the refresh_datasets timer.')
param datasetsRefreshSchedule string = '0 */5 * * * *'

@description('Run the refresh_datasets timer; off by default (refreshes happen on demand).')
param datasetsRefreshTimerEnabled bool = false

// --- The admin console (web/) on a Static Web App ----------------------------------------------------

@description('Static Web App plan: Free (the console needs no SWA authentication, linked backend or private endpoint: see app/staticwebapp.bicep) or Standard (SLA, more custom domains, SWA authentication in front of the files).')
@allowed([
  'Free'
  'Standard'
])
param staticWebAppSku string = 'Free'

@description('Region of the Static Web App resource (offered in these only; the files are served from the global edge).')
@allowed([
  'westus2'
  'centralus'
  'eastus2'
  'westeurope'
  'eastasia'
])
param staticWebAppLocation string = 'westeurope'

@secure()
@description('Signs API continuation tokens; a new value on every deployment unless given.')
param apiContinuationSecret string = newGuid()

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'aoc-functions'
}
var effectiveTenantId = empty(m365TenantId) ? tenant().tenantId : m365TenantId

var names = {
  resourceGroup: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  identity: 'id-aoc-${resourceToken}'
  plan: 'plan-aoc-${resourceToken}'
  functionApp: 'func-aoc-${resourceToken}'
  storage: 'staoc${resourceToken}'
  cosmos: 'cosmos-aoc-${resourceToken}'
  keyVault: 'kv-aoc-${resourceToken}'
  logAnalytics: 'log-aoc-${resourceToken}'
  applicationInsights: 'appi-aoc-${resourceToken}'
  staticWebApp: 'stapp-aoc-${resourceToken}'
}

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: names.resourceGroup
  location: location
  tags: tags
}

module appIdentity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: names.identity
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: names.logAnalytics
    applicationInsightsName: names.applicationInsights
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: names.storage
    location: location
    tags: tags
    deploymentContainerName: 'deploymentpackage'
  }
}

module cosmos 'app/cosmos.bicep' = {
  name: 'cosmos'
  scope: rg
  params: {
    name: names.cosmos
    location: location
    tags: tags
    databaseName: 'aoc'
    throughputMode: cosmosThroughputMode
    autoscaleMaxThroughput: cosmosAutoscaleMaxThroughput
    eventRetentionDays: eventRetentionDays
    identityPrincipalId: appIdentity.outputs.principalId
    userPrincipalId: principalId
    grantDeployingUser: grantDeployingUser
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: names.keyVault
    location: location
    tags: tags
    softDeleteRetentionInDays: keyVaultSoftDeleteRetentionInDays
    enablePurgeProtection: keyVaultEnablePurgeProtection
    m365ClientSecret: m365ClientSecret
    m365CertificatePem: m365CertificatePem
    devopsPat: devopsPat
    alertChannels: alertChannels
    apiContinuationSecret: apiContinuationSecret
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    identityPrincipalId: appIdentity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
    grantDeployingUser: grantDeployingUser
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVault.outputs.name
  }
}

module staticWebApp 'app/staticwebapp.bicep' = {
  name: 'staticwebapp'
  scope: rg
  params: {
    name: names.staticWebApp
    location: staticWebAppLocation
    tags: tags
    serviceName: 'web'
    sku: staticWebAppSku
  }
}

// Log Analytics Reader on the workspace, deployed into the workspace's own subscription and resource group
// (split from its resource id; a placeholder id when none is given keeps the expressions valid).
var workspaceResourceIdParts = split(empty(logAnalyticsWorkspaceResourceId) ? '/subscriptions/${subscription().subscriptionId}/resourceGroups/${names.resourceGroup}/providers/Microsoft.OperationalInsights/workspaces/none' : logAnalyticsWorkspaceResourceId, '/')

module logAnalyticsReader 'app/log-analytics-reader.bicep' = if (!empty(logAnalyticsWorkspaceResourceId)) {
  name: 'log-analytics-reader'
  scope: resourceGroup(workspaceResourceIdParts[2], workspaceResourceIdParts[4])
  params: {
    workspaceName: last(workspaceResourceIdParts)
    identityPrincipalId: appIdentity.outputs.principalId
  }
}

var effectiveLogAnalyticsWorkspaceId = !empty(logAnalyticsWorkspaceId) ? logAnalyticsWorkspaceId : (empty(logAnalyticsWorkspaceResourceId) ? '' : logAnalyticsReader.outputs.customerId)

// The console calls the API from its own origin with a bearer token: that origin is always in the API's
// CORS allow-list (API_CORS_ORIGINS, which the app enforces itself; the platform CORS list stays empty).
var corsOrigins = empty(apiCorsOrigins) ? staticWebApp.outputs.origin : '${staticWebApp.outputs.origin},${apiCorsOrigins}'

module functionApp 'app/function.bicep' = {
  name: 'function'
  scope: rg
  params: {
    name: names.functionApp
    planName: names.plan
    location: location
    tags: tags
    serviceName: 'api'
    identityId: appIdentity.outputs.id
    identityClientId: appIdentity.outputs.clientId
    blobServiceUri: storage.outputs.blobServiceUri
    queueServiceUri: storage.outputs.queueServiceUri
    tableServiceUri: storage.outputs.tableServiceUri
    deploymentContainerName: storage.outputs.deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVault.outputs.name
    cosmosEndpoint: cosmos.outputs.endpoint
    cosmosDatabaseName: cosmos.outputs.databaseName
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    m365TenantId: effectiveTenantId
    m365AuthMode: m365AuthMode
    m365ClientId: m365ClientId
    m365CredentialType: m365CredentialType
    m365CertificateThumbprint: m365CertificateThumbprint
    m365Cloud: m365Cloud
    sourceEntraSignin: sourceEntraSignin
    managementIncludeDlp: managementIncludeDlp
    eventRetentionDays: eventRetentionDays
    devopsAuthMode: devopsAuthMode
    governanceUpdateMode: governanceUpdateMode
    devopsOrganization: devopsOrganization
    devopsProject: devopsProject
    devopsPipelineId: devopsPipelineId
    alertLinkBaseUrl: alertLinkBaseUrl
    alertBusinessHours: alertBusinessHours
    alertBusinessDays: alertBusinessDays
    alertTimezone: alertTimezone
    alertInternalDomains: alertInternalDomains
    alertPrivilegedAccounts: alertPrivilegedAccounts
    apiAuthMode: apiAuthMode
    apiAudience: apiAudience
    apiClientId: apiClientId
    apiAllowedTenants: apiAllowedTenants
    apiSensitiveServices: apiSensitiveServices
    apiSensitiveOperations: apiSensitiveOperations
    apiCorsOrigins: corsOrigins
    aocCommit: aocCommit
    logAnalyticsWorkspaceId: effectiveLogAnalyticsWorkspaceId
    logAnalyticsEndpoint: logAnalyticsEndpoint
    logAnalyticsServerTimeoutSeconds: logAnalyticsServerTimeoutSeconds
    datasetsRefreshPerMinute: datasetsRefreshPerMinute
    datasetsRefreshSchedule: datasetsRefreshSchedule
    datasetsRefreshTimerEnabled: datasetsRefreshTimerEnabled
  }
  // The identity's storage, Key Vault and App Insights roles exist before the app first starts, so the
  // deployment container, the host storage and the Key Vault references work from the first start.
  dependsOn: [
    rbac
  ]
}

// --- Outputs: azd stores them in .azure/<env>/.env ---------------------------------------------------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_URL string = functionApp.outputs.uri
output SERVICE_API_NAME string = functionApp.outputs.name
output SERVICE_API_URI string = functionApp.outputs.uri
output AZURE_MANAGED_IDENTITY_NAME string = appIdentity.outputs.name
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = appIdentity.outputs.clientId
output AZURE_MANAGED_IDENTITY_PRINCIPAL_ID string = appIdentity.outputs.principalId
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_COSMOS_ACCOUNT_NAME string = cosmos.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_URI string = keyVault.outputs.uri
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName

// The console: azd deploys web/dist to SERVICE_WEB_NAME; infra/scripts/console_config.py (the web
// service's prepackage hook) reads SERVICE_API_URI, SERVICE_WEB_URI, CONSOLE_TENANT_ID and M365_CLOUD to
// write its config.json, and infra/scripts/console_app_registrations.py registers SERVICE_WEB_URI's
// redirect URI.
output AZURE_STATIC_WEB_APP_NAME string = staticWebApp.outputs.name
output SERVICE_WEB_NAME string = staticWebApp.outputs.name
output SERVICE_WEB_URI string = staticWebApp.outputs.origin
output CONSOLE_TENANT_ID string = effectiveTenantId

// The app's own setting names, so `azd env get-values` can point a local shell (shared.app.cli,
// shared.platform.bootstrap) at the deployed resources with your own Entra ID sign-in.
output COSMOS_ENDPOINT string = cosmos.outputs.endpoint
output COSMOS_DATABASE string = cosmos.outputs.databaseName
output AzureWebJobsStorage__blobServiceUri string = storage.outputs.blobServiceUri
output AzureWebJobsStorage__queueServiceUri string = storage.outputs.queueServiceUri
output AzureWebJobsStorage__tableServiceUri string = storage.outputs.tableServiceUri
output EVENT_RETENTION_DAYS string = string(eventRetentionDays)
