"""``marid run``: start a pipeline run, list runs, read one, and follow a run live in the terminal.

Talks to a Marid server over its JSON API (``/api/v1``), signed in with an API key: ``--api-key`` or
``MARID_API_KEY``, ``--url`` or ``MARID_URL`` (default http://127.0.0.1:8000), ``--workspace`` or
``MARID_WORKSPACE`` (the workspace's URL name). ``--follow`` streams the run's events (long-polled) with a live
progress line drawn by ``rich``, and exits non-zero when the run does not complete.

Exit codes: 0 the run completed (or the command did what it was asked), 1 the run failed or was cancelled,
2 a usage or configuration problem, 3 the server refused or could not be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

DEFAULT_URL = "http://127.0.0.1:8000"
WAIT_SECONDS = 20
# How long after a finished run's last empty page to ask once more (its last events follow its commit).
FINAL_GRACE = 1.0
DONE, FAILED, USAGE, SERVER = 0, 1, 2, 3
FINISHED = {"completed", "failed", "cancelled"}


class CliError(Exception):
    def __init__(self, message: str, code: int = SERVER) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Api:
    """The JSON API of one workspace, as an API key sees it."""

    client: httpx.Client
    workspace: str

    def url(self, path: str) -> str:
        return f"/api/v1/workspaces/{self.workspace}{path}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.client.request(method, self.url(path), **kwargs)
        except httpx.HTTPError as error:
            raise CliError(f"cannot reach {self.client.base_url}: {error}") from None
        if response.status_code >= 400:
            raise CliError(_error_text(response))
        return response.json() if response.content else None


def _error_text(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"the server answered {response.status_code}"
    details = error.get("details") or {}
    lines = [f"{error.get('message', 'refused')} ({response.status_code} {error.get('code', '')})"]
    for item in details.get("errors", [])[:10]:
        lines.append(f"  {item.get('field', '')}: {item.get('message', '')}")
    return "\n".join(lines)


def add_parser(commands: Any) -> None:
    run = commands.add_parser("run", help="start, list and follow pipeline runs (over the API, with an API key)")
    run.add_argument("--url", default=None, help=f"the Marid server (MARID_URL; default {DEFAULT_URL})")
    run.add_argument("--api-key", default=None, help="an API key (MARID_API_KEY)")
    run.add_argument("--workspace", default=None, help="the workspace's URL name (MARID_WORKSPACE)")
    actions = run.add_subparsers(dest="action", required=True)

    start = actions.add_parser("start", help="start a run of a pipeline")
    start.add_argument("pipeline", help="the pipeline's id, e.g. engineering")
    start.add_argument("--task", required=True, help="what the run should do")
    start.add_argument("--version", type=int, default=None, help="a saved version (default: the current one)")
    start.add_argument("--follow", action="store_true", help="stream the run until it ends")
    start.add_argument("--json", action="store_true", help="print the run as JSON")

    listing = actions.add_parser("list", help="the newest runs")
    listing.add_argument("--status", default=None, help="queued, running, paused, completed, failed, cancelled")
    listing.add_argument("--pipeline", default=None, help="only runs of this pipeline")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--json", action="store_true")

    get = actions.add_parser("get", help="one run with its steps")
    get.add_argument("run_id")
    get.add_argument("--follow", action="store_true", help="stream the run until it ends")
    get.add_argument("--json", action="store_true")
    run.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    errors = Console(stderr=True, highlight=False)
    try:
        with _api(args) as api:
            if args.action == "start":
                body: dict[str, Any] = {"pipeline": args.pipeline, "task": args.task}
                if args.version is not None:
                    body["version"] = args.version
                run = api.call("POST", "/runs", json=body)
                if args.json and not args.follow:
                    console.print_json(json.dumps(run))
                    return DONE
                name, version = escape(run["pipeline_name"]), run["pipeline_version"]
                console.print(f"Started run [bold]{run['id']}[/] of {name} (version {version}).")
                return follow(api, run["id"], console) if args.follow else DONE
            if args.action == "list":
                query = {"limit": max(1, min(args.limit, 100))}
                query |= {key: value for key, value in (("status", args.status), ("pipeline", args.pipeline)) if value}
                runs = api.call("GET", "/runs", params=query)["data"]
                if args.json:
                    console.print_json(json.dumps(runs))
                else:
                    console.print(runs_table(runs))
                return DONE
            run = api.call("GET", f"/runs/{args.run_id}")
            if args.follow:
                return follow(api, run["id"], console)
            if args.json:
                console.print_json(json.dumps(run))
            else:
                console.print(run_summary(run))
                console.print(steps_table(run["steps"]))
            return DONE if run["status"] != "failed" else FAILED
    except CliError as error:
        errors.print(f"marid run: {escape(str(error))}")
        return error.code


class _api:
    """The configured API client as a context manager (closes its connections)."""

    def __init__(self, args: argparse.Namespace) -> None:
        url = (args.url or os.environ.get("MARID_URL") or DEFAULT_URL).rstrip("/")
        key = args.api_key or os.environ.get("MARID_API_KEY", "")
        workspace = args.workspace or os.environ.get("MARID_WORKSPACE", "")
        if not key:
            raise CliError("give an API key with --api-key or MARID_API_KEY", USAGE)
        if not workspace:
            raise CliError("name the workspace with --workspace or MARID_WORKSPACE (its URL name)", USAGE)
        headers = {"Authorization": f"Bearer {key}", "User-Agent": "marid-cli"}
        self.api = Api(httpx.Client(base_url=url, headers=headers, timeout=WAIT_SECONDS + 15), workspace)

    def __enter__(self) -> Api:
        return self.api

    def __exit__(self, *exc: object) -> None:
        self.api.client.close()


# ------------------------------------------------------------------------------------------- following a run


@dataclass
class Progress:
    """What the live line shows: the run's status, the step on now, how many are done, and the cost."""

    status: str = "queued"
    step: str = ""
    agent: str = ""
    done: int = 0
    cost: Decimal = Decimal(0)
    seen: set[str] = field(default_factory=set)

    def view(self) -> Table:
        table = Table.grid(padding=(0, 2))
        status = Text(self.status, style=_STYLE.get(self.status, "bold"))
        step = Text(f"{self.step} ({self.agent})" if self.step else "waiting for a worker", style="cyan")
        table.add_row(status, step, Text(f"{self.done} steps done"), Text(f"${self.cost:.4f}"))
        return table


