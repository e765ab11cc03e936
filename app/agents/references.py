"""What refers to an agent, so that deleting it can be refused while something still needs it.

HOOK for later domains (pipeline runs, project boards, pulse routines, chat sessions): each adds a query here
that names what still uses the agent. Secret grants are not listed: they belong to the agent and go with it.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession


async def agent_references(session: AsyncSession, agent_id: str) -> list[str]:
    """What still uses the agent, each as a phrase for the refusal ("2 running pipeline runs"); empty if nothing."""
    return []
