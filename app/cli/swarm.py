"""``marid swarm``: start a swarm from a YAML or JSON file and follow it live, list, show and cancel swarms,
over the JSON API with an API key (``MARID_API_KEY``) against a Marid server (``MARID_URL``) and workspace
(``MARID_WORKSPACE``, its slug)::

    marid swarm start build.yaml --follow      # validate, start, then a live display until it ends
    marid swarm start build.yaml --dry-run     # the preview only: depth, roots, warnings (or every problem)
    marid swarm follow swarm_0123456789ab
    marid swarm list | show ID | cancel ID

Following polls the swarm's events from a cursor (``GET .../swarms/{id}/events?after=``), so an interrupted
follow resumes where it stopped; Ctrl-C stops following, never the swarm. Exit status: 0 when the swarm
completed, 1 when it failed or was cancelled (or was refused), 2 for a usage or connection problem.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

USER_AGENT = "marid-cli/swarm"
COLOURS = {
    "pending": "grey50",
    "ready": "cyan",
    "running": "yellow",
    "completed": "green",
    "failed": "red",
    "skipped": "magenta",
    "cancelled": "grey50",
}


class CliError(Exception):
    """Something to say on stderr, with the exit status to leave with."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Client:
    url: str
    key: str
    workspace: str
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(
            base_url=self.url.rstrip("/") + f"/api/v1/workspaces/{self.workspace}",
            headers={"Authorization": f"Bearer {self.key}", "User-Agent": USER_AGENT},
            timeout=30,
        )

    def call(self, method: str, path: str, **options: Any) -> Any:
        try:
            response = self.http.request(method, path, **options)
        except httpx.HTTPError as error:
            raise CliError(f"cannot reach {self.url}: {error}") from None
        if response.status_code >= 400:
            raise CliError(_error_text(response), code=1)
        return response.json() if response.content else None


def _error_text(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:300]}"
    lines = [error.get("message", f"HTTP {response.status_code}")]
    for item in error.get("details", {}).get("errors", []):
        lines.append(f"  {item.get('field') or '(request)'}: {item.get('message')}")
    return "\n".join(lines)


def client_from(args: argparse.Namespace) -> Client:
    key = args.api_key or os.environ.get("MARID_API_KEY", "")
    workspace = args.workspace or os.environ.get("MARID_WORKSPACE", "")
    url = args.url or os.environ.get("MARID_URL", "http://127.0.0.1:8000")
    if not key:
        raise CliError("an API key is needed: --api-key or MARID_API_KEY (create one under Settings → API keys)")
    if not workspace:
        raise CliError("which workspace? --workspace SLUG or MARID_WORKSPACE")
    return Client(url, key, workspace)


def read_request(path: str) -> Any:
    from app.swarms.spec import load_text

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}") from None
    data, problems = load_text(text)
    if problems:
        raise CliError(f"{path}: " + "; ".join(str(p) for p in problems), code=1)
    if not isinstance(data, dict):
        raise CliError(f"{path}: a swarm request is an object with agent_id and tasks", code=1)
    return data


# --- the live display ----------------------------------------------------------------------------------------


