"""How a step ended: what the ``result`` frame says."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from agent_runtime.protocol import truncate

Status = Literal["complete", "fail", "turn_limit", "timeout", "aborted"]


@dataclass
class Outcome:
    status: Status
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str | None = None
    error: str | None = None

    def fields(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status, "outputs": self.outputs}
        if self.summary is not None:
            data["summary"] = self.summary
        if self.error is not None:
            data["error"] = truncate(self.error)
        return data
