// The Function App on a Flex Consumption plan (FC1, Linux, Python 3.11), running as the user-assigned
// managed identity: identity-based AzureWebJobsStorage, the deployment package in a blob container read
// with that identity, Key Vault references resolved with it, and Application Insights over Entra ID.
//
// Every app setting is in the one object literal `appSettings` below, and the site's 'appsettings'
// config resource is exactly that object. The keys are the app's settings model (shared/platform/settings.py)
// minus shared.platform.settings.NOT_DEPLOYED, plus APPLICATIONINSIGHTS_CONNECTION_STRING and
// APPLICATIONINSIGHTS_AUTHENTICATION_STRING; a test keeps them in step. No account key or keyed
// connection string appears here: storage and Cosmos DB are reached with the managed identity.
//
// Flex Consumption rejects FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION, WEBSITE_RUN_FROM_PACKAGE
// and similar settings: the runtime and the deployment source live in functionAppConfig instead.
//
// Deploying this resource replaces all app settings: a setting added by hand in the portal is removed
// by the next `azd provision`. Change settings here (or through the parameters) instead.

@description('Function App name (globally unique; also the *.azurewebsites.net host name).')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Azure region (must offer Flex Consumption: az functionapp list-flexconsumption-locations).')
param location string

@description('Tags for the plan and the app.')
param tags object = {}

@description('azd service name (azure.yaml services key), set as the azd-service-name tag.')
param serviceName string = 'api'

@description('Resource id of the user-assigned managed identity.')
param identityId string

@description('Client id of the user-assigned managed identity.')
param identityClientId string

@description('Blob service URI of the storage account, no trailing slash.')
param blobServiceUri string

@description('Queue service URI of the storage account, no trailing slash.')
param queueServiceUri string

@description('Table service URI of the storage account, no trailing slash.')
param tableServiceUri string

@description('Blob container holding the deployment package.')
param deploymentContainerName string = 'deploymentpackage'

@description('Application Insights component name.')
param applicationInsightsName string

@description('Key Vault holding m365-client-secret, m365-certificate-pem, devops-pat and alert-channels.')
param keyVaultName string

@description('Cosmos DB account endpoint.')
param cosmosEndpoint string

@description('Cosmos DB database name.')
param cosmosDatabaseName string = 'aoc'

@description('Memory of each instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Most instances the app scales out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Microsoft 365 tenant (directory) id: M365_TENANT_ID.')
param m365TenantId string = tenant().tenantId

@description('M365_AUTH_MODE: identity (this managed identity) or msal (an app registration).')
@allowed([
  'identity'
  'msal'
])
param m365AuthMode string = 'identity'

@description('M365_CLIENT_ID: the app registration (msal mode only).')
param m365ClientId string = ''

@description('The msal credential: a client secret (Key Vault secret m365-client-secret) or a certificate (m365-certificate-pem). Only the chosen one is referenced, so the app never sees an unresolved reference for the other.')
@allowed([
  'secret'
  'certificate'
])
param m365CredentialType string = 'secret'

@description('M365_CERTIFICATE_THUMBPRINT (optional with a certificate: the PEM\'s certificate is used otherwise).')
param m365CertificateThumbprint string = ''

@description('M365_CLOUD: global, usgov (GCC High), dod or china.')
@allowed([
  'global'
  'usgov'
  'dod'
  'china'
])
param m365Cloud string = 'global'

@description('SOURCE_ENTRA_SIGNIN: sign-in logs are high volume (Cosmos DB RU and storage), so off by default.')
param sourceEntraSignin bool = false

@description('MANAGEMENT_INCLUDE_DLP: add DLP.All (needs ActivityFeed.ReadDlp).')
param managementIncludeDlp bool = false

@description('EVENT_RETENTION_DAYS: must match the events container TTL (cosmos.bicep uses the same value).')
@minValue(1)
param eventRetentionDays int = 365

