"""The engine's rules as pure functions: next action, loops, retries, model precedence, limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.pipelines import (
    CompleteRun,
    FailRun,
    GoTo,
    LoopItem,
    LoopItemDone,
    LoopItemsError,
    Pipeline,
    ResolvedModel,
    Retry,
    after_loop_item,
    load_valid_pipeline,
    loop_items,
    resolve_model,
    retry_context,
    route_completed_step,
    route_failed_step,
    step_limits,
)
from app.pipelines.routing import DEFAULT_MAX_TURNS, MAX_LOOP_ITEMS
from app.pipelines.starters import load_starter

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def engineering() -> Pipeline:
    return load_starter("engineering")


@pytest.fixture(scope="module")
def upgrade() -> Pipeline:
    return load_valid_pipeline((FIXTURES / "djinnbot_format.yml").read_text())


def test_on_complete_is_followed(engineering: Pipeline) -> None:
    assert route_completed_step(engineering, "SPEC", {"spec": "..."}).action == GoTo("DESIGN", "onComplete")


def test_on_result_matches_the_trimmed_upper_cased_value(engineering: Pipeline) -> None:
    route = route_completed_step(
        engineering, "REVIEW", {"review_verdict": "  changes_requested\n", "review_notes": "x"}
    )
    assert route.action == GoTo("IMPLEMENT", "goto")
    assert route.matched is not None and route.matched.output == "review_verdict"
    assert route.matched.branch.value == "CHANGES_REQUESTED"
    assert route_completed_step(engineering, "REVIEW", {"review_verdict": "Approved"}).action == GoTo("TEST", "goto")


def test_outputs_are_tried_in_order_and_the_first_match_wins(engineering: Pipeline) -> None:
    route = route_completed_step(
        engineering, "REVIEW", {"review_notes": "APPROVED", "review_verdict": "CHANGES_REQUESTED"}
    )
    assert route.action == GoTo("TEST", "goto")
    assert route.matched is not None and route.matched.output == "review_notes"


def test_no_match_without_on_complete_fails_a_middle_step(engineering: Pipeline) -> None:
    route = route_completed_step(engineering, "REVIEW", {"review_verdict": "MAYBE"})
    assert route.action == FailRun("Step REVIEW has no onComplete configured")
    assert route.matched is None


def test_the_last_step_completes_the_run() -> None:
    feature = load_starter("feature")
    assert route_completed_step(feature, "TEST", {"test_verdict": "PASS"}).action == CompleteRun()
    assert route_completed_step(feature, "TEST", {"test_verdict": "FAIL"}).action == GoTo("IMPLEMENT", "goto")


def test_continue_loop_and_loop_steps(engineering: Pipeline) -> None:
    route = route_completed_step(engineering, "TEST", {"test_verdict": "pass"})
    assert route.action == LoopItemDone(None, from_each_complete=True)
    # A loop step's onResult is never consulted: its loop decides.
    assert route_completed_step(engineering, "IMPLEMENT", {"change_summary": "APPROVED"}).action == LoopItemDone(
        "IMPLEMENT", from_each_complete=False
    )


def test_after_a_loop_item(engineering: Pipeline, upgrade: Pipeline) -> None:
    assert after_loop_item(engineering, "IMPLEMENT", from_each_complete=False, items_left=True) == GoTo(
        "REVIEW", "onEachComplete"
    )
    assert after_loop_item(engineering, "IMPLEMENT", from_each_complete=True, items_left=True) == GoTo(
        "IMPLEMENT", "next item"
    )
    assert after_loop_item(engineering, "IMPLEMENT", from_each_complete=True, items_left=False) == GoTo(
        "DEPLOY", "onAllComplete"
    )
    assert after_loop_item(upgrade, "UPGRADE", from_each_complete=True, items_left=False) == GoTo(
        "RELEASE", "onAllComplete"
    )
    assert isinstance(after_loop_item(engineering, "REVIEW", from_each_complete=True, items_left=False), FailRun)


def test_a_loop_without_exit_targets_completes_the_run() -> None:
    text = """
id: l
name: L
version: "1"
agents: [{id: dev, name: Dev}]
steps:
  - {id: PLAN, agent: dev, input: plan, outputs: [items], onComplete: WORK}
  - {id: WORK, agent: dev, input: "{{current_item}}", loop: {over: items}}
