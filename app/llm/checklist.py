"""The LLM domain's item on a new workspace's "next steps" checklist (``app.onboarding.checklist``)."""

from __future__ import annotations

from sqlalchemy import select

from app.llm.catalogue import DEMO_PRESET
from app.llm.models import LlmProvider
from app.onboarding.checklist import Tables, register

# A provider with a real model: the scripted demo model lets people try Marid, but is not what the item asks.
register("llm_provider", select(LlmProvider.id).where(LlmProvider.preset != DEMO_PRESET), tables=Tables.WORKSPACE)
