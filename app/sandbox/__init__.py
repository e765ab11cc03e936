"""Sandboxed agent steps: runners (local bubblewrap, Docker; Kubernetes by design), the supervisor that talks the
sandbox channel (docs/sandbox-channel.md) and relays events, and the reaper that leaves no sandbox orphaned."""
