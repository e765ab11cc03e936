"""The agents domain's item on a new workspace's "next steps" checklist (``app.onboarding.checklist``)."""

from __future__ import annotations

from sqlalchemy import select

from app.agents.models import Agent
from app.onboarding.checklist import Tables, register

# Done once the workspace has an agent (asked with the other items in one statement).
register("agent", select(Agent.id), tables=Tables.WORKSPACE)