@description('DEVOPS_AUTH_MODE: token (this managed identity, whatever m365AuthMode is) or pat (Key Vault secret devops-pat).')
@allowed([
  'pat'
  'token'
])
param devopsAuthMode string = 'token'

@description('GOVERNANCE_UPDATE_MODE: ReportOnly records the notes PATCH governance would send; Update sends it (needs Application.ReadWrite.OwnedBy or Application.ReadWrite.All).')
@allowed([
  'ReportOnly'
  'Update'
])
param governanceUpdateMode string = 'ReportOnly'

@description('DEVOPS_ORGANIZATION of the default drift scope\'s pipeline.')
param devopsOrganization string = ''

@description('DEVOPS_PROJECT of the default drift scope\'s pipeline.')
param devopsProject string = ''

@description('DEVOPS_PIPELINE_ID of the default drift scope\'s pipeline.')
param devopsPipelineId string = ''

@description('Base URL that notifications link alerts to (ALERT_LINK_BASE_URL). Empty: this app\'s /api.')
param alertLinkBaseUrl string = ''

@description('Business hours for the after-hours rule, e.g. 08:00-18:00.')
param alertBusinessHours string = '08:00-18:00'

@description('Business days for the after-hours rule, e.g. Mon-Fri.')
param alertBusinessDays string = 'Mon-Fri'

@description('IANA time zone of the business hours, e.g. Europe/London.')
param alertTimezone string = 'UTC'

@description('Accepted domains, comma-separated: mail forwarding anywhere else is external.')
param alertInternalDomains string = ''

@description('Privileged accounts (UPNs), comma-separated, for the privileged password reset rule.')
param alertPrivilegedAccounts string = ''

@description('API_AUTH_MODE: keys or entra (never swa on Flex Consumption: see main.bicep).')
@allowed([
  'keys'
  'entra'
])
param apiAuthMode string = 'keys'

@description('API_AUDIENCE (Application ID URI) for entra mode.')
param apiAudience string = ''

@description('API_CLIENT_ID (Application (client) ID) for entra mode.')
param apiClientId string = ''

@description('API_ALLOWED_TENANTS, comma-separated; empty: this tenant.')
param apiAllowedTenants string = ''

@description('API_SENSITIVE_SERVICES / API_SENSITIVE_OPERATIONS, comma-separated.')
param apiSensitiveServices string = ''
param apiSensitiveOperations string = ''

@description('API_CORS_ORIGINS: origins allowed to call the API from a browser, e.g. the Static Web App.')
param apiCorsOrigins string = ''

@description('AOC_COMMIT: the commit this deployment was built from, answered by GET /api/version; empty: unknown.')
@maxLength(100)
param aocCommit string = ''

// Activity datasets (issue 19).
@description('LOG_ANALYTICS_WORKSPACE_ID: the GUID (Workspace ID) of the workspace log_analytics dataset sources query; empty: those sources report "not configured".')
param logAnalyticsWorkspaceId string = ''

@description('LOG_ANALYTICS_ENDPOINT: the Log Analytics query API; empty: the one of M365_CLOUD\'s Azure cloud.')
param logAnalyticsEndpoint string = ''

@description('LOG_ANALYTICS_SERVER_TIMEOUT_SECONDS: how long the service may run one query (the API allows 600).')
@minValue(1)
@maxValue(600)
param logAnalyticsServerTimeoutSeconds int = 180

@description('DATASETS_REFRESH_PER_MINUTE: POST /api/refresh calls each caller may make per minute.')
@minValue(1)
@maxValue(600)
param datasetsRefreshPerMinute int = 6

@description('DATASETS_REFRESH_SCHEDULE: NCRONTAB schedule of the refresh_datasets timer (6 fields, UTC).')
param datasetsRefreshSchedule string = '0 */5 * * * *'

