"""A workspace's pipelines: save (every save a new version), read, list, delete, add the starters.

Services take a tenant session of the workspace and an actor; they flush, never commit. A pipeline that does
not validate is refused with every problem at once (:class:`PipelineRefused`), changing nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.actor import Actor
from app.audit.service import record_in_workspace
from app.errors import Invalid, NotFound

__all__ = ["Checked", "Invalid", "NotFound", "PipelineRefused"]
from app.pipelines.checks import check_workspace_agents
from app.pipelines.models import PipelineRecord, PipelineVersion
from app.pipelines.problems import Problem, Severity
from app.pipelines.spec import Pipeline
from app.pipelines.starters import starter_source
from app.pipelines.validate import LoadResult, load_pipeline

MAX_NOTE = 200


class PipelineRefused(Invalid):
    """The YAML does not make a runnable pipeline; ``problems`` lists every one (line, column, message)."""

    def __init__(self, problems: tuple[Problem, ...]) -> None:
        self.problems = problems
        errors = [p for p in problems if p.severity is Severity.ERROR]
        shown = "; ".join(str(p) for p in errors[:3]) + (f" (and {len(errors) - 3} more)" if len(errors) > 3 else "")
        super().__init__({"yaml": shown or "The pipeline is not valid."})


@dataclass(frozen=True)
class Checked:
    """What the editor shows for a draft: the parse, and every problem including missing workspace agents."""

    result: LoadResult
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return self.result.pipeline is not None and not any(p.severity is Severity.ERROR for p in self.problems)

    @property
    def pipeline(self) -> Pipeline | None:
        return self.result.pipeline


def check(yaml: str, known_agents: Iterable[str]) -> Checked:
    """Parse and validate a draft, and match its agents to the workspace's (by id)."""
    result = load_pipeline(yaml)
    problems = list(result.problems)
    if result.pipeline is not None:
        problems += check_workspace_agents(result.pipeline, set(known_agents))
    return Checked(result, tuple(sorted(problems, key=lambda p: (p.line, p.column))))


async def list_pipelines(session: AsyncSession) -> list[PipelineRecord]:
    return list(await session.scalars(select(PipelineRecord).order_by(PipelineRecord.name, PipelineRecord.id)))


async def get_pipeline(session: AsyncSession, pipeline_id: str) -> PipelineRecord:
    found = await session.get(PipelineRecord, pipeline_id)
    if found is None:
        raise NotFound("No such pipeline.")
    return found


async def get_version(session: AsyncSession, pipeline_id: str, number: int | None = None) -> PipelineVersion:
    """A version of a pipeline (its current one when ``number`` is None)."""
    pipeline = await get_pipeline(session, pipeline_id)
    version = await session.get(PipelineVersion, (pipeline_id, number or pipeline.current_version))
    if version is None:
        raise NotFound("No such version of this pipeline.")
    return version


async def list_versions(session: AsyncSession, pipeline_id: str) -> list[PipelineVersion]:
    await get_pipeline(session, pipeline_id)
    rows = await session.scalars(
        select(PipelineVersion)
        .where(PipelineVersion.pipeline_id == pipeline_id)
        .order_by(PipelineVersion.number.desc())
    )
    return list(rows)


async def save_pipeline(
    session: AsyncSession,
    *,
    yaml: str,
    actor: Actor,
    known_agents: Iterable[str],
    note: str = "",
    editing: str | None = None,
) -> PipelineVersion:
    """Save ``yaml`` as the next version of its pipeline (the first one creates it).

    ``editing`` is the pipeline being edited, if any: the YAML must keep its id. Refused (every problem at
    once, nothing written) when the YAML is not a runnable pipeline of this workspace.
    """
    checked = check(yaml, known_agents)
    pipeline = checked.pipeline
    if not checked.ok or pipeline is None:
        raise PipelineRefused(checked.problems)
    if editing is not None and pipeline.id != editing:
        raise Invalid({"yaml": f"This is the pipeline “{editing}”; its id cannot change (found “{pipeline.id}”)."})
    note = " ".join(note.split())[:MAX_NOTE]
    record = await session.get(PipelineRecord, pipeline.id, with_for_update=True)
    created = record is None
    if record is None:
        record = PipelineRecord(id=pipeline.id, name=pipeline.name, description=pipeline.description or "")
        record.current_version = 0
        session.add(record)
    record.current_version += 1
    record.name, record.description = pipeline.name, pipeline.description or ""
    record.updated_at = datetime.now(UTC)
    version = PipelineVersion(
        pipeline_id=pipeline.id, number=record.current_version, yaml=yaml, created_by_label=actor.label, note=note
    )
    session.add(version)
    await session.flush()
    action = "pipeline.created" if created else "pipeline.saved"
    await record_in_workspace(
        session, action, actor, {"pipeline": pipeline.id, "name": pipeline.name, "version": version.number}
    )
    return version


async def delete_pipeline(session: AsyncSession, pipeline_id: str, actor: Actor) -> PipelineRecord:
    """Delete a pipeline and its versions; runs keep their history (they copy what they ran)."""
    record = await get_pipeline(session, pipeline_id)
    await session.delete(record)
    await session.flush()
    await record_in_workspace(session, "pipeline.deleted", actor, {"pipeline": record.id, "name": record.name})
    return record


async def add_starter(
    session: AsyncSession, starter_id: str, actor: Actor, known_agents: Iterable[str]
) -> PipelineVersion:
    """Add one of Marid's starter pipelines (refused if the workspace lacks its agents: add the roster first)."""
    try:
        source = starter_source(starter_id)
    except KeyError:
        raise NotFound("No such starter pipeline.") from None
    return await save_pipeline(session, yaml=source, actor=actor, known_agents=known_agents, note="starter")
