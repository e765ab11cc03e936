"""What an agent may be (pure checks, no database): ids, profile, persona limits, tools, model format, pulse, the
starter roster files, and the system prompt's assembly."""

from __future__ import annotations

import pytest

from app.agents.draft import PERSONA_MAX, SECTIONS, AgentDraft, check_draft, clean_id, suggest_id
from app.agents.model_hook import model_format_problem
from app.agents.prompt import StepBrief, assemble_system_prompt
from app.agents.pulse import Blackout, PulseSettings, parse_blackouts, pulse_from_form
from app.agents.roster import parse_starter, starters, unwrap
from app.agents.tools import TOOL_NAMES
from app.errors import Invalid
from app.pipelines.starters import STARTER_AGENT_IDS, load_starter, starter_ids


def problems(draft: AgentDraft) -> dict[str, str]:
    with pytest.raises(Invalid) as refused:
        check_draft(draft)
    return refused.value.errors


@pytest.mark.parametrize("good", ["a", "software-engineer", "sre", "agent-2", "x" * 48])
def test_good_ids(good: str) -> None:
    assert clean_id(good) == good


@pytest.mark.parametrize(
    "bad", ["", "-a", "a-", "2fa", "a_b", "a b", "x" * 49, "new", "roster", "preview", "é", "a/b", "../x"]
)
def test_bad_ids_are_refused_on_the_id_field(bad: str) -> None:
    with pytest.raises(Invalid) as refused:
        clean_id(bad)
    assert set(refused.value.errors) == {"id"}


def test_ids_are_trimmed_and_lowercased() -> None:
    assert clean_id("  Software-Engineer ") == "software-engineer"


def test_ids_suggested_from_names() -> None:
    assert suggest_id("Site reliability engineer") == "site-reliability-engineer"
    assert suggest_id("  42 Bots!  ") == "bots"
    assert suggest_id("!!!") == "agent"


def test_a_draft_is_cleaned() -> None:
    draft = check_draft(
        AgentDraft(
            name="  Ada   Lovelace ",
            role=" Analyst ",
            emoji="",
            identity="\r\n\nLine one\r\nLine two  \n\n",
            tools=("ls", "read", "bash"),
            model="  openai/gpt-4.1 ",
        )
    )
    assert (draft.name, draft.role, draft.emoji) == ("Ada Lovelace", "Analyst", "🤖")
    assert draft.identity == "Line one\nLine two"
    assert draft.tools == ("read", "bash", "ls")  # catalogue order
    assert draft.model == "openai/gpt-4.1"
    assert check_draft(AgentDraft(name="x", model="  ")).model is None


def test_every_problem_is_named_by_its_field() -> None:
    found = problems(
        AgentDraft(
            name="",
            role="r" * 121,
            emoji="abc",
            identity="x" * 8_001,
            tools=("read", "rm", "curl"),
            model="gpt-4",
            pulse=PulseSettings(interval_minutes=1, offset_minutes=-1),
        )
    )
    assert set(found) == {
        "name",
        "role",
        "emoji",
        "identity",
        "tools",
        "model",
        "pulse_interval_minutes",
        "pulse_offset_minutes",
    }
    assert "8,001 characters; the limit is 8,000" in found["identity"]
    assert "curl, rm" in found["tools"] and "read" in found["tools"]


def test_the_whole_persona_is_capped_with_a_clear_error() -> None:
    each = PERSONA_MAX // 3 + 1  # each section within its own limit, together over the cap
    found = problems(AgentDraft(name="x", personality="p" * each, procedures="q" * each, decision_framework="d" * each))
    assert set(found) == {"persona"}
    assert f"the limit is {PERSONA_MAX:,}" in found["persona"]
    assert sum(limit for _, _, limit in SECTIONS) > PERSONA_MAX  # the cap matters


