"""Sandbox runners: implementations of ``app.sandbox.runner.Runner``."""
