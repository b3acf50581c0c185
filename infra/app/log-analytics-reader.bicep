// Log Analytics Reader for the app's managed identity on the workspace its log_analytics dataset sources
// query (issue 19: activity datasets). Deployed by main.bicep into the workspace's own resource group,
// only when logAnalyticsWorkspaceResourceId is given; the workspace itself is not created or changed.
//
// The identity already has Storage Blob Data Owner on the app's storage account (rbac.bicep), which
// covers the `datasets` and `locks` containers and their blob leases.

@description('Name of the Log Analytics workspace, in the resource group this module is deployed to.')
param workspaceName string

@description('Principal (object) id of the app\'s user-assigned managed identity.')
param identityPrincipalId string

// Built-in role "Log Analytics Reader": read all monitoring data and run queries in the workspace.
var logAnalyticsReaderRoleId = '73c42c96-874c-492b-b04d-ab87d138a893'

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource identityLogAnalyticsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, identityPrincipalId, logAnalyticsReaderRoleId)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', logAnalyticsReaderRoleId)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The workspace's GUID (its "Workspace ID"): what LOG_ANALYTICS_WORKSPACE_ID holds.
output customerId string = workspace.properties.customerId
