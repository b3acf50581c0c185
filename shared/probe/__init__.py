"""The change probe: notices configuration drift in audit events and triggers one backup per burst."""