_STYLE = {"completed": "bold green", "failed": "bold red", "cancelled": "bold yellow", "running": "bold blue"}


def events(api: Api, run_id: str) -> Iterator[tuple[dict[str, Any], str, bool]]:
    """Each event of the run in order (long-polled), with the run's status; ends when the run has finished.

    The engine commits a run's end before it publishes the last events (the step's end, the run's), so an
    empty page of a finished run is asked once more, a moment later, before following stops."""
    cursor = "0"
    quiet = 0
    while True:
        page = api.call("GET", f"/runs/{run_id}/events", params={"since": cursor, "wait": WAIT_SECONDS})
        cursor = page["cursor"]
        for event in page["data"]:
            yield event, page["status"], page["finished"]
        quiet = quiet + 1 if page["finished"] and not page["data"] else 0
        if quiet >= 2:
            yield {}, page["status"], True
            return
        if quiet:
            time.sleep(FINAL_GRACE)


def follow(api: Api, run_id: str, console: Console) -> int:
    """Print the run's output as it comes, under a live progress line; the exit code says how it ended."""
    progress = Progress()
    status = "queued"
    with Live(progress.view(), console=console, refresh_per_second=8, transient=True) as live:
        for event, status, finished in events(api, run_id):
            if event:
                show_event(console, event, progress)
            progress.status = status if finished or status != "queued" else progress.status
            live.update(progress.view())
            if finished and not event:
                break
    run = api.call("GET", f"/runs/{run_id}")
    console.print(run_summary(run))
    return DONE if run["status"] == "completed" else FAILED


