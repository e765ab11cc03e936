"""The program that runs inside a sandbox: the agent tool loop and its tools (built with the sandbox issue)."""
