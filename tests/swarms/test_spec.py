"""The swarm request: every problem at once, cycles with their paths, limits, and the preview."""

from __future__ import annotations

from typing import Any

from app.swarms.spec import SwarmLimits, find_cycles, load_text, parse_request, preview

DEFAULTS = SwarmLimits()


def task(key: str, *deps: str, **extra: Any) -> dict[str, Any]:
    return {"key": key, "title": f"Task {key}", "execution_prompt": f"do {key}", "dependencies": list(deps), **extra}


def request(*tasks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"agent_id": "yukihiro", "tasks": list(tasks), **extra}


def codes(data: Any, limits: SwarmLimits = DEFAULTS) -> list[tuple[str, str]]:
    spec, problems = parse_request(data, limits)
    assert (spec is None) == bool(problems)
    return [(p.path, p.code) for p in problems]


def test_the_contract_example_parses_with_defaults() -> None:
    spec, problems = parse_request(
        {
            "agent_id": "yukihiro",
            "max_concurrent": 3,
            "global_timeout_seconds": 1800,
            "deviation_rules": "",
            "tasks": [
                {
                    "key": "a",
                    "title": "Scaffold API",
                    "project_id": "proj_x",
                    "task_id": "task_1",
                    "execution_prompt": "...",
                    "dependencies": [],
                    "model": None,
                    "timeout_seconds": 300,
                },
                {
                    "key": "b",
                    "title": "Add auth",
                    "project_id": "proj_x",
                    "task_id": "task_2",
                    "execution_prompt": "....",
                    "dependencies": ["a"],
                },
            ],
        }
    )
    assert problems == []
    assert spec is not None
    assert [t.key for t in spec.tasks] == ["a", "b"]
    assert spec.tasks[1].dependencies == ("a",)
    assert spec.tasks[1].timeout_seconds == 300 and spec.tasks[1].max_retries == 1


def test_camel_case_board_fields_are_accepted() -> None:
    spec, problems = parse_request(
        {
            "agentId": "finn",
            "maxConcurrent": 5,
            "globalTimeoutSeconds": 600,
            "deviationRules": "no new deps",
            "tasks": [task("a")],
        }
    )
    assert problems == [] and spec is not None
    assert (spec.agent_id, spec.max_concurrent, spec.global_timeout_seconds) == ("finn", 5, 600)
    assert spec.deviation_rules == "no new deps"


def test_every_problem_is_reported_at_once() -> None:
    found = codes(
        request(
            task("a", "a"),
            task("b", "nope"),
            task("b"),
            {"key": "c", "title": "", "execution_prompt": "", "dependencies": "a"},
            max_concurrent=0,
            global_timeout_seconds=5,
        )
    )
    assert ("tasks[0].dependencies[0]", "self_dependency") in found
    assert ("tasks[1].dependencies[0]", "unknown_dependency") in found
    assert ("tasks[2].key", "duplicate_key") in found
    assert ("tasks[3].title", "required") in found
    assert ("tasks[3].execution_prompt", "required") in found
    assert ("tasks[3].dependencies", "type") in found
    assert ("max_concurrent", "limit") in found
    assert ("global_timeout_seconds", "limit") in found


def test_each_cycle_is_named_with_its_path() -> None:
    spec, problems = parse_request(
        request(task("a", "c"), task("b", "a"), task("c", "b"), task("d"), task("x", "y"), task("y", "x"))
    )
    assert spec is None
    cycles = [p.message for p in problems if p.code == "cycle"]
    assert cycles == ["dependency cycle: a → c → b → a", "dependency cycle: x → y → x"]


def test_cycle_finder_on_a_long_chain_does_not_recurse() -> None:
    chain = {str(i): [str(i + 1)] for i in range(5000)}
    chain["5000"] = ["0"]
    (cycle,) = find_cycles(chain)
    assert len(cycle) == 5001 and cycle[0] == "0"


def test_limits_come_from_the_workspace() -> None:
    limits = SwarmLimits(max_tasks=3, max_concurrent=2)
    found = codes(request(task("a"), task("b"), task("c"), task("d"), max_concurrent=4), limits)
    assert ("tasks", "limit") in found and ("max_concurrent", "limit") in found
    assert codes(request(*(task(str(i)) for i in range(500)), max_concurrent=32)) == []
    assert ("tasks", "limit") in codes(request(*(task(str(i)) for i in range(501))))
    assert ("max_concurrent", "limit") in codes(request(task("a"), max_concurrent=33))


def test_task_fields_are_checked() -> None:
    found = codes(
        request(
            task("bad key!"),
            task("t", timeout_seconds=5),
            task("r", max_retries=-1),
            task("m", model=7),
            {"title": "no key"},
        )
    )
    assert ("tasks[0].key", "format") in found
    assert ("tasks[1].timeout_seconds", "limit") in found
    assert ("tasks[2].max_retries", "limit") in found
    assert ("tasks[3].model", "type") in found
    assert ("tasks[4].key", "required") in found


def test_shapes_that_are_not_requests() -> None:
    assert codes([1, 2]) == [("", "type")]
    assert ("tasks", "required") in codes({"agent_id": "a", "tasks": []})
    assert ("agent_id", "required") in codes({"tasks": [task("a")]})
    assert ("tasks[0]", "type") in codes(request("not a task"))  # type: ignore[arg-type]


def test_preview_of_a_diamond() -> None:
    spec, _ = parse_request(request(task("a"), task("b", "a"), task("c", "a"), task("d", "b", "c"), max_concurrent=2))
    assert spec is not None
    shown = preview(spec)
    assert (shown.total_tasks, shown.depth, shown.roots) == (4, 3, ("a",))
    assert shown.levels == {"a": 0, "b": 1, "c": 1, "d": 2}
    assert shown.critical_timeout_seconds == 900
    assert shown.warnings == ()


def test_preview_warns_about_what_is_legal_but_odd() -> None:
    spec, _ = parse_request(
        request(
            task("a", timeout_seconds=600),
            task("b", "a", timeout_seconds=600),
            task("c"),
            {**task("d"), "execution_prompt": "do a"},
            max_concurrent=10,
            global_timeout_seconds=900,
        )
    )
    assert spec is not None
    warnings = " | ".join(preview(spec).warnings)
    assert "more than the global timeout" in warnings
    assert "max_concurrent 10 adds nothing" in warnings
    assert "neither depend on nor feed another: c, d" in warnings
    assert "same execution prompt" in warnings


def test_text_as_yaml_or_json() -> None:
    data, problems = load_text("agent_id: finn\ntasks:\n  - {key: a, title: A, execution_prompt: go}\n")
    assert problems == [] and parse_request(data)[1] == []
    data, problems = load_text('{"agent_id": "finn", "tasks": [}')
    assert data is None and problems[0].code == "json" and "line 1" in problems[0].message
    data, problems = load_text("agent_id: [finn\n")
    assert data is None and problems[0].code == "yaml"
    assert load_text("  ")[1][0].code == "empty"
