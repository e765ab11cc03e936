"""``marid-agent-runtime``: the entry point a sandbox runs (the agent loop arrives with the sandbox issue)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("marid-agent-runtime: no channel given", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
