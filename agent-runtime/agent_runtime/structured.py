"""A structured-output step: one LLM call with a JSON schema and no tools. The answer's top-level fields are the
step's outputs; a step with a single output gets the whole JSON text."""

from __future__ import annotations

import json
from typing import Any

import openai

from agent_runtime.events import Events
from agent_runtime.llm import stream_turn
from agent_runtime.outcome import Outcome
from agent_runtime.prompt import system_prompt, user_message
from agent_runtime.protocol import outputs_problem
from agent_runtime.step import Step


async def run_structured(step: Step, llm: openai.AsyncOpenAI, events: Events, workspace: str) -> Outcome:
    assert step.output_schema is not None
    schema = step.output_schema
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system_prompt(step, workspace)},
        {"role": "user", "content": user_message(step)},
    ]
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": schema.name, "strict": schema.strict, "schema": schema.schema},
    }
    turn = await stream_turn(llm, step, messages, events, response_format=response_format)
    u = turn.usage
    await events.usage(u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens)
    text = turn.text.strip()
    try:
        value = json.loads(text)
    except ValueError:
        return Outcome("fail", error=f"the structured answer is not JSON: {text[:200]!r}")
    return outputs_of(step, value, text)


def outputs_of(step: Step, value: Any, text: str) -> Outcome:
    if len(step.outputs) == 1:
        return Outcome("complete", {step.outputs[0]: text})
    if not isinstance(value, dict):
        if step.outputs:
            return Outcome("fail", error="the structured answer is not an object, so it has no fields for the outputs")
        return Outcome("complete", {}, summary=text)
    missing = [name for name in step.outputs if name not in value]
    if missing:
        return Outcome("fail", error=f"the structured answer has no field for: {', '.join(missing)}")
    outputs = {str(k): v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in value.items()}
    problem = outputs_problem(outputs)
    if problem is not None:
        return Outcome("fail", error=f"the structured answer has too many or too long fields: {problem}")
    return Outcome("complete", outputs)
