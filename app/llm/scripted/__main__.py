"""``python -m app.llm.scripted --port N``: the scripted LLM server in the foreground (what ``marid dev`` runs).

The API key comes from ``--api-key`` or, so that it stays out of the process list, ``MARID_SCRIPTED_LLM_KEY``;
without either, every key is accepted.
"""

from __future__ import annotations

import argparse
import os

from app.llm.scripted.server import run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m app.llm.scripted", description="Scripted LLM server (OpenAI and Anthropic protocols)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--api-key", default=os.environ.get("MARID_SCRIPTED_LLM_KEY") or None)
    parser.add_argument("--script", action="append", default=[], help="a JSON or YAML script file (repeatable)")
    parser.add_argument("--no-demo", action="store_true", help="do not serve the demo model")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    run(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        script_files=args.script,
        demo=not args.no_demo,
        log_level=args.log_level,
    )


if __name__ == "__main__":
    main()
