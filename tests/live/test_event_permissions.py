"""The catalogues of live event permissions are complete: every event type and every audit action names one.

An action that is recorded somewhere in the code but has no entry in ``app.audit.catalogue.CATALOGUE`` (its
label, sentence, permission and control event) fails here, by name. What each role then actually receives is
proven against the pages in ``tests/workspaces/test_live_visibility.py``.
"""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path

from app.audit import catalogue
from app.audit.catalogue import CATALOGUE
from app.live.bus import Event, EventType, Topic
from app.live.permissions import TYPE_PERMISSIONS, UNLISTED, required_permission
from app.tenants.permissions import PERMISSIONS

ROOT = Path(__file__).resolve().parents[2]
ACTION = re.compile(r"[a-z][a-z0-9_]*\.[a-z0-9_]+")


def recorded_actions() -> dict[str, str]:
    """Every literal action passed to an audit call (``record``, ``record_for_user_workspaces``, ``_audit``...)
    in app/ and worker/, with where it was found."""
    found: dict[str, str] = {}
    for path in sorted([*ROOT.joinpath("app").rglob("*.py"), *ROOT.joinpath("worker").rglob("*.py")]):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if "record" not in name and "audit" not in name:
                continue
            arguments = [*node.args, *(k.value for k in node.keywords if k.arg == "action")]
            for argument in arguments:
                for constant in ast.walk(argument):  # also both sides of `"a.b" if x else "a.c"`
                    if isinstance(constant, ast.Constant) and isinstance(constant.value, str):
                        if ACTION.fullmatch(constant.value):
                            found.setdefault(constant.value, f"{path.relative_to(ROOT)}:{constant.lineno}")
    return found


def test_the_scan_finds_the_actions_it_should() -> None:
    """A guard on the guard: if the scan stopped finding calls, the completeness test would pass vacuously."""
    found = recorded_actions()
    for action in ("member.invited", "apikey.created", "sso.configured", "mail.delivered", "workspace.created"):
        assert action in found


def test_every_audit_action_names_the_permission_needed_to_see_it() -> None:
    known = recorded_actions()
    missing = {action: where for action, where in sorted(known.items()) if action not in CATALOGUE}
    assert not missing, (
        "These audit actions reach the log and the live feed but have no catalogue entry; add one each to "
        f"CATALOGUE in app/audit/catalogue.py (label, sentence, the permission of the page that shows it): {missing}"
    )
    for action, entry in CATALOGUE.items():
        assert entry.label and entry.sentence and entry.permission, action
        # The sentence names what it takes from the details; the feed shows "?" for anything missing.
        assert catalogue.sentence(action, "Ada", {name: "x" for name in catalogue.fields(action)}).count("?") == 0


def test_every_event_type_names_the_permission_needed_to_see_it() -> None:
    missing = sorted(event_type.value for event_type in EventType if event_type not in TYPE_PERMISSIONS)
    assert not missing, f"add these event types to TYPE_PERMISSIONS in app/live/permissions.py: {missing}"


def test_every_named_permission_is_in_the_permission_table() -> None:
    named = {*(entry.permission for entry in CATALOGUE.values()), *(p for p in TYPE_PERMISSIONS.values() if p)}
    assert named <= PERMISSIONS.keys()


def event(event_type: EventType, **payload: str) -> Event:
    return Event(type=event_type, workspace_id="a" * 12, topic=Topic.activity(), payload=payload, at=datetime.now(UTC))


def test_an_unlisted_action_is_shown_only_to_audit_log_readers() -> None:
    """Not a silent default-allow: what nobody classified is treated as the audit log treats it."""
    assert UNLISTED == catalogue.UNLISTED_PERMISSION == "audit.view"
    assert catalogue.entry("something.new").permission == "audit.view"
    # An activity carries the permission its publisher looked up in the catalogue; one without any is
    # treated as unlisted.
    assert required_permission(event(EventType.ACTIVITY, action="something.new")) == "audit.view"
    assert required_permission(event(EventType.ACTIVITY)) == "audit.view"
    invited = catalogue.entry("member.invited").permission
    assert invited == "members.invite"
    assert required_permission(event(EventType.ACTIVITY, action="member.invited", permission=invited)) == invited
    assert required_permission(event(EventType.STEP_OUTPUT)) == "workspace.view"
