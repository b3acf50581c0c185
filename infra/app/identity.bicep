// The user-assigned managed identity the Function App runs as. Every data-plane grant (storage, Cosmos DB,
// Key Vault, Application Insights, and the Microsoft 365 app roles from scripts/grant-permissions.sh)
// goes to this one principal, so it survives re-creating the Function App.

@description('Name of the user-assigned managed identity.')
param name string

@description('Azure region.')
param location string

@description('Tags for the identity.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
