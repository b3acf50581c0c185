"""Local development tools: the local Functions host, local Azure services and the tenant simulator."""
