"""Marid: a multi-tenant platform where teams run autonomous AI agents."""
