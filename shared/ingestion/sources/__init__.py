"""Audit sources: Microsoft Graph audit endpoints and the Office 365 Management Activity API."""
