"""Which model an agent runs on: a ``provider/model`` string, checked for its shape here and, through
:func:`is_known_model`, against the workspace's model catalogue (``app/llm``): the models its providers
can actually be called for. Both take the workspace's tenant session, in the caller's transaction.
"""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

from app.llm import service as llm

MODEL_MAX = 200
# provider: a lower-case name ("openai", "anthropic", "openrouter", "my-vllm"); model: the provider's own id,
# which may itself hold slashes ("openrouter/anthropic/claude-sonnet-4"), dots, colons and the like.
MODEL_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}/[A-Za-z0-9][A-Za-z0-9_.:@+/-]*")
MODEL_FORMAT = "Write the model as provider/model, e.g. “openai/gpt-4.1” or “anthropic/claude-sonnet-4-5”."


def model_format_problem(model: str) -> str | None:
    """Why ``model`` is not a well-formed ``provider/model`` string; None when it is."""
    if len(model) > MODEL_MAX:
        return f"A model is at most {MODEL_MAX} characters."
    if not MODEL_PATTERN.fullmatch(model) or model.endswith("/") or "//" in model:
        return MODEL_FORMAT
    return None


async def is_known_model(session: AsyncSession, model: str) -> bool:
    """Whether ``model`` is a model of this workspace's providers (in its catalogue)."""
    return await llm.known_model(session, model)


async def known_models(session: AsyncSession) -> list[str]:
    """The workspace's models, offered as suggestions on the agent form."""
    return await llm.model_strings(session)