"""
    pipeline = load_valid_pipeline(text)
    assert after_loop_item(pipeline, "WORK", from_each_complete=False, items_left=True) == GoTo("WORK", "next item")
    assert after_loop_item(pipeline, "WORK", from_each_complete=False, items_left=False) == CompleteRun()


def test_result_retry_and_notify(upgrade: Pipeline, engineering: Pipeline) -> None:
    route = route_completed_step(upgrade, "CHECK", {"check_result": "FLAKY"})
    assert route.action == Retry("CHECK", 1)  # the branch's own maxRetries
    route = route_completed_step(upgrade, "RELEASE", {"release_status": "HELD"})
    assert route.action == Retry("RELEASE", 2)  # the pipeline default
    assert route.notify is not None and route.notify.agent == "tobias"
    # A branch that only notifies falls through to the default: here the end of the run.
    route = route_completed_step(upgrade, "RELEASE", {"release_status": "shipped"})
    assert route.action == CompleteRun()
    assert route.notify is not None and route.notify.message == "The dependency upgrade release is out."
    deploy = route_completed_step(engineering, "DEPLOY", {"deploy_status": "FAILED"})
    assert deploy.action == Retry("DEPLOY", 1)
    assert deploy.notify is not None and deploy.notify.agent == "software-engineer"


def test_failed_steps_retry_up_to_max_retries(engineering: Pipeline, upgrade: Pipeline) -> None:
    assert route_failed_step(engineering, "SPEC", 0, "boom").action == Retry("SPEC", 2)
    assert route_failed_step(engineering, "SPEC", 1, "boom").action == Retry("SPEC", 2)
    assert route_failed_step(engineering, "SPEC", 2, "boom").action == FailRun("Step SPEC failed after 2 retries: boom")
    assert route_failed_step(upgrade, "UPGRADE", 2, "x").action == Retry("UPGRADE", 3)  # the step's own maxRetries
    assert retry_context("ctx", 1, 3, "timed out") == "ctx\n\n[RETRY 1/3] Previous attempt failed: timed out"
    assert retry_context(None, 2, 3, "x") == "\n\n[RETRY 2/3] Previous attempt failed: x"


def test_unknown_steps_fail_rather_than_hang(engineering: Pipeline) -> None:
    assert isinstance(route_completed_step(engineering, "NOPE", {}).action, FailRun)
    assert isinstance(route_failed_step(engineering, "NOPE", 0, "x").action, FailRun)


def test_loop_items_from_a_json_array() -> None:
    items = loop_items("IMPLEMENT", "tasks", '["write docs", {"title": "add API", "details": "v1"}, 3]')
    assert items == (
        LoopItem("IMPLEMENT_item_0", 0, "write docs"),
        LoopItem("IMPLEMENT_item_1", 1, '{"title": "add API", "details": "v1"}'),
        LoopItem("IMPLEMENT_item_2", 2, "3"),
    )
    # Structured output is an object at the top: a single array inside it is the list.
    wrapped = loop_items("IMPLEMENT", "task_breakdown_json", '{"tasks": [{"title": "a"}, {"title": "b"}]}')
    assert [i.data for i in wrapped] == ['{"title": "a"}', '{"title": "b"}']
    assert loop_items("S", "x", "[]") == ()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "Loop variable tasks not found"),
        ("  ", "Loop variable tasks not found"),
        ("not json", "Loop variable tasks is not a valid JSON array"),
        ('{"a": [1], "b": [2]}', "Loop variable tasks is not a valid JSON array"),
        ('"just text"', "Loop variable tasks is not a valid JSON array"),
        (str(list(range(MAX_LOOP_ITEMS + 1))), f"has {MAX_LOOP_ITEMS + 1} items; a loop may have at most"),
    ],
)
def test_loop_items_refuse_what_is_not_a_list(value: str | None, message: str) -> None:
    with pytest.raises(LoopItemsError, match=message):
        loop_items("IMPLEMENT", "tasks", value)


def test_model_precedence(upgrade: Pipeline) -> None:
    def model(step: str, **kwargs: str | None) -> ResolvedModel:
        return resolve_model(upgrade, step, platform_default="platform/default", **kwargs)

    assert model("PLAN", run_override="run/model") == ResolvedModel("run/model", "run")
    assert model("PLAN", workspace_agent_model="ws/model") == ResolvedModel("openrouter/example/planning-model", "step")
    assert model("UPGRADE") == ResolvedModel("openrouter/example/coding-model", "pipeline agent")
    assert model("CHECK", run_override="  ") == ResolvedModel("openrouter/example/general-model", "pipeline defaults")

    bare = load_starter("bugfix")  # no models anywhere in the starter
    assert resolve_model(bare, "FIX", platform_default="p", workspace_agent_model="ws/model") == ResolvedModel(
        "ws/model", "workspace agent"
    )
    assert resolve_model(bare, "FIX", platform_default="p") == ResolvedModel("p", "platform")


def test_step_limits_fall_back_to_defaults_then_the_contract(upgrade: Pipeline) -> None:
    audit, plan, step = upgrade.step("AUDIT"), upgrade.step("PLAN"), upgrade.step("UPGRADE")
    assert audit is not None and plan is not None and step is not None
    limits = step_limits(upgrade, audit)
    assert (limits.timeout_seconds, limits.max_retries, limits.max_turns) == (900, 2, 120)
    assert (limits.max_output_tokens, limits.temperature) == (16000, 0.3)
    assert limits.tools == ("read", "write", "bash", "web_search")  # the pipeline agent's tools
    limits = step_limits(upgrade, step)
    assert (limits.timeout_seconds, limits.max_retries, limits.max_turns) == (3600, 3, 200)
    limits = step_limits(upgrade, plan)
    assert (limits.timeout_seconds, limits.max_output_tokens, limits.temperature) == (1800, 8000, 0.1)

    bare = load_starter("bugfix")
    fix = bare.step("FIX")
    assert fix is not None
    no_defaults = Pipeline(id="x", name="x", version="1", agents=bare.agents, steps=(fix,))
    limits = step_limits(no_defaults, fix)
    assert (limits.timeout_seconds, limits.max_retries, limits.max_turns) == (300, 3, DEFAULT_MAX_TURNS)
    assert (limits.max_output_tokens, limits.temperature, limits.tools) == (None, None, None)
