"""The system prompt of a step: the platform's prompt (the persona, assembled outside), how to finish, and the
machine-readable convention lines (``Outputs: a, b``, ``Routing values for a: X, Y``) that the pipeline engine and
the demo model read."""

from __future__ import annotations

from agent_runtime.step import Step


def convention_lines(step: Step) -> list[str]:
    lines = [f"Outputs: {', '.join(step.outputs)}"] if step.outputs else []
    lines += [f"Routing values for {name}: {', '.join(values)}" for name, values in step.routing.items() if values]
    return lines


def system_prompt(step: Step, workspace: str) -> str:
    if step.output_schema is not None:
        how = (
            "## This step\n\n"
            "Answer with one JSON value that follows the schema you are given, and nothing else; its top-level "
            "fields are the step's outputs."
        )
    else:
        how = (
            "## This step\n\n"
            f"You work in the workspace folder {workspace}; the file tools take paths relative to it. When the work "
            "is done, call `complete` with a value for every output and a short summary. If it cannot be done, call "
            "`fail` with the reason. Either call ends the step."
        )
    parts = [p for p in (step.system_prompt.strip(), how, "\n".join(convention_lines(step))) if p]
    return "\n\n".join(parts)


def user_message(step: Step) -> str:
    return step.input.strip() or "(This step has no input: do what your instructions say.)"
