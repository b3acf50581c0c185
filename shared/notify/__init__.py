"""Alert notifications: payload formats and delivery."""
