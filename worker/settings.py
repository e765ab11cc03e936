"""What each queue's worker runs: the jobs the domains declare for that queue, and the queue's limits.

A domain with jobs has an ``app/<domain>/jobs.py``; list it in ``DOMAINS`` (a test checks none is missing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import ModuleType
from typing import Any, TypeVar, cast

import arq
from arq.typing import WorkerCoroutine
from arq.worker import Function, func

# Every model, so foreign keys between them resolve (the outbox's refers to workspaces) as in the web process.
import app.models  # noqa: F401
from app.audit import jobs as audit_jobs
from app.llm import jobs as llm_jobs
from app.mail import jobs as mail_jobs
from app.queues import Cron, Job, Queue
from app.runs import jobs as runs_jobs
from app.sandbox import jobs as sandbox_jobs
from app.swarms import jobs as swarm_jobs
from worker import jobs as worker_jobs

T = TypeVar("T")

DOMAINS: tuple[ModuleType, ...] = (worker_jobs, mail_jobs, audit_jobs, sandbox_jobs, llm_jobs, runs_jobs, swarm_jobs)


@dataclass(frozen=True)
class WorkerSettings:
    """One queue's worker: how many jobs it runs at once and for how long each may run."""

    queue: Queue
    max_jobs: int
    job_timeout: timedelta
    # On SIGTERM, how long running jobs may finish; then they are cancelled and queued again for another worker.
    drain: timedelta
    # arq polls its queue while it has a free slot. An idle poll is one small Redis read (two with jobs running:
    # worker.arq_worker skips those in one pipelined check), so 20 ms costs ~50 tiny reads a second per queue and
    # keeps the hop through a queue short: a swarm's first tasks and an interactive step's nudges wait on it.
    poll_delay: timedelta = timedelta(milliseconds=20)
    # The compose healthcheck reads arq's health key; refresh it every minute rather than hourly.
    health_check_interval: timedelta = timedelta(minutes=1)


SHORT = WorkerSettings(
    Queue.SHORT,
    # Nudges are cheap and mostly wait on one lock or on SMTP: many at once.
    max_jobs=50,
    job_timeout=timedelta(minutes=5),
    # Long enough for a mail in flight to be sent and recorded, rather than sent again later.
    drain=timedelta(seconds=10),
)
LONG = WorkerSettings(
    Queue.LONG,
    # Each agent step supervises a sandbox: a few per worker; add workers (not slots) to run more.
    max_jobs=4,
    # An hour-long step with room to spare. A worker that dies mid-job holds it this long before arq runs it
    # again (its in-progress key outlives the timeout), so long jobs also keep their own progress in Postgres.
    job_timeout=timedelta(hours=2),
    # Nothing long finishes within a stop grace period: hand running jobs back at once.
    drain=timedelta(0),
)
WORKER_SETTINGS: dict[Queue, WorkerSettings] = {Queue.SHORT: SHORT, Queue.LONG: LONG}


def declared(domains: Sequence[ModuleType], queue: Queue) -> tuple[list[Job[..., Any]], list[Cron]]:
    """The jobs and crons the ``domains`` declare for ``queue`` (a job imported from elsewhere counts there)."""
    jobs: dict[str, Job[..., Any]] = {}
    crons: dict[str, Cron] = {}
    for module in domains:
        for value in vars(module).values():
            if isinstance(value, Job) and value.function.__module__ == module.__name__:
                _add(jobs, value.name, value)
            elif isinstance(value, Cron):
                _add(crons, value.name, value)
    return (
        [item for item in jobs.values() if item.queue is queue],
        [item for item in crons.values() if item.queue is queue],
    )


def _add(found: dict[str, T], name: str, value: T) -> None:
    if found.get(name, value) is not value:
        raise ValueError(f"two jobs are named {name!r}: arq could not tell them apart")
    found[name] = value


def _coroutine(job: Job[..., Any]) -> WorkerCoroutine:
    # arq types a job's context as a plain dict; the one it passes holds JobContext's keys.
    return cast(WorkerCoroutine, job.function)


def worker_options(settings: WorkerSettings, domains: Sequence[ModuleType] = DOMAINS) -> dict[str, Any]:
    """Keyword arguments for ``arq.Worker``: this queue's name, limits, jobs and crons."""
    jobs, crons = declared(domains, settings.queue)
    functions: list[Function] = [
        func(_coroutine(item), name=item.name, timeout=item.timeout, max_tries=item.max_tries) for item in jobs
    ]
    cron_jobs = [
        arq.cron(
            _coroutine(item.job),
            name=item.name,
            weekday=item.weekday,
            hour=item.hour,
            minute=item.minute,
            second=item.second,
            run_at_startup=item.run_at_startup,
            timeout=item.job.timeout,
        )
        for item in crons
    ]
    return {
        "functions": functions,
        "cron_jobs": cron_jobs,
        "queue_name": settings.queue.arq_name,
        "max_jobs": settings.max_jobs,
        "job_timeout": settings.job_timeout,
        "job_completion_wait": int(settings.drain.total_seconds()),
        "poll_delay": settings.poll_delay,
        "health_check_interval": settings.health_check_interval,
    }
