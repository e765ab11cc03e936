"""The file tools: read, write, edit, ls, find, grep. Every path goes through ``Workspace.resolve``."""

from __future__ import annotations

import asyncio
import fnmatch
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from agent_runtime.tools.base import JsonObject, ToolError, ToolResult, bool_arg, cap, int_arg, text_arg
from agent_runtime.workspace import SKIPPED_DIRS, Change, PathRefused, Workspace

READ_LINES = 2000
READ_BYTES = 256 * 1024
LIST_LIMIT = 1000
GREP_MATCHES = 200
GREP_FILE_BYTES = 2 * 1024 * 1024
GREP_LINE = 300


def _path_param(description: str) -> JsonObject:
    return {"type": "string", "description": description}


def _is_binary(head: bytes) -> bool:
    return b"\x00" in head


class _FileTool:
    name = ""
    description = ""
    parameters: JsonObject = {}

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    async def run(self, args: Mapping[str, Any]) -> ToolResult:
        try:
            return await self.call(args)
        except (ToolError, PathRefused) as error:
            return ToolResult.error(str(error))
        except UnicodeDecodeError:
            return ToolResult.error("the file is not UTF-8 text")
        except OSError as error:
            return ToolResult.error(f"{error.strerror or error}")

    async def call(self, args: Mapping[str, Any]) -> ToolResult:
        raise NotImplementedError


class Read(_FileTool):
    name = "read"
    description = (
        f"Read a text file of the workspace. Long files come {READ_LINES} lines at a time: pass offset (the first "
        "line, from 1) and limit to read on."
    )
    parameters: JsonObject = {
        "type": "object",
        "properties": {
            "path": _path_param("File path, relative to the workspace"),
            "offset": {"type": "integer", "description": "First line to read, from 1"},
            "limit": {"type": "integer", "description": f"How many lines (at most {READ_LINES})"},
        },
        "required": ["path"],
    }

    async def call(self, args: Mapping[str, Any]) -> ToolResult:
        path = self.workspace.resolve(text_arg(args, "path"))
        offset = int_arg(args, "offset", 1, low=1) or 1
        limit = int_arg(args, "limit", READ_LINES, low=1, high=READ_LINES) or READ_LINES
        if path.is_dir():
            raise ToolError(f"{text_arg(args, 'path')} is a folder (use ls)")
        data = path.read_bytes()
        if _is_binary(data[:8192]):
            raise ToolError(f"{text_arg(args, 'path')} is a binary file ({len(data)} bytes)")
        lines = data.decode("utf-8", errors="replace").splitlines(keepends=True)
        chosen = lines[offset - 1 : offset - 1 + limit]
        text = "".join(chosen)
        if len(text) > READ_BYTES:
            # Very long lines: cut at a line boundary where there is one, and say where to go on.
            cut = text.rfind("\n", 0, READ_BYTES) + 1 or READ_BYTES
            chosen = text[:cut].splitlines(keepends=True)
            text = text[:cut]
        last = offset - 1 + len(chosen)
        if last < len(lines):
            text += f"\n[lines {offset}-{last} of {len(lines)}; read on with offset={last + 1}]"
        elif not chosen:
            text = f"(the file has {len(lines)} lines)" if lines else "(empty file)"
        return ToolResult(True, text)


class Write(_FileTool):
    name = "write"
    description = "Create or overwrite a file of the workspace with the given content (folders are created)."
    parameters: JsonObject = {
        "type": "object",
        "properties": {
            "path": _path_param("File path, relative to the workspace"),
            "content": {"type": "string", "description": "The whole new content of the file"},
        },
        "required": ["path", "content"],
    }

    async def call(self, args: Mapping[str, Any]) -> ToolResult:
        shown = text_arg(args, "path")
        content = text_arg(args, "content")
        path = self.workspace.resolve(shown)
        if path.is_dir():
            raise ToolError(f"{shown} is a folder")
        existed = path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode()
        path.write_bytes(data)
        change = Change(self.workspace.relative(path), "modified" if existed else "created", len(data))
        return ToolResult(True, f"Wrote {len(data)} bytes to {change.path}.", [change])


class Edit(_FileTool):
    name = "edit"
    description = (
        "Replace an exact piece of text in a file. old_string must occur exactly once (give more surrounding "
        "text to make it unique) unless replace_all is true."
    )
    parameters: JsonObject = {
        "type": "object",
        "properties": {
            "path": _path_param("File path, relative to the workspace"),
            "old_string": {"type": "string", "description": "The exact text to replace"},
            "new_string": {"type": "string", "description": "The text to put in its place"},
            "replace_all": {"type": "boolean", "description": "Replace every occurrence"},
        },
        "required": ["path", "old_string", "new_string"],
    }

    async def call(self, args: Mapping[str, Any]) -> ToolResult:
        shown = text_arg(args, "path")
        old, new = text_arg(args, "old_string"), text_arg(args, "new_string")
        path = self.workspace.resolve(shown)
        if not old:
            raise ToolError("old_string is empty (use write to create a file)")
        if not path.is_file():
            raise ToolError(f"{shown}: no such file")
        text = path.read_bytes().decode("utf-8", errors="strict")
        count = text.count(old)
        if count == 0:
            raise ToolError(f"old_string was not found in {shown}")
        if count > 1 and not bool_arg(args, "replace_all"):
            raise ToolError(f"old_string occurs {count} times in {shown}; make it unique or set replace_all")
        data = text.replace(old, new).encode()
        path.write_bytes(data)
        change = Change(self.workspace.relative(path), "modified", len(data))
        return ToolResult(True, f"Replaced {count} occurrence{'s' * (count > 1)} in {change.path}.", [change])


