# ruff: noqa: E501  (the table below reads best as one case per line)
"""Every class of validation problem, each with a small malformed pipeline file (fixtures/invalid/).

Each case names the problem code, its severity, the line and column it must point at (1-based, as an editor
shows them) and words the message must contain.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.pipelines import Problem, Severity, check_workspace_agents, load_pipeline

INVALID = Path(__file__).parent / "fixtures" / "invalid"
E, W = Severity.ERROR, Severity.WARNING

# (fixture, code, severity, line, column, words in the message)
CASES = [
    # The YAML itself.
    ("syntax_error.yml", "yaml.syntax", E, 6, 1, "expected ',' or '}'"),
    ("tab_indent.yml", "yaml.syntax", E, 5, 1, "a tab character; indent YAML with spaces"),
    ("two_documents.yml", "yaml.documents", E, 3, 1, "the file holds more than one YAML document"),
    ("alias_bomb.yml", "yaml.alias", E, 4, 4, "YAML anchors (&name) are not allowed"),
    ("too_deep.yml", "yaml.depth", E, 2, 55, "nested more than 48 deep"),
    ("empty.yml", "yaml.empty", E, 1, 1, "the pipeline is empty"),
    ("duplicate_key.yml", "yaml.duplicate_key", E, 10, 5, "the key 'input' appears twice in this mapping (first on line 9)"),
    ("python_tag.yml", "yaml.tag", E, 9, 12, "the YAML tag !!python/object:os.system is not allowed"),
    ("complex_key.yml", "yaml.key", E, 4, 3, "a mapping key must be plain text"),
    # Types.
    ("not_a_mapping.yml", "type", E, 1, 1, "a pipeline file must be a mapping (key: value lines), not a list"),
    ("wrong_types.yml", "type", E, 5, 15, '"maxRetries" of "defaults" must be a whole number, not text'),
    ("wrong_types.yml", "type", E, 6, 10, '"tools" of "defaults" must be a list, not text'),
    ("wrong_types.yml", "type", E, 8, 40, 'item 2 of "tools" of agent "dev" must be text, not a mapping'),
    ("wrong_types.yml", "type", E, 12, 12, '"input" of step "A" must be text, not a list'),
    ("wrong_types.yml", "type", E, 13, 14, '"outputs" of step "A" must be a list, not text'),
    ("wrong_types.yml", "type", E, 14, 15, 'onResult of step "A" must be a mapping'),
    ("wrong_types.yml", "type", E, 15, 11, 'the loop of step "A" must be a mapping'),
    ("wrong_types.yml", "type", E, 16, 5, "step steps[1] must be a mapping (key: value lines), not text"),
    ("out_of_range.yml", "type", E, 17, 22, '"maxOutputTokens" of step "A" must be a whole number, not a number (2.5)'),
    # Required fields.
    ("missing_required.yml", "required", E, 1, 1, 'the pipeline is missing the required field "id"'),
    ("missing_required.yml", "required", E, 1, 1, 'the pipeline is missing the required field "version"'),
    ("missing_required.yml", "required", E, 3, 5, 'agent agents[0] is missing the required field "id"'),
    ("missing_required.yml", "required", E, 5, 5, 'step "A" is missing the required field "agent"'),
    ("missing_required.yml", "required", E, 9, 11, '"input" of step "B" is empty; it is required'),
    ("missing_required.yml", "required", E, 10, 11, 'the loop of step "B" is missing the required field "over"'),
    ("missing_required.yml", "required", E, 13, 17, 'notify of onResult DONE of step "B" is missing the required field "message"'),
    ("missing_required.yml", "required", E, 15, 7, 'the outputSchema of step "B" is missing the required field "name"'),
    ("missing_required.yml", "required", E, 15, 7, 'the outputSchema of step "B" is missing the required field "schema"'),
    ("result_actions.yml", "required", E, 15, 7, 'an onResult value of step "A" is empty'),
    # Unknown and ignored fields: warnings, as DjinnBot ignores them too.
    ("unknown_fields.yml", "unknown_field", W, 4, 1, 'the pipeline has an unknown field "owner", which is ignored'),
    ("unknown_fields.yml", "unknown_field", W, 13, 5, 'unknown field "onCompelte", which is ignored; did you mean "onComplete"?'),
    ("unknown_fields.yml", "unknown_field", W, 14, 5, 'unknown field "timeout", which is ignored; did you mean "timeoutSeconds"?'),
    ("unknown_fields.yml", "ignored_field", W, 8, 5, '"thinkingLevel" of agent "dev" is ignored'),
    ("missing_required.yml", "ignored_field", W, 12, 7, 'onResult of loop step "B" is ignored'),
    ("result_actions.yml", "ignored_field", W, 16, 27, '"maxRetries" of onResult LATER of step "A" only counts with "retry: true"'),
    ("schema_outputs_mismatch.yml", "ignored_field", W, 30, 19, 'outputMethod of step "PLAIN" only applies to a step with an outputSchema'),
    # Values out of range.
    ("out_of_range.yml", "range", E, 5, 15, '"maxRetries" of "defaults" is 50; it must be between 0 and 10'),
    ("out_of_range.yml", "range", E, 6, 12, '"timeout" of "defaults" is 0; it must be between 1 and 86400'),
    ("out_of_range.yml", "range", E, 7, 16, '"temperature" of "defaults" is 3.5; it must be between 0 and 2'),
    ("out_of_range.yml", "range", E, 14, 17, '"maxRetries" of step "A" is -1; it must be between 0 and 10'),
    ("out_of_range.yml", "range", E, 15, 21, '"timeoutSeconds" of step "A" is 100000; it must be between 1 and 86400'),
    ("out_of_range.yml", "range", E, 16, 15, '"maxTurns" of step "A" is 0; it must be between 1 and 1000'),
    ("out_of_range.yml", "range", E, 19, 40, '"maxRetries" of onResult RETRY of step "A" is 11'),
    # Ids and names.
    ("bad_ids.yml", "invalid_id", E, 1, 5, '"my pipeline" is not a valid pipeline id'),
    ("bad_ids.yml", "invalid_id", E, 5, 10, '"dev/ops" is not a valid agent id'),
    ("bad_ids.yml", "invalid_id", E, 7, 9, '"step one" is not a valid step id'),
    ("bad_ids.yml", "invalid_output", E, 10, 26, 'the output name "bad-name" of step "step one" must be letters, digits and'),
    ("bad_ids.yml", "duplicate_output", E, 10, 38, 'step "step one" declares the output "good_name" twice'),
    ("duplicate_ids.yml", "duplicate_step", E, 17, 9, 'the step id "A" is used twice (first on line 9)'),
    ("duplicate_ids.yml", "duplicate_agent", E, 7, 10, 'the agent id "dev" is used twice (first on line 5)'),
    # Enumerations and step shapes.
    ("bad_choices.yml", "choice", E, 9, 11, '"type" of step "A" is "parallel"; it must be "standard" or "loop"'),
    ("bad_choices.yml", "choice", E, 11, 19, '"outputMethod" of step "A" is "json_mode"'),
    ("bad_choices.yml", "loop_missing", E, 15, 11, 'step "B" has "type: loop" but no "loop" block'),
    ("bad_choices.yml", "loop_type", W, 20, 11, 'step "C" says "type: standard" but has a loop block'),
    ("result_actions.yml", "conflicting_actions", E, 12, 13, 'onResult PASS of step "A" combines goto and retry'),
    ("result_actions.yml", "shadowed_result", W, 13, 7, 'onResult "pass" of step "A" matches the same values as "PASS"'),
    ("result_actions.yml", "empty_action", W, 14, 16, "onResult NOTHING of step \"A\" does nothing"),
    ("no_next_step.yml", "no_next_step", E, 7, 5, 'step "A" is not the last step and has no onComplete or onResult'),
    # References.
    ("unknown_references.yml", "unknown_agent", E, 8, 12, 'step "BUILD" is run by agent "develper", which is not declared under "agents" (did you mean "developer"?)'),
    ("missing_required.yml", "unknown_agent", E, 8, 12, 'step "B" is run by agent "dev", which is not declared'),
    ("unknown_references.yml", "unknown_step", E, 11, 17, 'onComplete of step "BUILD" goes to "TSET", which is not a step of this pipeline (did you mean "TEST"?)'),
    ("unknown_references.yml", "unknown_step", E, 15, 41, 'loop.onEachComplete of step "LOOP" goes to "CHEK"'),
    ("unknown_references.yml", "unknown_step", E, 15, 62, 'loop.onAllComplete of step "LOOP" goes to "SHIP"'),
    ("unknown_references.yml", "unknown_step", E, 22, 15, 'onResult FAIL of step "TEST" goes to "BUIDL"'),
    ("unknown_references.yml", "unknown_notify_agent", E, 23, 25, 'onResult FAIL of step "TEST" notifies agent "qa", which is not declared'),
    # The graph.
    ("continue_outside_loop.yml", "continue_outside_loop", E, 12, 28, "says continueLoop, but no loop's onEachComplete leads to this step"),
    ("loop_over_not_output.yml", "loop_over", E, 11, 18, 'goes over "task_list", but only "PLAN" outputs it, and it never runs before this loop'),
    ("loop_over_not_output.yml", "loop_over", E, 20, 18, 'goes over "no_such_output", but no step declares it among its outputs'),
    ("bad_choices.yml", "loop_over", E, 23, 18, "only the loop step itself outputs it"),
    ("loop_never_continues.yml", "loop_never_continues", W, 17, 23, 'loop step "BUILD" hands over to "REVIEW", but nothing from there leads back to it'),
    ("unreachable.yml", "unreachable", W, 11, 5, 'step "ON_DEMAND" can never run: no path leads to it from the first step "A"'),
    ("cycle_without_exit.yml", "cycle_without_exit", E, 11, 5, 'steps "WRITE", "EDIT" form a cycle with no way out to the end of the run'),
    ("cycle_without_exit.yml", "cycle_without_exit", E, 23, 5, 'step "SPIN" leads only back to itself'),
    # Structured output.
    ("invalid_output_schema.yml", "output_schema", E, 14, 15, "not a valid JSON Schema at type: 'objekt' is not valid"),
    ("invalid_output_schema.yml", "output_schema", E, 18, 23, "at properties/tasks/minItems: -1 is less than the minimum of 0"),
    ("schema_outputs_mismatch.yml", "schema_outputs", E, 10, 14, 'output "feedback" of step "CHECK" is not a top-level property of its outputSchema'),
    ("schema_outputs_mismatch.yml", "schema_outputs", W, 17, 18, 'the outputSchema property "notes" of step "CHECK" is not among its outputs'),
    ("schema_outputs_mismatch.yml", "schema_outputs", E, 23, 7, 'step "EMPTY" has an outputSchema but declares no outputs'),
    # Templates.
    ("template_errors.yml", "template_syntax", E, 11, 7, "{% if human_context %} is never closed with {% endif %}"),
    ("template_errors.yml", "template_syntax", E, 17, 18, "{% endif %} without a {% if %} before it"),
    ("template_errors.yml", "template_variable", W, 23, 15, 'uses "reveiw_notes", which no step outputs and the run does not provide'),
    ("template_errors.yml", "template_tag", W, 24, 7, "{% for item in items %} in the input of step \"C\" is not a template tag here"),
]  # fmt: skip


def _problems(name: str) -> tuple[Problem, ...]:
    return load_pipeline((INVALID / name).read_bytes()).problems


@pytest.mark.parametrize(("fixture", "code", "severity", "line", "column", "words"), CASES)
def test_problem_is_reported_at_its_place(
    fixture: str, code: str, severity: Severity, line: int, column: int, words: str
) -> None:
    problems = _problems(fixture)
    found = [p for p in problems if p.code == code and words in p.message]
    assert found, f"no {code!r} containing {words!r} in:\n" + "\n".join(str(p) for p in problems)
    assert [(p.severity, p.line, p.column) for p in found] == [(severity, line, column)]


def test_every_fixture_is_exercised() -> None:
    fixtures = {p.name for p in INVALID.glob("*.yml")} - {"workspace_agents.yml"}
    assert fixtures == {case[0] for case in CASES}


@pytest.mark.parametrize("fixture", sorted(p.name for p in INVALID.glob("*.yml")))
def test_problems_come_sorted_and_are_all_reported_at_once(fixture: str) -> None:
    problems = _problems(fixture)
    assert list(problems) == sorted(
        problems, key=lambda p: (p.line, p.column, p.severity != Severity.ERROR, p.code, p.message)
    )
    expected = sum(1 for case in CASES if case[0] == fixture)
    assert len(problems) >= expected


def test_an_invalid_file_still_parses_far_enough_to_draw() -> None:
    result = load_pipeline((INVALID / "unknown_references.yml").read_bytes())
    assert not result.ok
    assert result.pipeline is not None
    assert [s.id for s in result.pipeline.steps] == ["BUILD", "LOOP", "TEST"]


def test_warnings_alone_leave_a_pipeline_runnable() -> None:
    result = load_pipeline((INVALID / "unreachable.yml").read_bytes())
    assert result.ok
    assert [p.code for p in result.warnings] == ["unreachable"]
    assert result.errors == ()


def test_agents_missing_from_the_workspace_are_errors_at_the_declaration() -> None:
    result = load_pipeline((INVALID / "workspace_agents.yml").read_bytes())
    assert result.ok and result.pipeline is not None
    problems = check_workspace_agents(result.pipeline, {"architect", "software-engineer"})
    assert [(p.code, p.severity, p.line, p.column, p.path) for p in problems] == [
        ("workspace_agent", E, 6, 10, "agents[1].id")
    ]
    assert problems[0].message == (
        'agent "finn" is not an agent of this workspace (it runs DESIGN); create it or change the id'
    )
    assert check_workspace_agents(result.pipeline, {"architect", "finn"}) == []
