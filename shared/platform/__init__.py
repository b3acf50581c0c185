"""Platform: settings, storage clients, resource names, ids, the clock and Table claims."""
