"""Security building blocks: passwords, tokens, envelope encryption, TOTP and recovery codes, rate limits.

Each module is small, typed and free of HTTP concerns, so the auth, API-key and other packages can compose
them and tests can exercise them directly. Only the secrets service (``secrets.py``, its data keys in
``models.py``, their rotation in ``rotation.py``) touches the database; see docs/secrets.md.
"""
