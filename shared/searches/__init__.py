"""Saved searches of the event explorer: the document model and its Cosmos DB store."""