@dataclass
class View:
    """What the display shows, rebuilt from the swarm's detail and then kept current by its events."""

    swarm: dict[str, Any]
    status: dict[str, str] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    last_output: dict[str, str] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, swarm: dict[str, Any]) -> View:
        view = cls(swarm)
        for task in swarm["tasks"]:
            view.status[task["key"]] = task["status"]
            view.titles[task["key"]] = task["title"]
            if task.get("error"):
                view.errors[task["key"]] = task["error"]
        return view

    def apply(self, event: dict[str, Any]) -> str | None:
        """Take one event in; a line worth printing (plain output) or None."""
        kind, data = event["type"], event["payload"]
        key = data.get("taskKey")
        if kind == "SWARM_TASK_STARTED":
            self.status[key] = "running"
            return f"▶ {key} started ({data.get('taskTitle', '')})"
        if kind == "SWARM_TASK_COMPLETED":
            self.status[key] = "completed"
            return f"✔ {key} completed in {data.get('durationMs', 0) / 1000:.1f} s"
        if kind == "SWARM_TASK_FAILED":
            self.status[key] = "failed"
            self.errors[key] = data.get("error") or ""
            return f"✘ {key} failed: {data.get('error')}"
        if kind == "STEP_RETRYING":
            self.status[key] = "ready"
            return f"↻ {key} failed ({data.get('error')}); retry {data.get('retry')} of {data.get('maxRetries')}"
        if kind == "SWARM_TASK_SKIPPED":
            self.status[key] = "skipped"
            return f"⤼ {key} skipped: {data.get('reason')}"
        if kind == "STEP_CANCELLED":
            self.status[key] = "cancelled"
            return None
        if kind == "STEP_OUTPUT" and key:
            text = str(data.get("text", "")).strip()
            if text:
                self.last_output[key] = text.splitlines()[-1][:100]
            return None
        if kind in ("SWARM_COMPLETED", "SWARM_FAILED"):
            self.swarm["status"] = data.get("status") or ("completed" if kind == "SWARM_COMPLETED" else "failed")
            summary = data.get("summary") or {}
            return (
                f"■ swarm {self.swarm['status']}: {summary.get('completed', 0)} completed, {summary.get('failed', 0)}"
                f" failed, {summary.get('skipped', 0)} skipped, {summary.get('cancelled', 0)} cancelled"
                + (f" ({data.get('error')})" if data.get("error") else "")
            )
        return None

    def render(self) -> Group:
        counts = Counter(self.status.values())
        bar = Text(f"{self.swarm['title']}  ")
        bar.append(f"[{self.swarm['status']}]  ", style="bold")
        for state in ("completed", "running", "ready", "pending", "failed", "skipped", "cancelled"):
            if counts[state]:
                bar.append(f"{state} {counts[state]}  ", style=COLOURS[state])
        table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
        table.add_column("task")
        table.add_column("status")
        table.add_column("")
        # Running and failed tasks first, then the rest in order; 100+ tasks stay readable on one screen.
        order = sorted(self.status, key=lambda k: {"running": 0, "failed": 1}.get(self.status[k], 2))
        for key in order[:20]:
            state = self.status[key]
            note = self.errors.get(key, "") if state in ("failed", "skipped") else self.last_output.get(key, "")
            table.add_row(key, Text(state, style=COLOURS.get(state, "")), Text(note[:90], style="dim"))
        if len(order) > 20:
            table.add_row(f"… {len(order) - 20} more", "", "")
        return Group(bar, table)


def follow(client: Client, swarm_id: str, console: Console) -> int:
    view = View.of(client.call("GET", f"/swarms/{swarm_id}"))
    after = "0-0"
    live = console.is_terminal

    def poll() -> bool:
        nonlocal after
        page = client.call("GET", f"/swarms/{swarm_id}/events", params={"after": after})
        after = page["after"]
        for event in page["events"]:
            line = view.apply(event)
            if line and not live:
                console.print(line, highlight=False, markup=False)
        view.swarm["status"] = page["status"]
        return page["status"] != "running" and not page["events"]

    try:
        if live:
            with Live(view.render(), console=console, refresh_per_second=4, transient=False) as screen:
                while not poll():
                    screen.update(view.render())
                    time.sleep(0.5)
                screen.update(view.render())
        else:
            while not poll():
                time.sleep(0.5)
    except KeyboardInterrupt:
        console.print(f"stopped following; the swarm goes on (marid swarm follow {swarm_id})")
        return 130
    final = client.call("GET", f"/swarms/{swarm_id}")
    counts = final["counts"]
    console.print(
        f"swarm {swarm_id} {final['status']}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        + f"; cost ${final['cost_usd']}",
        highlight=False, markup=False,
    )  # fmt: skip
    return 0 if final["status"] == "completed" else 1


