"""The tools an agent may be allowed: a fixed catalogue (the agent runtime's built-in tools today; the platform's
own tools, served over the sandbox channel, join it as they are built).

``complete`` and ``fail`` are not in it: every step can always finish, so they are never a choice.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tool:
    name: str
    # One line for the edit form and the system prompt.
    summary: str
    # "files" (the built-in tools of the agent runtime) or "platform" (Marid's own tools, to come).
    group: str = "files"


CATALOGUE: tuple[Tool, ...] = (
    Tool("read", "Read a file in the step's workspace folder."),
    Tool("write", "Create or overwrite a file in the workspace folder."),
    Tool("edit", "Replace an exact piece of text in a file."),
    Tool("bash", "Run a shell command in the sandbox (no network)."),
    Tool("grep", "Search file contents for a pattern."),
    Tool("find", "Find files by name."),
    Tool("ls", "List a folder."),
    Tool("swarm_execute", "Start a swarm: many tasks in parallel sandboxes, in dependency order.", "platform"),
)
TOOLS: dict[str, Tool] = {tool.name: tool for tool in CATALOGUE}
TOOL_NAMES: tuple[str, ...] = tuple(TOOLS)
# Reading and writing files, but no shell: what a new blank agent starts with.
DEFAULT_TOOLS: tuple[str, ...] = ("read", "write", "edit", "grep", "find", "ls")


def ordered(names: set[str] | frozenset[str] | list[str] | tuple[str, ...]) -> list[str]:
    """Known tool names in catalogue order (unknown ones dropped: callers check them first)."""
    chosen = set(names)
    return [name for name in TOOL_NAMES if name in chosen]
