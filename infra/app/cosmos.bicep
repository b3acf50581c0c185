// Cosmos DB for NoSQL: the account, database 'aoc' and the containers listed in shared/platform/resources.json
// (cosmosContainers), with the same partition keys, indexing policies and TTL as shared/platform/bootstrap.py.
// Local (key) authentication is disabled: the app's managed identity and, optionally, the deploying user
// get the Cosmos DB Built-in Data Contributor role (a Cosmos DB SQL role assignment) here.

@description('Cosmos DB account name (3-44 lowercase letters, digits and hyphens, globally unique).')
@minLength(3)
@maxLength(44)
param name string

@description('Azure region.')
param location string

@description('Tags for the account.')
param tags object = {}

@description('SQL database name (the app reads it from COSMOS_DATABASE).')
param databaseName string = 'aoc'

@description('serverless: pay per request unit consumed (default). autoscale: provisioned throughput shared by the database, scaling between 10% and 100% of cosmosAutoscaleMaxThroughput. The capacity mode of an existing account cannot be switched by redeploying.')
@allowed([
  'serverless'
  'autoscale'
])
param throughputMode string = 'serverless'

@description('Maximum RU/s of the database in autoscale mode (ignored when serverless): a multiple of 1000.')
@minValue(1000)
@maxValue(1000000)
param autoscaleMaxThroughput int = 1000

@description('Retention of events: the default TTL (in days) of every container marked ttlFromRetention.')
@minValue(1)
@maxValue(24855)
param eventRetentionDays int = 365

@description('Principal (object) id of the app\'s managed identity: gets Cosmos DB Built-in Data Contributor.')
param identityPrincipalId string

@description('Principal (object) id of the deploying user; empty to skip.')
param userPrincipalId string = ''

@description('Also give userPrincipalId Cosmos DB Built-in Data Contributor.')
param grantDeployingUser bool = false

var resources = loadJsonContent('../../shared/platform/resources.json')
var retentionSeconds = eventRetentionDays * 86400

// Cosmos DB takes an autoscale maximum only in steps of 1000 RU/s; Bicep has no "multiple of" decorator,
// so a wrong value stops the deployment here, with this message, instead of at the database.
var validatedAutoscaleMaxThroughput = autoscaleMaxThroughput % 1000 == 0 ? autoscaleMaxThroughput : fail('autoscaleMaxThroughput (COSMOS_AUTOSCALE_MAX_THROUGHPUT) must be a multiple of 1000 RU/s, from 1000 to 1000000.')

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-05-15' = {
  name: name
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: false
      }
    ]
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    capabilities: throughputMode == 'serverless' ? [{ name: 'EnableServerless' }] : []
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: 'Enabled'
    enableAutomaticFailover: false
    enableMultipleWriteLocations: false
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-05-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
    // Serverless accounts take no throughput settings at all.
    options: throughputMode == 'autoscale' ? { autoscaleSettings: { maxThroughput: validatedAutoscaleMaxThroughput } } : {}
  }
}

// Indexing: consistent, everything under /* except the paths the file lists (raw copies, property
// values and the display-only blocks: client app, sign-in facts, DLP match, alert; nothing filters on
// them) and /"_etag"/?, exactly as CosmosContainerSpec.indexing_policy().
// TTL: retention in seconds where ttlFromRetention is true; otherwise no default TTL (property omitted).
resource containers 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-05-15' = [
  for spec in resources.cosmosContainers: {
    parent: database
    name: spec.name
    properties: {
      resource: union(
        {
          id: spec.name
          partitionKey: {
            paths: [
              spec.partitionKey
            ]
            kind: 'Hash'
            version: 2
          }
          indexingPolicy: {
            indexingMode: 'consistent'
            automatic: true
            includedPaths: [
              {
                path: '/*'
              }
            ]
            excludedPaths: concat(map(spec.excludedPaths, excluded => { path: excluded }), [{ path: '/"_etag"/?' }])
            compositeIndexes: spec.compositeIndexes
          }
        },
        spec.ttlFromRetention ? { defaultTtl: retentionSeconds } : {}
      )
    }
  }
]

// Cosmos DB Built-in Data Contributor: read and write items, read metadata. It cannot create or change
// databases and containers; those come only from this template.
var dataContributorRoleDefinitionId = '00000000-0000-0000-0000-000000000002'

resource identityDataContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-05-15' = {
  parent: account
  name: guid(account.id, identityPrincipalId, dataContributorRoleDefinitionId)
  properties: {
    roleDefinitionId: '${account.id}/sqlRoleDefinitions/${dataContributorRoleDefinitionId}'
    principalId: identityPrincipalId
    scope: account.id
  }
}

// Cosmos DB applies the SQL role assignments of one account one at a time: chain them.
resource userDataContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-05-15' = if (grantDeployingUser && !empty(userPrincipalId)) {
  parent: account
  name: guid(account.id, userPrincipalId, dataContributorRoleDefinitionId)
  properties: {
    roleDefinitionId: '${account.id}/sqlRoleDefinitions/${dataContributorRoleDefinitionId}'
    principalId: userPrincipalId
    scope: account.id
  }
  dependsOn: [
    identityDataContributor
  ]
}

output name string = account.name
output id string = account.id
output endpoint string = account.properties.documentEndpoint
output databaseName string = database.name
output containerNames array = [for (spec, i) in resources.cosmosContainers: containers[i].name]
