// The Function App's storage account: host state (AzureWebJobsStorage), the Flex Consumption deployment
// package container, and every queue, table and blob container the app uses.
//
// Names come from shared/platform/resources.json, the app's single source of truth (shared/platform/resources.py and
// shared/platform/bootstrap.py read the same file). loadJsonContent resolves the path relative to this file
// (infra/app/storage.bicep -> repo root) when the template is compiled.
//
// Shared-key access is disabled: the host, the app and deployments all use Entra ID (managed identity).

@description('Storage account name (3-24 lowercase letters and digits, globally unique).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for the account.')
param tags object = {}

@description('Blob container Flex Consumption deploys the app package to.')
param deploymentContainerName string = 'deploymentpackage'

@description('Redundancy of the account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
])
param skuName string = 'Standard_LRS'

var resources = loadJsonContent('../../shared/platform/resources.json')

// Every queue gets its "-poison" twin: the Functions host moves a message there after maxDequeueCount
// failed attempts (host.json), and bootstrap.py creates the same pairs.
var queueNames = concat(resources.queues, map(resources.queues, queue => '${queue}-poison'))
var blobContainerNames = concat([deploymentContainerName], resources.blobContainers)

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    dnsEndpointType: 'Standard'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource blobContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for containerName in blobContainerNames: {
    parent: blobService
    name: containerName
    properties: {
      publicAccess: 'None'
    }
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for tableName in resources.tables: {
    parent: tableService
    name: tableName
  }
]

// Service URIs without a trailing slash, as shared/platform/settings.py builds them from an account name.
// environment().suffixes.storage keeps them right in sovereign clouds.
output name string = storage.name
output id string = storage.id
output blobServiceUri string = 'https://${storage.name}.blob.${environment().suffixes.storage}'
output queueServiceUri string = 'https://${storage.name}.queue.${environment().suffixes.storage}'
output tableServiceUri string = 'https://${storage.name}.table.${environment().suffixes.storage}'
output deploymentContainerName string = deploymentContainerName
output queueNames array = queueNames
output tableNames array = resources.tables
output blobContainerNames array = blobContainerNames