@pytest.mark.parametrize("name", ["a\nb", "a\x00b", "a\u202eb"])
def test_names_are_one_line_of_plain_text(name: str) -> None:
    assert set(problems(AgentDraft(name=name))) == {"name"}


def test_persona_text_refuses_control_characters_but_keeps_markdown() -> None:
    assert set(problems(AgentDraft(name="x", identity="bell\x07"))) == {"identity"}
    markdown = "- **one**\n\t- two\n\n```\ncode\n```"
    assert check_draft(AgentDraft(name="x", identity=markdown)).identity == markdown


@pytest.mark.parametrize("emoji", ["🛠️", "🧑‍💻", "👩🏽‍🔬", "✏️", "🇯🇵"])
def test_emoji(emoji: str) -> None:
    assert check_draft(AgentDraft(name="x", emoji=emoji)).emoji == emoji


@pytest.mark.parametrize(
    "model",
    [
        "openai/gpt-4.1",
        "anthropic/claude-sonnet-4-5",
        "openrouter/x-ai/grok-4.1-fast",
        "ollama/llama3.1:8b",
        "my-vllm/Qwen2.5-7B-Instruct",
        "demo/demo",
    ],
)
def test_well_formed_models(model: str) -> None:
    assert model_format_problem(model) is None


@pytest.mark.parametrize(
    "model",
    ["gpt-4", "/gpt", "openai/", "OpenAI/gpt", "openai//gpt", "openai/gpt 4", "a/" + "x" * 200, "openai/gpt-4/"],
)
def test_malformed_models(model: str) -> None:
    assert model_format_problem(model) is not None


def test_blackouts_are_typed_one_per_line() -> None:
    assert parse_blackouts("23:00-07:00 Night\n\n 12:30 – 13:30  Lunch  break\n9:00-9:15") == (
        Blackout("23:00", "07:00", "Night"),
        Blackout("12:30", "13:30", "Lunch break"),
        Blackout("09:00", "09:15", ""),
    )
    for bad in ("25:00-07:00", "23:00", "07:00-07:00", "noon-night", "\n".join(["01:00-02:00"] * 11)):
        with pytest.raises(Invalid) as refused:
            parse_blackouts(bad)
        assert set(refused.value.errors) == {"pulse_blackouts"}


def test_pulse_from_the_form() -> None:
    pulse = pulse_from_form(
        {
            "pulse_form": "1",
            "pulse_enabled": "on",
            "pulse_interval_minutes": "60",
            "pulse_offset_minutes": "15",
            "pulse_blackouts": "",
            "pulse_wake_max_per_day": "3",
        }
    )
    assert (pulse.enabled, pulse.interval_minutes, pulse.offset_minutes, pulse.blackouts) == (True, 60, 15, ())
    assert (pulse.wake_max_per_day, pulse.wake_cooldown_seconds) == (3, 300)
    assert pulse_from_form({"pulse_form": "1"}).enabled is False  # an unticked box is not sent
    with pytest.raises(Invalid) as refused:
        pulse_from_form({"pulse_interval_minutes": "ten", "pulse_offset_minutes": "99999999999"})
    assert set(refused.value.errors) == {"pulse_interval_minutes", "pulse_offset_minutes"}
    with pytest.raises(Invalid) as refused:
        pulse_from_form({"pulse_interval_minutes": "30", "pulse_offset_minutes": "30"})
    assert "shorter than the interval" in refused.value.errors["pulse_offset_minutes"]


def test_pulse_settings_round_trip_through_columns() -> None:
    pulse = PulseSettings(enabled=True, blackouts=(Blackout("01:00", "02:00", "x"),), wake_max_per_day=1)

    class Row:
        pass

    row = Row()
    for column, value in pulse.as_columns().items():
        setattr(row, column, value)
    assert PulseSettings.from_columns(row) == pulse


# --- the starter roster --------------------------------------------------------------------------------------


