"""Every audit action has a written feed sentence naming who did what to whom (issue 10, defect 2).

The walk renders each catalogue entry with the details the code records (its ``example``): a sentence never shows
"?", a raw action name ("auth 2fa failed") or an empty field, names its actor, and is said in full, not in its
short form for old entries. An unknown action is never shown by its raw name either.
"""

from __future__ import annotations

import re

import pytest

from app.account.events import SENTENCES
from app.audit import catalogue
from app.audit.catalogue import CATALOGUE
from tests.live.test_event_permissions import recorded_actions

RAW = re.compile(r"\b[a-z0-9]+_[a-z0-9_]+\b")  # "2fa_failed", "member_role"


@pytest.mark.parametrize("action", sorted(CATALOGUE))
def test_each_sentence_renders_in_full_with_example_details(action: str) -> None:
    entry = CATALOGUE[action]
    text = catalogue.sentence(action, "Ada Lovelace", dict(entry.example))
    assert "?" not in text and "{" not in text and "None" not in text, text
    raw_names = {action, action.replace(".", " ").replace("_", " "), *action.split(".")[-1:]}
    assert not any(name in text for name in raw_names if "_" in name or "." in name or " " in name), text
    assert not RAW.search(text.replace("example.com", "")), text
    assert text[0].isupper(), text
    lower = catalogue.sentence(action, "ada lovelace", dict(entry.example))
    assert ("ada lovelace" in lower) == ("Ada Lovelace" in text), "a name is kept as written"
    if "{actor}" in (entry.sentence if isinstance(entry.sentence, str) else entry.sentence(entry.example)):
        assert "Ada Lovelace" in text, text
    short = entry.short.replace("{actor}", "Ada Lovelace")
    assert text != short or entry.sentence == entry.short, f"{action} fell back to its short form: {text}"


def test_every_recorded_action_has_an_example_of_what_it_records() -> None:
    for action in recorded_actions():
        entry = CATALOGUE[action]
        if catalogue.fields(action) - set(entry.example):
            raise AssertionError(f"{action}: its sentence takes details its example lacks")


def test_whom_it_happened_to_is_named() -> None:
    changed = catalogue.sentence(
        "member.role_changed", "Ada", {"member": "Bob", "email": "bob@example.com", "from": "member", "to": "viewer"}
    )
    assert changed == "Ada changed Bob's role from member to viewer"
    # An entry recorded before names were: the address stands in.
    old = catalogue.sentence(
        "member.role_changed", "Ada", {"email": "bob@example.com", "from": "admin", "to": "viewer"}
    )
    assert old == "Ada changed bob@example.com's role from admin to viewer"
    # An entry missing what the sentence needs is said shortly, never with "?".
    assert catalogue.sentence("member.invited", "Ada", {}) == "Ada invited someone"


def test_an_unknown_action_is_never_shown_by_its_raw_name() -> None:
    text = catalogue.sentence("auth.2fa_fancy_new", "Ada", {})
    assert "2fa" not in text and "fancy" not in text and text.startswith("Ada ")


def test_every_account_event_kind_is_written_in_the_second_person() -> None:
    recorded = {action for action in recorded_actions() if action.startswith("auth.")}
    assert recorded <= set(SENTENCES), recorded - set(SENTENCES)
