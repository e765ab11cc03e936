"""Sandbox runners (app/sandbox/runner.py is their interface): process (tests only), local (bubblewrap), docker;
kubernetes by design."""
