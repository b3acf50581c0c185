"""The Microsoft 365 client: Entra tokens, clouds, the HTTP client with retries and rate limits."""
