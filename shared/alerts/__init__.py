"""Alerts: evaluation, the alert documents, the match ledger and triage."""