# --- commands ------------------------------------------------------------------------------------------------


def cmd_start(args: argparse.Namespace, console: Console) -> int:
    client = client_from(args)
    request = read_request(args.file)
    if args.dry_run:
        preview = client.call("POST", "/swarms/preview", json=request)
        if not preview["valid"]:
            for problem in preview["problems"]:
                console.print(f"{problem['field'] or '(request)'}: {problem['message']}", markup=False)
            return 1
        console.print(
            f"{preview['total_tasks']} tasks, depth {preview['dag_depth']}, roots: {', '.join(preview['root_tasks'])}",
            markup=False,
        )
        for warning in preview["warnings"]:
            console.print(f"warning: {warning}", markup=False)
        return 0
    swarm = client.call("POST", "/swarms", json=request)
    console.print(f"started {swarm['id']}: {swarm['title']} ({len(swarm['tasks'])} tasks)", markup=False)
    if not args.follow:
        return 0
    return follow(client, swarm["id"], console)


def cmd_follow(args: argparse.Namespace, console: Console) -> int:
    return follow(client_from(args), args.swarm, console)


def cmd_list(args: argparse.Namespace, console: Console) -> int:
    page = client_from(args).call("GET", "/swarms", params={"limit": 50})
    for swarm in page["data"]:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(swarm["counts"].items()))
        console.print(f"{swarm['id']}  {swarm['status']:<9}  {swarm['title']}  ({counts})", markup=False)
    return 0


def cmd_show(args: argparse.Namespace, console: Console) -> int:
    console.print_json(json.dumps(client_from(args).call("GET", f"/swarms/{args.swarm}"), default=str))
    return 0


def cmd_cancel(args: argparse.Namespace, console: Console) -> int:
    swarm = client_from(args).call("POST", f"/swarms/{args.swarm}/cancel")
    console.print(f"{swarm['id']} {swarm['status']}", markup=False)
    return 0


def add_parser(commands: Any) -> None:
    swarm = commands.add_parser("swarm", help="start, follow, list, show and cancel swarms (with an API key)")
    actions = swarm.add_subparsers(dest="action", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--url", help="the Marid server (MARID_URL; default http://127.0.0.1:8000)")
        parser.add_argument("--workspace", help="the workspace's slug (MARID_WORKSPACE)")
        parser.add_argument("--api-key", help="an API key of the workspace (MARID_API_KEY)")

    start = actions.add_parser("start", help="start a swarm from a YAML or JSON file ('-': standard input)")
    start.add_argument("file")
    start.add_argument("--follow", action="store_true", help="follow it live until it ends")
    start.add_argument("--dry-run", action="store_true", help="only validate and preview")
    start.set_defaults(swarm_handler=cmd_start)
    watch = actions.add_parser("follow", help="follow a running swarm live")
    watch.add_argument("swarm")
    watch.set_defaults(swarm_handler=cmd_follow)
    listing = actions.add_parser("list", help="the workspace's recent swarms")
    listing.set_defaults(swarm_handler=cmd_list)
    show = actions.add_parser("show", help="a swarm and its tasks, as JSON")
    show.add_argument("swarm")
    show.set_defaults(swarm_handler=cmd_show)
    cancel = actions.add_parser("cancel", help="cancel a running swarm")
    cancel.add_argument("swarm")
    cancel.set_defaults(swarm_handler=cmd_cancel)
    for parser in (start, watch, listing, show, cancel):
        common(parser)


def run(args: argparse.Namespace) -> int:
    console = Console(highlight=False, soft_wrap=True)
    try:
        code: int = args.swarm_handler(args, console)
    except CliError as error:
        Console(stderr=True, highlight=False).print(f"marid swarm: {error}", markup=False)
        return error.code
    return code
