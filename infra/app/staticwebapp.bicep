// The admin console (web/dist) on an Azure Static Web App, deployed by `azd deploy web` (azure.yaml).
//
// Free by default. The console is static files only: it signs in with MSAL.js against the API's app
// registration and calls the Function App across origins with a bearer token (the API's CORS allow-list
// holds this site's origin, see main.bicep). It needs none of what Standard adds:
//   - custom authentication providers and role functions (the API checks the token's app roles itself);
//   - a linked backend (Flex Consumption cannot be one, and the API refuses SWA mode without it);
//   - private endpoints, an SLA, more than 2 custom domains, more than 100 GB of bandwidth a month.
// Choose Standard (staticWebAppSku) when the organization needs the SLA, more custom domains, or the
// Static Web App's own authentication in front of the static files (they hold no data: every event comes
// from the API, which checks every call).
//
// Free and Standard static sites exist only in a few regions; the content is served from the global edge
// whatever region holds the resource, so the region matters little.
//
// The site's headers (CSP, security headers) and the SPA fallback come from staticwebapp.config.json in
// the deployed folder: web/staticwebapp.config.json, widened at deploy time to the Function App's and
// the sign-in authority's origins by infra/scripts/console_config.py.

@description('Static Web App name (its default host name is generated: <words>-<hash>.<n>.azurestaticapps.net).')
param name string

@description('Region of the resource (Free and Standard static sites are offered in these only).')
@allowed([
  'westus2'
  'centralus'
  'eastus2'
  'westeurope'
  'eastasia'
])
param location string

@description('Tags for the site.')
param tags object = {}

@description('azd service name (azure.yaml services key), set as the azd-service-name tag.')
param serviceName string = 'web'

@description('Free (the default: see the top of this file) or Standard.')
@allowed([
  'Free'
  'Standard'
])
param sku string = 'Free'

resource site 'Microsoft.Web/staticSites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  sku: {
    name: sku
    tier: sku
  }
  properties: {
    // Content comes from `azd deploy` (the SWA CLI with the site's deployment token), not from a
    // repository's GitHub Actions or Azure Pipelines workflow.
    provider: 'Custom'
    // No pull-request preview environments: they would be origins the API's CORS list does not hold.
    stagingEnvironmentPolicy: 'Disabled'
    allowConfigFileUpdates: true
  }
}

output name string = site.name
output id string = site.id
output defaultHostname string = site.properties.defaultHostname
output origin string = 'https://${site.properties.defaultHostname}'
