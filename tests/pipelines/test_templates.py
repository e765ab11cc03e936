"""Step input templates: substitution, conditionals, errors; never code, never re-expansion."""

from __future__ import annotations

import pytest

from app.pipelines import BUILTIN_VARIABLES, TemplateSyntaxError, parse_template, render_template


def test_substitution_as_djinnbot_does_it() -> None:
    assert render_template("Build {{task_description}} for {{project_name}}.", {"task_description": "X"}) == (
        "Build X for ."
    )
    # Spaces inside the braces are allowed too; names with other characters stay literal text.
    assert render_template("{{ a }} {{a.b}} {{ a b }} {a}", {"a": "1"}) == "1 {{a.b}} {{ a b }} {a}"


def test_conditionals_keep_or_drop_their_block() -> None:
    text = "A{% if notes %}\nNotes: {{notes}}{% endif %}B"
    assert render_template(text, {"notes": "fix it"}) == "A\nNotes: fix itB"
    assert render_template(text, {"notes": "  \n"}) == "AB"  # blank is false, as in DjinnBot
    assert render_template(text, {}) == "AB"
    assert render_template("{%if x%}yes{%endif%}", {"x": "1"}) == "yes"


def test_conditionals_nest_and_have_an_else() -> None:
    text = "{% if a %}[a{% if b %} and b{% else %} not b{% endif %}]{% else %}none{% endif %}"
    assert render_template(text, {"a": "1", "b": "1"}) == "[a and b]"
    assert render_template(text, {"a": "1"}) == "[a not b]"
    assert render_template(text, {"b": "1"}) == "none"


def test_values_are_never_expanded_again() -> None:
    values = {"review": "{{secret}} {% if secret %}leak{% endif %}", "secret": "s3cr3t"}
    assert render_template("Review: {{review}}", values) == "Review: {{secret}} {% if secret %}leak{% endif %}"


def test_it_is_not_jinja() -> None:
    text = "{{ ''.__class__ }} {% for x in y %}{{x}}{% endfor %} {% set a = 1 %}"
    template = parse_template(text)
    assert [t.text for t in template.unknown_tags] == ["{% for x in y %}", "{% endfor %}", "{% set a = 1 %}"]
    assert template.render({"x": "X"}) == "{{ ''.__class__ }} {% for x in y %}X{% endfor %} {% set a = 1 %}"


@pytest.mark.parametrize(
    ("text", "message", "offset"),
    [
        ("a {% if x %} b", "{% if x %} is never closed with {% endif %}", 2),
        ("a {% if x %}{% if y %}{% endif %}", "{% if x %} is never closed with {% endif %}", 2),
        ("a {% endif %}", "{% endif %} without a {% if %} before it", 2),
        ("{% else %}", "{% else %} without a {% if %} before it", 0),
        ("{% if x %}1{% else %}2{% else %}3{% endif %}", "a second {% else %} in the same {% if %}", 22),
        ("{% if %}x{% endif %}", "{% if %} takes exactly one variable name", 0),
        ("{% if a b %}x{% endif %}", "{% if %} takes exactly one variable name", 0),
    ],
)
def test_unbalanced_blocks_are_syntax_errors(text: str, message: str, offset: int) -> None:
    with pytest.raises(TemplateSyntaxError) as caught:
        render_template(text, {})
    assert caught.value.message.startswith(message)
    assert caught.value.offset == offset


def test_variables_in_order_of_use() -> None:
    template = parse_template("{{a}} {% if b %}{{c}}{% else %}{{d}}{% endif %} {{a}}")
    assert [v.name for v in template.variables()] == ["a", "b", "c", "d", "a"]


def test_the_contract_variables_are_built_in() -> None:
    assert {
        "task_description",
        "human_context",
        "project_name",
        "project_id",
        "project_vision",
        "additional_context",
        "current_item",
        "completed_items",
        "progress_file",
    } <= BUILTIN_VARIABLES
