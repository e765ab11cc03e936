"""Per-workspace step directories and the sandbox uid pool: names, modes, ownership, cleanup."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from app.sandbox import stepdirs
from app.sandbox.uids import UidPool


@pytest.mark.parametrize("name", ["..", ".", "a/b", "", "-x", "_x", "a" * 81, "ws 1", "ws\n", "é"])
def test_names_that_could_escape_or_collide_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        stepdirs.step_dir(tmp_path, name, "run", "step")
    with pytest.raises(ValueError):
        stepdirs.step_dir(tmp_path, "ws", "run", name)
    assert not any(tmp_path.iterdir())


def test_step_directories_are_private_and_per_workspace(tmp_path: Path) -> None:
    root = tmp_path / "files"
    a = stepdirs.step_dir(root, "ws-a", "run-1", "step-1")
    b = stepdirs.step_dir(root, "ws-b", "run-1", "step-1")
    assert a != b and a.parent.parent.name == "ws-a" and b.parent.parent.name == "ws-b"
    assert a == root / "ws-a" / "run-1" / "step-1"
    assert stepdirs.step_dir(root, "ws-a", "run-1", "step-1") == a  # the same step finds its files again
    for passage in (root, root / "ws-a", root / "ws-a" / "run-1"):
        assert passage.stat().st_mode & 0o777 == 0o711
    assert a.stat().st_mode & 0o777 == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="lending a directory to another uid needs root")
def test_lend_and_reclaim_change_owners_without_following_links(tmp_path: Path) -> None:
    step = stepdirs.step_dir(tmp_path, "ws", "run", "step")
    (step / "kept.txt").write_text("from an earlier attempt")
    outside = tmp_path / "outside.txt"
    outside.write_text("not the sandbox's")
    stepdirs.lend(step, 200_001, 200_001)
    assert step.stat().st_uid == (step / "kept.txt").stat().st_uid == 200_001
    os.symlink(outside, step / "link")
    os.lchown(step / "link", 200_001, 200_001)
    stepdirs.reclaim(step)
    assert step.stat().st_uid == os.geteuid() and (step / "link").lstat().st_uid == os.geteuid()
    assert outside.stat().st_uid == os.geteuid()


def test_prune_applies_a_policy_and_keeps_the_rest(tmp_path: Path) -> None:
    old = stepdirs.step_dir(tmp_path, "ws-a", "run-1", "old")
    new = stepdirs.step_dir(tmp_path, "ws-a", "run-2", "new")
    gone = stepdirs.step_dir(tmp_path, "ws-b", "run-1", "s")
    (tmp_path / "not.ours").mkdir()
    day = 86400
    os.utime(old, (time.time() - 40 * day, time.time() - 40 * day))
    removed = stepdirs.prune(tmp_path, stepdirs.older_than(30))
    assert [step.path for step in removed] == [old]
    assert not (tmp_path / "ws-a" / "run-1").exists() and new.is_dir() and gone.is_dir()
    # The hook for a deleted workspace: everything of ws-b, nothing else.
    removed = stepdirs.prune(tmp_path, lambda step: step.workspace_id == "ws-b")
    assert [step.path for step in removed] == [gone] and not (tmp_path / "ws-b").exists()
    assert new.is_dir() and (tmp_path / "not.ours").is_dir()


def test_uid_pool_hands_out_each_uid_once(tmp_path: Path) -> None:
    pool = UidPool(tmp_path / "uids", base=300_000, count=3)
    uids = {pool.allocate(f"s{i}") for i in range(3)}
    assert uids == {300_000, 300_001, 300_002}
    with pytest.raises(RuntimeError):
        pool.allocate("one-too-many")
    pool.release(300_001, "not-the-holder")
    assert 300_001 in pool.holders()
    holder = pool.holders()[300_001]
    pool.release(300_001, holder)
    assert pool.allocate("again") == 300_001
    with pytest.raises(ValueError):
        UidPool(tmp_path, base=0, count=10)
