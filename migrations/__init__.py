"""Alembic environments: ``public`` (platform tables) and ``tenant`` (every workspace schema)."""

from pathlib import Path

PUBLIC_DIR = Path(__file__).parent / "public"
TENANT_DIR = Path(__file__).parent / "tenant"