@description('Run the refresh_datasets timer (AzureWebJobs.refresh_datasets.Disabled = false); off by default: the console and POST /api/refresh refresh on demand.')
param datasetsRefreshTimerEnabled bool = false

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

var useClientSecret = m365AuthMode == 'msal' && m365CredentialType == 'secret'
var useCertificate = m365AuthMode == 'msal' && m365CredentialType == 'certificate'

// A Key Vault reference that cannot be resolved (missing secret, no access yet) reaches the app as the
// literal "@Microsoft.KeyVault(...)" text; shared/platform/settings.py treats such a value as unset and reports it
// in /api/health and /api/status. Credentials are referenced only in the mode that reads them ('' in the
// others). ALERT_CHANNELS and API_CONTINUATION_SECRET are always referenced, whether or not this
// deployment writes their secret: a secret set later with `az keyvault secret set` is picked up at the
// next restart, and a provision without the alertChannels parameter never switches notifications off.
// References carry no version, so they follow the newest version of each secret.
var appSettings = {
  // Host and app storage, identity-based (no AzureWebJobsStorage connection string, no account key).
  AzureWebJobsStorage__blobServiceUri: blobServiceUri
  AzureWebJobsStorage__queueServiceUri: queueServiceUri
  AzureWebJobsStorage__tableServiceUri: tableServiceUri
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__credential: 'managedidentity'

  // Cosmos DB over Entra ID (local auth is disabled on the account).
  COSMOS_ENDPOINT: cosmosEndpoint
  COSMOS_CLIENT_ID: identityClientId
  COSMOS_DATABASE: cosmosDatabaseName

  // Must match host.json extensions.queues.messageEncoding.
  QUEUE_MESSAGE_ENCODING: 'base64'
  HTTP_CONNECT_TIMEOUT_SECONDS: '5'
  HTTP_READ_TIMEOUT_SECONDS: '30'
  HEALTH_TIMEOUT_SECONDS: '5'

  // Microsoft 365 tenant and authentication.
  M365_TENANT_ID: m365TenantId
  M365_AUTH_MODE: m365AuthMode
  M365_CLIENT_ID: m365ClientId
  M365_CLIENT_SECRET: useClientSecret ? '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=m365-client-secret)' : ''
  M365_CERTIFICATE_PEM: useCertificate ? '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=m365-certificate-pem)' : ''
  M365_CERTIFICATE_THUMBPRINT: m365CertificateThumbprint
  AZURE_CLIENT_ID: identityClientId
  M365_CLOUD: m365Cloud

  // Sources and polling.
  SOURCE_ENTRA_AUDIT: 'true'
  SOURCE_ENTRA_SIGNIN: sourceEntraSignin ? 'true' : 'false'
  SOURCE_INTUNE_AUDIT: 'true'
  SOURCE_O365_MANAGEMENT: 'true'
  MANAGEMENT_CONTENT_TYPES: 'Audit.AzureActiveDirectory,Audit.Exchange,Audit.SharePoint,Audit.General'
  MANAGEMENT_INCLUDE_DLP: managementIncludeDlp ? 'true' : 'false'
  POLL_SCHEDULE: '0 */5 * * * *'
  GOVERNANCE_DISCOVERY_SCHEDULE: '0 */30 * * * *'
  GOVERNANCE_FULL_SWEEP_HOURS: '24'
  POLL_INTERVAL_SECONDS: '300'
  GRAPH_OVERLAP_SECONDS: '900'
  MANAGEMENT_OVERLAP_SECONDS: '86400'
  INITIAL_LOOKBACK_SECONDS: '86400'
  POLL_TIME_BUDGET_SECONDS: '540'

  // Storage of events.
  EVENT_RETENTION_DAYS: string(eventRetentionDays)
  KEEP_RAW_IN_EVENT: 'false'
  COSMOS_WRITE_CONCURRENCY: '16'
  ENRICHMENT_ENABLED: 'true'
  ENRICHMENT_CACHE_TTL_SECONDS: '86400'

  // Change probe and the Azure DevOps backup pipeline.
  PROBE_ENABLED: 'true'
  PROBE_QUIET_WINDOW_MINUTES: '15'
  PROBE_COOLDOWN_MINUTES: '30'
  PROBE_AUDIT_LATENCY_MINUTES: '30'
  PROBE_CLOCK_SKEW_SECONDS: '300'
  DRIFT_FILE: ''
  DEVOPS_BASE_URL: 'https://dev.azure.com'
  DEVOPS_AUTH_MODE: devopsAuthMode
  DEVOPS_PAT: devopsAuthMode == 'pat' ? '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=devops-pat)' : ''
  DEVOPS_ORGANIZATION: devopsOrganization
  DEVOPS_PROJECT: devopsProject
  DEVOPS_PIPELINE_ID: devopsPipelineId
  DEVOPS_TOKEN_SCOPE: '499b84ac-1321-427f-aa17-267ca6975798/.default'

  // Alerting.
  ALERT_DEDUPE_MINUTES: '15'
  ALERT_GROUP_HOURS: '5'
  ALERT_REPEAT_MINUTES: '240'
  ALERT_CHANNELS: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=alert-channels)'
  ALERT_LINK_BASE_URL: empty(alertLinkBaseUrl) ? 'https://${site.properties.defaultHostName}/api' : alertLinkBaseUrl
  ALERT_BUSINESS_HOURS: alertBusinessHours
  ALERT_BUSINESS_DAYS: alertBusinessDays
  ALERT_TIMEZONE: alertTimezone
  ALERT_INTERNAL_DOMAINS: alertInternalDomains
  ALERT_PRIVILEGED_ACCOUNTS: alertPrivilegedAccounts
  ALERT_RULES_CACHE_SECONDS: '60'

  // Service principal governance: report-only unless the operator opts in.
  GOVERNANCE_UPDATE_MODE: governanceUpdateMode

  // HTTP API.
  API_AUTH_MODE: apiAuthMode
  API_AUDIENCE: apiAudience
  API_CLIENT_ID: apiClientId
  API_ALLOWED_TENANTS: apiAllowedTenants
  API_KEY_ROLES: 'AOC.Admin,AOC.Privacy'
  API_CONTINUATION_SECRET: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=api-continuation-secret)'
  API_SENSITIVE_SERVICES: apiSensitiveServices
  API_SENSITIVE_OPERATIONS: apiSensitiveOperations
  API_CORS_ORIGINS: apiCorsOrigins
  API_EXPORT_MAX_EVENTS: '50000'
  API_BULK_TAG_MAX_EVENTS: '1000'

  // Activity datasets (issue 19). The refresh_datasets timer is off unless asked for.
  LOG_ANALYTICS_WORKSPACE_ID: logAnalyticsWorkspaceId
  LOG_ANALYTICS_ENDPOINT: logAnalyticsEndpoint
  LOG_ANALYTICS_SERVER_TIMEOUT_SECONDS: string(logAnalyticsServerTimeoutSeconds)
  DATASETS_REFRESH_PER_MINUTE: string(datasetsRefreshPerMinute)
  DATASETS_REFRESH_SCHEDULE: datasetsRefreshSchedule
  'AzureWebJobs.refresh_datasets.Disabled': datasetsRefreshTimerEnabled ? 'false' : 'true'

  // Which build answers (GET /api/version). Provisioning replaces every app setting, so it is set here.
  AOC_COMMIT: aocCommit

  // Platform: Application Insights with Entra ID authentication (local auth is disabled).
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    // No siteConfig: many of its properties are deprecated or refused on Flex Consumption, and the
    // platform default minimum TLS version (1.2) is what we want.
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobServiceUri}/${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

resource siteAppSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: appSettings
}

output name string = site.name
output id string = site.id
output uri string = 'https://${site.properties.defaultHostName}'
output planName string = plan.name