def show_event(console: Console, event: dict[str, Any], progress: Progress) -> None:
    kind, p = event["type"], event.get("payload") or {}
    step = str(p.get("stepId", ""))
    if kind == "STEP_STARTED":
        progress.step, progress.agent, progress.status = step, str(p.get("agentId", "")), "running"
        attempt = f", attempt {p['attempt']}" if int(p.get("attempt") or 1) > 1 else ""
        console.print(Text(f"\n▶ {step} ({progress.agent}{attempt})", style="bold cyan"))
    elif kind == "STEP_OUTPUT":
        console.print(Text(str(p.get("chunk", ""))), end="")
    elif kind == "STEP_THINKING":
        console.print(Text(str(p.get("chunk", "")), style="dim italic"), end="")
    elif kind == "TOOL_CALL_START":
        console.print(Text(f"\n  🔧 {p.get('toolName', 'tool')} {_brief(p.get('args'))}", style="magenta"))
    elif kind == "TOOL_CALL_END":
        mark, style = ("✗", "red") if p.get("isError") else ("✓", "green")
        console.print(Text(f"  {mark} {p.get('toolName', 'tool')} {_brief(p.get('result'))}", style=style))
    elif kind == "STEP_COMPLETE":
        progress.done += 1
        progress.cost += Decimal(str(p.get("cost") or 0))
        names = ", ".join(p.get("outputs") or {})
        console.print(Text(f"\n✓ {step} completed" + (f": {names}" if names else ""), style="green"))
    elif kind in ("STEP_FAILED", "STEP_CANCELLED"):
        progress.cost += Decimal(str(p.get("cost") or 0))
        word = "failed" if kind == "STEP_FAILED" else "cancelled"
        console.print(Text(f"\n✗ {step} {word}: {p.get('error') or ''}", style="red"))
    elif kind == "STEP_RETRYING":
        console.print(Text(f"↻ {step} retrying after: {p.get('error') or ''}", style="yellow"))
    elif kind == "RUN_STATUS_CHANGED":
        progress.status = str(p.get("status", progress.status))
    elif kind in ("RUN_COMPLETE", "RUN_FAILED"):
        progress.status = "completed" if kind == "RUN_COMPLETE" else "failed"


def _brief(value: Any, limit: int = 100) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------------------------------- tables


def run_summary(run: dict[str, Any]) -> Text:
    line = Text()
    line.append(f"Run {run['id']} ", style="bold")
    line.append(run["status"], style=_STYLE.get(run["status"], "bold"))
    line.append(f": {run['pipeline_name']} v{run['pipeline_version']}, {run.get('steps_done', 0)} steps done, ")
    line.append(f"${Decimal(str(run['cost'])):.4f} ({run['input_tokens']} tokens in, {run['output_tokens']} out)")
    if run.get("reason"):
        line.append(f"\n{run['reason']}")
    return line


def runs_table(runs: list[dict[str, Any]]) -> Table:
    table = Table("Run", "Pipeline", "Status", "Step", "Done", "Cost", "Task")
    for run in runs:
        table.add_row(
            run["id"], run["pipeline_id"], Text(run["status"], style=_STYLE.get(run["status"], "")),
            run.get("current_step") or "", str(run.get("steps_done", 0)), f"${Decimal(str(run['cost'])):.4f}",
            Text(_brief(run["task"], 50)),
        )  # fmt: skip
    return table


def steps_table(steps: list[dict[str, Any]]) -> Table:
    table = Table("#", "Step", "Agent", "Status", "Attempt", "Tokens", "Cost", "Outputs")
    for step in steps:
        table.add_row(
            str(step["seq"]), step["step_id"], step["agent_id"],
            Text(step["status"], style=_STYLE.get(step["status"], "")), str(step["attempt"]),
            str(step["input_tokens"] + step["output_tokens"]), f"${Decimal(str(step['cost'])):.4f}",
            Text(", ".join(step["outputs"]) or step.get("error", "")),
        )  # fmt: skip
    return table