class Ls(_FileTool):
    name = "ls"
    description = "List a folder of the workspace: sub-folders end with /, files show their size."
    parameters: JsonObject = {
        "type": "object",
        "properties": {"path": _path_param("Folder path, relative to the workspace (default: the root)")},
    }

    async def call(self, args: Mapping[str, Any]) -> ToolResult:
        shown = text_arg(args, "path", required=False, default=".") or "."
        folder = self.workspace.resolve(shown)
        if not folder.is_dir():
            raise ToolError(f"{shown}: not a folder")
        lines = []
        for entry in sorted(os.scandir(folder), key=lambda e: e.name)[:LIST_LIMIT]:
            if entry.is_dir(follow_symlinks=False):
                lines.append(f"{entry.name}/")
            elif entry.is_symlink():
                lines.append(f"{entry.name} -> {os.readlink(entry.path)}")
            else:
                lines.append(f"{entry.name}  ({entry.stat(follow_symlinks=False).st_size} bytes)")
        return ToolResult(True, "\n".join(lines) if lines else "(empty folder)")


def _walk(root: Path) -> Iterator[Path]:
    """Files under ``root``, symlinks not followed, noisy folders skipped, in a stable order."""
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in sorted(files):
            yield Path(folder, name)


class Find(_FileTool):
    name = "find"
    description = (
        "Find files by glob pattern, e.g. '*.py' (matched against names) or 'src/**/test_*.py' (matched against "
        "paths relative to the workspace)."
    )
    parameters: JsonObject = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "description": "Glob pattern"},
            "path": _path_param("Folder to search in (default: the root)"),
        },
        "required": ["pattern"],
    }

    async def call(self, args: Mapping[str, Any]) -> ToolResult:
        pattern = text_arg(args, "pattern")
        folder = self.workspace.resolve(text_arg(args, "path", required=False, default=".") or ".")
        return await asyncio.to_thread(self._find, pattern, folder)

    def _find(self, pattern: str, folder: Path) -> ToolResult:
        found: list[str] = []
        by_path = "/" in pattern
        for path in _walk(folder):
            rel = self.workspace.relative(path)
            if fnmatch.fnmatch(rel if by_path else path.name, pattern):
                found.append(rel)
                if len(found) >= LIST_LIMIT:
                    found.append(f"… [stopped at {LIST_LIMIT} files]")
                    break
        return ToolResult(True, "\n".join(found) if found else "No files match.")


class Grep(_FileTool):
    name = "grep"
    description = "Search file contents with a regular expression (Python syntax); lines come as path:line: text."
    parameters: JsonObject = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "description": "Regular expression"},
            "path": _path_param("File or folder to search (default: the root)"),
            "glob": {"type": "string", "description": "Only files whose name matches this glob, e.g. '*.py'"},
            "ignore_case": {"type": "boolean"},
        },
        "required": ["pattern"],
    }

    async def call(self, args: Mapping[str, Any]) -> ToolResult:
        try:
            regex = re.compile(text_arg(args, "pattern"), re.IGNORECASE if bool_arg(args, "ignore_case") else 0)
        except re.error as error:
            raise ToolError(f"invalid regular expression: {error}") from None
        target = self.workspace.resolve(text_arg(args, "path", required=False, default=".") or ".")
        glob = text_arg(args, "glob", required=False) or None
        return await asyncio.to_thread(self._grep, regex, target, glob)

    def _grep(self, regex: re.Pattern[str], target: Path, glob: str | None) -> ToolResult:
        files = [target] if target.is_file() else _walk(target)
        matches: list[str] = []
        for path in files:
            if glob and not fnmatch.fnmatch(path.name, glob):
                continue
            try:
                if path.is_symlink() or path.stat().st_size > GREP_FILE_BYTES:
                    continue
                data = path.read_bytes()
            except OSError:
                continue
            if _is_binary(data[:8192]):
                continue
            rel = self.workspace.relative(path)
            for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
                if regex.search(line):
                    matches.append(f"{rel}:{number}: {line[:GREP_LINE]}")
                    if len(matches) >= GREP_MATCHES:
                        matches.append(f"… [stopped at {GREP_MATCHES} matches]")
                        return ToolResult(True, cap("\n".join(matches)))
        return ToolResult(True, cap("\n".join(matches)) if matches else "No matches.")
