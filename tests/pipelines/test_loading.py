"""Reading pipeline YAML: DjinnBot's format loads unchanged, the starters validate, hostile input is refused."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.pipelines import PipelineInvalid, Pos, load_pipeline, load_valid_pipeline
from app.pipelines.source import MAX_BYTES, plain, read_yaml
from app.pipelines.starters import STARTER_AGENT_IDS, load_starter, starter_ids, starter_source

FIXTURES = Path(__file__).parent / "fixtures"


def test_a_djinnbot_format_file_loads_unchanged_with_every_field() -> None:
    result = load_pipeline((FIXTURES / "djinnbot_format.yml").read_text())
    assert result.problems == ()
    pipeline = result.pipeline
    assert pipeline is not None
    assert (pipeline.id, pipeline.name, pipeline.version) == (
        "dependency-upgrade",
        "Dependency Upgrade Pipeline",
        "1.2.0",
    )
    assert pipeline.description and pipeline.description.startswith("Audit outdated")

    d = pipeline.defaults
    assert d.model == "openrouter/example/general-model"
    assert d.tools == ("read", "write", "bash")
    # DjinnBot's defaults accept the legacy "timeout" as timeoutSeconds.
    assert (d.max_retries, d.timeout_seconds, d.max_turns, d.max_output_tokens, d.temperature) == (
        2,
        1800,
        120,
        16000,
        0.3,
    )
    assert d.where("timeoutSeconds") == Pos(12, 12)

    tobias = pipeline.agent("tobias")
    assert tobias is not None
    assert tobias.persona == "docs/personas/tobias.md"
    assert tobias.model == "openrouter/example/coding-model"
    assert tobias.tools == ("read", "write", "edit", "bash", "grep", "find", "ls")
    assert [a.id for a in pipeline.agents] == ["mara", "tobias", "ines", "kenji"]

    audit, plan, upgrade, check, release = pipeline.steps
    assert (audit.type, audit.description, audit.timeout_seconds, audit.on_complete) == (
        "standard",
        "List outdated dependencies and what upgrading each would risk.",
        900,
        "PLAN",
    )
    assert audit.input.startswith("Repository task: {{task_description}}\n{% if human_context %}\n")
    assert plan.model == "openrouter/example/planning-model"
    assert (plan.max_output_tokens, plan.temperature, plan.output_method) == (8000, 0.1, "response_format")
    schema = plan.output_schema
    assert schema is not None and (schema.name, schema.strict) == ("upgrade_plan", True)
    assert schema.schema["properties"]["upgrades"]["items"]["properties"]["risk"]["enum"] == ["low", "medium", "high"]

    assert upgrade.type == "loop" and upgrade.is_loop and upgrade.loop is not None
    assert (upgrade.loop.over, upgrade.loop.on_each_complete, upgrade.loop.on_all_complete) == (
        "upgrade_plan_json",
        "CHECK",
        "RELEASE",
    )
    assert (upgrade.max_retries, upgrade.max_turns, upgrade.timeout_seconds) == (3, 200, 3600)

    assert [b.value for b in check.on_result] == ["PASS", "FAIL", "FLAKY"]
    passed, failed, flaky = check.on_result
    assert passed.continue_loop and passed.moves
    assert failed.goto == "UPGRADE"
    assert (flaky.retry, flaky.max_retries) == (True, 1)
    assert check.outputs == ("check_result", "check_notes")

    shipped, held = release.on_result
    assert shipped.notify is not None and (shipped.notify.agent, shipped.notify.message) == (
        "mara",
        "The dependency upgrade release is out.",
    )
    assert not shipped.moves
    assert held.retry and held.notify is not None and held.notify.agent == "tobias"
    # Positions are kept for every node: the goto value of CHECK's FAIL branch.
    assert failed.where("goto") == Pos(119, 15)
    assert check.pos == Pos(108, 5)


def test_the_starters_validate_cleanly_and_use_the_starter_roster() -> None:
    assert starter_ids() == ("bugfix", "engineering", "feature", "planning")
    for starter in starter_ids():
        result = load_pipeline(starter_source(starter))
        assert result.problems == (), (starter, [str(p) for p in result.problems])
        pipeline = load_starter(starter)
        assert pipeline.id == starter
        assert {a.id for a in pipeline.agents} <= set(STARTER_AGENT_IDS)


def test_the_engineering_starter_has_the_contract_flow() -> None:
    pipeline = load_starter("engineering")
    assert [s.id for s in pipeline.steps] == ["SPEC", "DESIGN", "UX", "IMPLEMENT", "REVIEW", "TEST", "DEPLOY"]
    implement = pipeline.step("IMPLEMENT")
    assert implement is not None and implement.loop is not None
    assert (implement.loop.over, implement.loop.on_each_complete, implement.loop.on_all_complete) == (
        "task_list_json",
        "REVIEW",
        "DEPLOY",
    )
    review, test = pipeline.step("REVIEW"), pipeline.step("TEST")
    assert review is not None and [(b.value, b.goto) for b in review.on_result] == [
        ("APPROVED", "TEST"),
        ("CHANGES_REQUESTED", "IMPLEMENT"),
    ]
    assert test is not None and [(b.value, b.continue_loop, b.goto) for b in test.on_result] == [
        ("PASS", True, None),
        ("FAIL", False, "IMPLEMENT"),
    ]


def test_the_planning_starter_is_structured_output() -> None:
    pipeline = load_starter("planning")
    breakdown = pipeline.step("BREAKDOWN")
    assert breakdown is not None and breakdown.output_schema is not None
    assert breakdown.outputs == ("task_breakdown_json",)
    assert breakdown.output_schema.schema["properties"]["tasks"]["type"] == "array"


def test_unknown_starter() -> None:
    with pytest.raises(KeyError):
        starter_source("../../etc/passwd")


def test_load_valid_pipeline_raises_with_every_problem() -> None:
    with pytest.raises(PipelineInvalid) as caught:
        load_valid_pipeline((FIXTURES / "invalid" / "duplicate_ids.yml").read_text())
    assert {p.code for p in caught.value.problems} >= {"duplicate_step", "duplicate_agent"}
    assert "17:9: error: the step id" in str(caught.value)


def test_yaml_1_2_scalars_as_djinnbot_reads_them() -> None:
    document = read_yaml("a: [on, yes, no, off, y, true, False, ~, null, '', 012, 0x1F, 0o17, .5, -.inf, 1_000, 1.0.0]")
    assert document.root is not None and not document.problems
    assert plain(document.root) == {
        "a": [
            "on",
            "yes",
            "no",
            "off",
            "y",
            True,
            False,
            None,
            None,
            "",
            12,
            31,
            15,
            0.5,
            float("-inf"),
            "1_000",
            "1.0.0",
        ]
    }


def test_numbers_in_text_fields_read_as_written() -> None:
    text = (FIXTURES / "invalid" / "unreachable.yml").read_text().replace('version: "1"', "version: 2.10")
    result = load_pipeline(text)
    assert result.pipeline is not None and result.pipeline.version == "2.10"


def test_a_billion_laughs_file_is_refused_at_once() -> None:
    laughs = ['lol: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    laughs += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 12)]
    started = time.monotonic()
    result = load_pipeline("\n".join(laughs))
    assert time.monotonic() - started < 1
    assert [p.code for p in result.problems] == ["yaml.alias"]
    assert result.pipeline is None


def test_an_over_large_file_is_refused_before_parsing() -> None:
    big = "id: x\n" + "# padding\n" * (MAX_BYTES // 10 + 1)
    for source in (big, big.encode()):
        result = load_pipeline(source)
        assert [(p.code, p.line, p.column) for p in result.problems] == [("yaml.too_large", 1, 1)]
        assert "a pipeline may be at most 262,144" in result.problems[0].message


def test_bytes_that_are_not_utf8_are_refused_with_their_place() -> None:
    result = load_pipeline(b"id: demo\nname: \xff\xfe\n")
    assert [(p.code, p.line, p.column) for p in result.problems] == [("yaml.encoding", 2, 7)]


def test_a_byte_order_mark_is_fine() -> None:
    source = "\ufeff" + (FIXTURES / "invalid" / "unreachable.yml").read_text()
    assert load_pipeline(source.encode("utf-8")).ok


def test_too_many_steps_is_an_error() -> None:
    steps = "".join(f"  - {{id: S{i}, agent: dev, input: go, onComplete: S{i + 1}}}\n" for i in range(501))
    text = f'id: big\nname: Big\nversion: "1"\nagents: [{{id: dev, name: Dev}}]\nsteps:\n{steps}'
    result = load_pipeline(text)
    assert ("range", 6, 3) in [(p.code, p.line, p.column) for p in result.errors]
    assert "the pipeline has 501 steps; at most 500 are allowed" in {p.message for p in result.errors}


def test_the_pure_python_parser_reads_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where PyYAML comes without libyaml, the pure-Python parser yields the same pipeline and problems."""
    import yaml

    from app.pipelines import source

    fixtures = [FIXTURES / "djinnbot_format.yml", *sorted((FIXTURES / "invalid").glob("*.yml"))]
    with_c = [load_pipeline(path.read_bytes()) for path in fixtures]
    monkeypatch.setattr(source, "_EventLoader", yaml.SafeLoader)
    for path, expected in zip(fixtures, with_c, strict=True):
        result = load_pipeline(path.read_bytes())
        assert result.pipeline == expected.pipeline, path.name
        if path.name not in ("syntax_error.yml",):  # libyaml words its syntax errors differently
            assert result.problems == expected.problems, path.name


def test_a_long_pipeline_loads_fast_enough_to_validate_as_you_type() -> None:
    steps = "".join(
        f"  - id: S{i}\n    agent: dev\n    input: |\n      Do {{{{task_description}}}}"
        f" {{% if out{i} %}}{{{{out{i}}}}}{{% endif %}}\n    outputs: [out{i}]\n"
        f"    onResult:\n      REDO: {{goto: S{max(i - 2, 0)}}}\n    onComplete: S{i + 1}\n"
        for i in range(499)
    )
    header = 'id: big\nname: Big\nversion: "1"\nagents: [{id: dev, name: Dev}]\nsteps:\n'
    text = header + steps + "  - {id: S499, agent: dev, input: end}\n"
    started = time.monotonic()
    result = load_pipeline(text)
    assert result.ok and result.problems == ()
    assert time.monotonic() - started < 3  # about 0.1 s on a developer machine
