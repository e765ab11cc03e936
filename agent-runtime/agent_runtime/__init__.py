"""The program that runs inside a sandbox: the agent tool loop and its tools, talking to its supervisor over the
sandbox channel (docs/sandbox-channel.md). It imports nothing of the server."""

__version__ = "0.1.0"
