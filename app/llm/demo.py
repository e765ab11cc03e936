"""The demo model for new workspaces under `marid dev`: "Demo model (scripted, not an AI)", registered as a
provider the moment a workspace is made, so a new user can run agents without a key.

`marid dev` starts the scripted server (:mod:`app.llm.scripted`) and tells its processes where it is
(``MARID_DEMO_LLM_URL``, ``MARID_DEMO_LLM_KEY``); production never has it, and this does nothing there.
"""

from __future__ import annotations

import logging

from app.audit.actor import Actor
from app.audit.unit_of_work import workspace_change
from app.config import Settings
from app.db import Database
from app.live.bus import EventBus
from app.llm.service import add_demo_provider

logger = logging.getLogger("marid.llm")


async def offer_demo_model(db: Database, bus: EventBus, settings: Settings, workspace_id: str) -> None:
    """Register the demo model in a new workspace where it is available; a failure only costs the offer."""
    if not settings.demo_llm_enabled:
        return
    try:
        async with workspace_change(db, bus, workspace_id) as session:
            await add_demo_provider(session, settings, actor=Actor.system("Marid"))
    except Exception:
        logger.warning("could not register the demo model in workspace %s", workspace_id, exc_info=True)
