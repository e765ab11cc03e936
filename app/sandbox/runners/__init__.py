"""Sandbox runners (app/sandbox/runner.py is their interface): local (bubblewrap), docker; kubernetes by design."""