def test_the_roster_has_the_agents_the_starter_pipelines_name() -> None:
    ids = {item.id for item in starters()}
    assert {"product-owner", "architect", "software-engineer", "test-engineer", "sre", "ux-designer"} <= ids
    assert set(STARTER_AGENT_IDS) <= ids
    named = {agent.id for starter_id in starter_ids() for agent in load_starter(starter_id).agents}
    assert named <= ids, named - ids


def test_every_starter_is_complete_distinct_and_valid() -> None:
    seen_text: set[str] = set()
    emojis = set()
    for item in starters():
        draft = item.draft
        assert check_draft(draft) == draft
        assert item.summary and draft.name and draft.role and draft.emoji
        emojis.add(draft.emoji)
        for key, label, _ in SECTIONS:
            text = getattr(draft, key)
            assert len(text) > 400, f"{item.id}: {label} is too thin"
            assert text not in seen_text, f"{item.id}: {label} repeats another starter"
            seen_text.add(text)
        assert set(draft.tools) <= set(TOOL_NAMES) and draft.tools
    assert len(emojis) == len(starters())


def test_roster_text_is_unwrapped_but_keeps_its_blocks() -> None:
    wrapped = "A paragraph that\nwraps twice\nhere.\n\n- **Item** one\n  continues.\n- Item two\n1. Step\n\n"
    wrapped += "```\nkeep\nthis\n```"
    assert unwrap(wrapped) == (
        "A paragraph that wraps twice here.\n\n- **Item** one continues.\n- Item two\n1. Step\n\n```\nkeep\nthis\n```"
    )
    for item in starters():
        for key, _, _ in SECTIONS:
            for line in getattr(item.draft, key).split("\n"):
                assert not line.startswith("  "), f"{item.id}.{key}: a wrapped line was left: {line!r}"


def test_a_malformed_roster_file_is_refused_with_its_name() -> None:
    for text in (
        "no front matter",
        "---\n- a list\n---\n",
        "---\nid: Bad Id\nname: x\n---\n",
        "---\nid: ok\nname: x\n---\n# Hobbies\ntext",
    ):
        with pytest.raises(ValueError, match="broken.md"):
            parse_starter(text, "broken.md")


# --- the system prompt ---------------------------------------------------------------------------------------


def test_the_prompt_puts_the_sections_in_order_under_our_headings() -> None:
    draft = AgentDraft(
        name="Ada",
        role="Analyst",
        identity="IDENTITY-TEXT",
        personality="PERSONALITY-TEXT",
        procedures="PROCEDURES-TEXT",
        decision_framework="DECISION-TEXT",
        tools=("read", "bash"),
    )
    prompt = assemble_system_prompt(draft)
    order = [
        "## Identity",
        "You are Ada (Analyst).",
        "IDENTITY-TEXT",
        "## Personality",
        "PERSONALITY-TEXT",
        "## Working procedures",
        "PROCEDURES-TEXT",
        "## Decision framework",
        "DECISION-TEXT",
        "## Working on Marid",
        "`read`",
        "`bash`",
        "`complete`",
        "`fail`",
    ]
    positions = [prompt.index(part) for part in order]
    assert positions == sorted(positions)
    assert "`write`" not in prompt  # only its own tools
    assert "Outputs:" not in prompt


def test_empty_sections_are_left_out_and_a_step_adds_its_outputs() -> None:
    brief = StepBrief(
        "engineering",
        "REVIEW",
        ("review_verdict", "review_notes"),
        {"review_verdict": ("APPROVED", "CHANGES_REQUESTED")},
    )
    prompt = assemble_system_prompt(AgentDraft(name="Ada", tools=()), step=brief)
    assert "## Personality" not in prompt and "## Decision framework" not in prompt
    assert "no tools besides finishing" in prompt
    assert "step REVIEW of the pipeline “engineering”" in prompt
    assert "\nOutputs: review_verdict, review_notes\n" in prompt
    assert "\nRouting values for review_verdict: APPROVED, CHANGES_REQUESTED\n" in prompt
