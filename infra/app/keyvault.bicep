// Key Vault for the app's secrets, read through Key Vault references in the Function App settings
// (resolved with the user-assigned identity, which gets Key Vault Secrets User in rbac.bicep).
//
// Secrets the app settings refer to:
//   m365-client-secret    M365_CLIENT_SECRET    (M365_AUTH_MODE=msal with a client secret)
//   m365-certificate-pem  M365_CERTIFICATE_PEM  (M365_AUTH_MODE=msal with a certificate: key + cert PEM)
//   devops-pat            DEVOPS_PAT            (DEVOPS_AUTH_MODE=pat)
//   alert-channels        ALERT_CHANNELS        (always referenced; Teams / Slack / webhook URLs: each URL
//                                               is a credential)
//   api-continuation-secret API_CONTINUATION_SECRET (always referenced; signs the API's paging tokens;
//                                               new on each deployment unless given)
// Each is created here only when its parameter is non-empty; otherwise set it later with
// `az keyvault secret set` (a redeploy with an empty value leaves an existing secret alone). Bicep cannot
// "create if absent", so a secret that does not exist yet is left to the app: its reference stays
// unresolved, and the app reports it by name in /api/health and /api/status.

@description('Key Vault name (3-24 letters, digits and hyphens, globally unique).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for the vault.')
param tags object = {}

@description('Days a deleted vault or secret can be recovered (soft delete is always on).')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

@description('Purge protection: once on, it can never be turned off and the vault name stays reserved for the retention period after deletion.')
param enablePurgeProtection bool = false

@secure()
@description('Client secret of the app registration (msal mode). Empty: no secret is written.')
param m365ClientSecret string = ''

@secure()
@description('Private key and certificate, PEM (msal mode with a certificate). Empty: no secret is written.')
param m365CertificatePem string = ''

@secure()
@description('Azure DevOps personal access token with Build (Read & execute). Empty: no secret is written.')
param devopsPat string = ''

@secure()
@description('ALERT_CHANNELS JSON (notification channels with their webhook URLs). Empty: no secret is written.')
param alertChannels string = ''

@secure()
@description('Key that signs the API continuation tokens. Empty: no secret is written.')
param apiContinuationSecret string = ''

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    // The property accepts only true; leaving it out keeps purge protection off.
    enablePurgeProtection: enablePurgeProtection ? true : null
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource m365ClientSecretSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(m365ClientSecret)) {
  parent: vault
  name: 'm365-client-secret'
  properties: {
    value: m365ClientSecret
    contentType: 'text/plain'
  }
}

resource m365CertificatePemSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(m365CertificatePem)) {
  parent: vault
  name: 'm365-certificate-pem'
  properties: {
    value: m365CertificatePem
    contentType: 'application/x-pem-file'
  }
}

resource devopsPatSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(devopsPat)) {
  parent: vault
  name: 'devops-pat'
  properties: {
    value: devopsPat
    contentType: 'text/plain'
  }
}

resource alertChannelsSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(alertChannels)) {
  parent: vault
  name: 'alert-channels'
  properties: {
    value: alertChannels
    contentType: 'application/json'
  }
}

resource apiContinuationSecretSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(apiContinuationSecret)) {
  parent: vault
  name: 'api-continuation-secret'
  properties: {
    value: apiContinuationSecret
    contentType: 'text/plain'
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
