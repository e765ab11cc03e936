"""The runtime's built-in tools on a real folder: what each does, its limits, and its confinement to the
workspace (``..``, absolute paths outside, symlinks that lead out)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from agent_runtime.tools.base import ToolResult
from agent_runtime.tools.bash import OUTPUT_HEAD, OUTPUT_TAIL, Bash
from agent_runtime.tools.files import GREP_MATCHES, READ_LINES, Edit, Find, Grep, Ls, Read, Write
from agent_runtime.workspace import Change, Workspace

from tests.processes import alive, eventually, pid_in


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "workspace"
    path.mkdir()
    (tmp_path / "secret.txt").write_text("outside\n")
    return path


@pytest.fixture
def ws(root: Path) -> Workspace:
    return Workspace(root)


async def call(tool: Any, **args: Any) -> ToolResult:
    result: ToolResult = await tool.run(args)
    return result


# -- read, write, edit ---------------------------------------------------------------------------------------


async def test_write_creates_folders_and_reports_the_change(ws: Workspace, root: Path) -> None:
    result = await call(Write(ws), path="docs/a/notes.md", content="héllo\n")
    assert result.ok and result.text == "Wrote 7 bytes to docs/a/notes.md."
    assert result.changes == [Change("docs/a/notes.md", "created", 7)]
    again = await call(Write(ws), path="docs/a/notes.md", content="x")
    assert again.changes == [Change("docs/a/notes.md", "modified", 1)]
    assert (root / "docs/a/notes.md").read_text() == "x"


async def test_read_whole_files_and_pages_of_long_ones(ws: Workspace, root: Path) -> None:
    (root / "short.txt").write_text("one\ntwo\n")
    assert (await call(Read(ws), path="short.txt")).text == "one\ntwo\n"
    assert (await call(Read(ws), path="./short.txt", offset=2)).text == "two\n"
    (root / "long.txt").write_text("".join(f"line {n}\n" for n in range(1, 3001)))
    first = await call(Read(ws), path="long.txt")
    assert first.text.startswith("line 1\n") and f"line {READ_LINES}\n" in first.text
    assert first.text.endswith(f"[lines 1-{READ_LINES} of 3000; read on with offset={READ_LINES + 1}]")
    rest = await call(Read(ws), path="long.txt", offset="2001", limit=5)  # numbers as strings are taken
    assert rest.text.startswith("line 2001\n") and "[lines 2001-2005 of 3000" in rest.text
    (root / "empty.txt").write_text("")
    assert (await call(Read(ws), path="empty.txt")).text == "(empty file)"


async def test_read_refuses_binary_files_folders_and_missing_files(ws: Workspace, root: Path) -> None:
    (root / "blob.bin").write_bytes(b"\x00\x01\x02")
    (root / "sub").mkdir()
    for path, message in [("blob.bin", "binary file"), ("sub", "is a folder"), ("nope.txt", "No such file")]:
        result = await call(Read(ws), path=path)
        assert not result.ok and message in result.text, result.text


async def test_edit_replaces_exact_text_once_or_everywhere(ws: Workspace, root: Path) -> None:
    (root / "app.py").write_text("a = 1\nb = 1\n")
    unique = await call(Edit(ws), path="app.py", old_string="a = 1", new_string="a = 2")
    assert unique.ok and unique.changes == [Change("app.py", "modified", 12)]
    ambiguous = await call(Edit(ws), path="app.py", old_string="= ", new_string="== ")
    assert not ambiguous.ok and "occurs 2 times" in ambiguous.text
    everywhere = await call(Edit(ws), path="app.py", old_string=" = ", new_string=" := ", replace_all=True)
    assert everywhere.ok and "Replaced 2 occurrences" in everywhere.text
    assert (root / "app.py").read_text() == "a := 2\nb := 1\n"
    missing = await call(Edit(ws), path="app.py", old_string="zzz", new_string="")
    assert not missing.ok and "not found" in missing.text


async def test_bad_arguments_are_error_results(ws: Workspace) -> None:
    assert (await call(Write(ws), path="a.txt")).text == "Error: 'content' is required"
    assert (await call(Write(ws), path=["a"], content="x")).text == "Error: 'path' must be a string"
    assert (await call(Read(ws), path="a.txt", offset="first")).text == "Error: 'offset' must be a number"


# -- confinement ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["../secret.txt", "sub/../../secret.txt", "..", "/etc/passwd"])
async def test_paths_outside_the_workspace_are_refused(ws: Workspace, root: Path, path: str) -> None:
    for tool, args in [
        (Read(ws), {"path": path}),
        (Write(ws), {"path": path, "content": "x"}),
        (Edit(ws), {"path": path, "old_string": "o", "new_string": "x"}),
        (Ls(ws), {"path": path}),
        (Grep(ws), {"pattern": "outside", "path": path}),
        (Find(ws), {"pattern": "*", "path": path}),
        (Bash(ws), {"command": "true", "workdir": path}),
    ]:
        result = await tool.run(args)
        assert not result.ok, (tool.name, path)
        assert "outside the workspace" in result.text or "'..' is not allowed" in result.text
    assert (root.parent / "secret.txt").read_text() == "outside\n"


async def test_symlinks_that_lead_out_are_refused(ws: Workspace, root: Path) -> None:
    (root / "escape").symlink_to(root.parent)
    (root / "secret-link").symlink_to(root.parent / "secret.txt")
    assert "outside the workspace" in (await call(Read(ws), path="secret-link")).text
    assert "outside the workspace" in (await call(Read(ws), path="escape/secret.txt")).text
    assert "outside the workspace" in (await call(Write(ws), path="escape/new.txt", content="x")).text
    assert not (root.parent / "new.txt").exists()
    # grep and find never follow links, and show them in ls for what they are.
    assert (await call(Grep(ws), pattern="outside")).text == "No matches."
    assert "escape -> " in (await call(Ls(ws))).text


async def test_absolute_paths_inside_the_workspace_and_inner_symlinks_are_fine(ws: Workspace, root: Path) -> None:
    (root / "real.txt").write_text("inside\n")
    (root / "alias.txt").symlink_to(root / "real.txt")
    assert (await call(Read(ws), path=str(root / "real.txt"))).text == "inside\n"
    assert (await call(Read(ws), path="alias.txt")).text == "inside\n"


# -- ls, find, grep -------------------------------------------------------------------------------------------


async def test_ls_find_and_grep(ws: Workspace, root: Path) -> None:
    (root / "src/pkg").mkdir(parents=True)
    (root / "src/pkg/core.py").write_text("def main():\n    return 42\n")
    (root / "src/pkg/test_core.py").write_text("from pkg.core import main\n")
    (root / "README.md").write_text("Main docs\n")
    (root / ".git").mkdir()
    (root / ".git/config").write_text("main = yes\n")

    assert (await call(Ls(ws))).text == ".git/\nREADME.md  (10 bytes)\nsrc/"
    assert (await call(Find(ws), pattern="*.py")).text == "src/pkg/core.py\nsrc/pkg/test_core.py"
    assert (await call(Find(ws), pattern="src/**/test_*.py")).text == "src/pkg/test_core.py"
    assert (await call(Find(ws), pattern="*.rs")).text == "No files match."
    found = await call(Grep(ws), pattern=r"def \w+\(")
    assert found.text == "src/pkg/core.py:1: def main():"
    insensitive = await call(Grep(ws), pattern="main", ignore_case=True, glob="*.md")
    assert insensitive.text == "README.md:1: Main docs"
    assert "invalid regular expression" in (await call(Grep(ws), pattern="(")).text
    assert ".git" not in (await call(Grep(ws), pattern="main")).text


async def test_grep_stops_at_its_match_limit(ws: Workspace, root: Path) -> None:
    (root / "many.txt").write_text("hit\n" * (GREP_MATCHES + 50))
    result = await call(Grep(ws), pattern="hit")
    assert result.text.count("many.txt:") == GREP_MATCHES
    assert result.text.endswith(f"[stopped at {GREP_MATCHES} matches]")


# -- bash ------------------------------------------------------------------------------------------------------


async def test_bash_runs_in_the_workspace_and_reports_what_it_changed(ws: Workspace, root: Path) -> None:
    (root / "old.txt").write_text("old")
    (root / "keep.txt").write_text("keep")
    result = await call(Bash(ws), command="pwd; echo err >&2; echo new > new.txt; rm old.txt; echo more >> keep.txt")
    assert result.ok
    assert result.text == f"{root}\nerr\n[exit code 0]"
    assert result.changes == [
        Change("keep.txt", "modified", 9),
        Change("new.txt", "created", 4),
        Change("old.txt", "deleted", 0),
    ]


async def test_bash_workdir_exit_codes_and_no_platform_variables(
    ws: Workspace, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (root / "sub").mkdir()
    monkeypatch.setenv("MARID_CHANNEL", "unix:/run/marid/channel.sock")
    result = await call(Bash(ws), command="pwd; env | grep -c MARID_ || true; exit 3", workdir="sub")
    assert not result.ok
    assert result.text == f"{root / 'sub'}\n0\n[exit code 3]"


async def test_bash_cuts_long_output_keeping_head_and_tail(ws: Workspace) -> None:
    result = await call(Bash(ws), command="seq 1 100000")
    assert result.ok
    assert result.text.startswith("1\n2\n3\n")
    assert result.text.endswith("99999\n100000\n[exit code 0]")
    assert "bytes of output cut" in result.text
    assert len(result.text) < OUTPUT_HEAD + OUTPUT_TAIL + 200


async def test_bash_times_out_and_kills_what_it_started(ws: Workspace, root: Path) -> None:
    started = asyncio.get_running_loop().time()
    result = await call(Bash(ws), command="(sleep 60; echo late > late.txt) & echo $! > bg.pid; sleep 60", timeout=1)
    assert asyncio.get_running_loop().time() - started < 5
    assert not result.ok and "[timed out after 1 s; the command was killed]" in result.text
    await eventually(lambda: not alive(pid_in(root / "bg.pid") or 0))


async def test_background_jobs_end_with_the_command(ws: Workspace, root: Path) -> None:
    started = asyncio.get_running_loop().time()
    result = await call(Bash(ws), command="sleep 60 & echo $! > bg.pid; echo started")
    assert result.ok and result.text == "started\n[exit code 0]"
    assert asyncio.get_running_loop().time() - started < 5
    await eventually(lambda: not alive(pid_in(root / "bg.pid") or 0))


async def test_bash_cancelled_kills_the_command(ws: Workspace, root: Path) -> None:
    task = asyncio.create_task(call(Bash(ws), command="echo $$ > me.pid; exec sleep 60"))
    await eventually(lambda: pid_in(root / "me.pid"))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await eventually(lambda: not alive(pid_in(root / "me.pid") or 0))
