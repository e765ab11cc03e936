"""Security building blocks: passwords, tokens, envelope encryption, TOTP and recovery codes, rate limits.

Each module is small, typed and free of HTTP and database concerns, so the auth, API-key and secrets
packages can compose them and tests can exercise them directly.
"""
