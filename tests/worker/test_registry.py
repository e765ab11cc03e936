"""The job registry: each job runs on its own queue's workers, and enqueueing the function reaches that queue."""

from __future__ import annotations

import types
from datetime import timedelta
from pathlib import Path

import pytest
from arq.jobs import Job as ArqJob
from redis.asyncio import Redis

import app
from app.mail import jobs as mail_jobs
from app.mail.jobs import deliver_mail
from app.queues import Enqueuer, JobContext, Queue, job
from tests.worker import jobs as test_jobs
from tests.worker.jobs import long_note, short_note
from worker.settings import DOMAINS, LONG, SHORT, declared, worker_options

ROOT = Path(app.__file__).parent


def _names(options: dict[str, object]) -> set[str]:
    functions = options["functions"]
    crons = options["cron_jobs"]
    assert isinstance(functions, list) and isinstance(crons, list)
    return {item.name for item in functions} | {item.name for item in crons}


def test_each_queue_worker_runs_only_its_own_jobs() -> None:
    short = _names(worker_options(SHORT))
    long = _names(worker_options(LONG))
    assert {"app.mail.jobs.deliver_mail", "cron:app.mail.jobs.deliver_mail", "worker.jobs.ping_short"} <= short
    assert long == {"worker.jobs.ping_long", "app.runs.jobs.execute_step"}
    domains = (*DOMAINS, test_jobs)
    assert short_note.name in _names(worker_options(SHORT, domains)) - _names(worker_options(LONG, domains))
    assert long_note.name in _names(worker_options(LONG, domains)) - _names(worker_options(SHORT, domains))


def test_every_domain_with_jobs_is_collected() -> None:
    modules = {".".join(path.relative_to(ROOT.parent).with_suffix("").parts) for path in ROOT.rglob("jobs.py")}
    assert modules == {module.__name__ for module in DOMAINS if module.__name__.startswith("app.")}
    assert mail_jobs in DOMAINS


def test_a_job_imported_into_another_domain_is_still_one_job() -> None:
    other = types.ModuleType("app.other.jobs")
    other.deliver_mail = deliver_mail  # type: ignore[attr-defined]
    jobs, crons = declared((*DOMAINS, other), Queue.SHORT)
    assert [item.name for item in jobs].count(deliver_mail.name) == 1
    assert [item.name for item in crons].count("cron:app.mail.jobs.deliver_mail") == 1


def test_two_jobs_of_one_name_are_refused() -> None:
    async def twin(ctx: JobContext) -> None:
        return None

    module = types.ModuleType(__name__)
    module.a = job(Queue.SHORT, name="twin")(twin)  # type: ignore[attr-defined]
    module.b = job(Queue.LONG, name="twin")(twin)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="two jobs are named 'twin'"):
        declared([module], Queue.SHORT)


async def test_a_job_is_called_like_its_function(redis: Redis, worker_redis_url: str) -> None:
    client = Redis.from_url(worker_redis_url)
    try:
        ctx = {"redis": client, "queue": Queue.LONG}
        await long_note(ctx, "called")  # type: ignore[arg-type]
    finally:
        await client.aclose()
    assert await redis.lrange("called", 0, -1) == ["started on long", "finished on long"]


async def _queued(redis: Redis, queue: Queue) -> list[str]:
    return list(await redis.zrange(queue.arq_name, 0, -1))


async def test_enqueueing_a_function_reaches_its_queue(redis: Redis, jobs: Enqueuer, worker_redis_url: str) -> None:
    mail = await jobs.enqueue(deliver_mail)
    note = await jobs.enqueue(long_note, "note", seconds=1.5)
    assert mail is not None and note is not None
    assert await _queued(redis, Queue.SHORT) == [mail]
    assert await _queued(redis, Queue.LONG) == [note]
    # What a worker will read: the job's own name and arguments.
    raw = Redis.from_url(worker_redis_url)  # arq's pickles are bytes
    try:
        definition = await ArqJob(note, raw, _queue_name=Queue.LONG.arq_name).info()
    finally:
        await raw.aclose()
    assert definition is not None
    assert (definition.function, definition.args, definition.kwargs) == (long_note.name, ("note",), {"seconds": 1.5})


async def test_a_job_id_is_queued_once_and_a_deferred_job_waits(redis: Redis, jobs: Enqueuer) -> None:
    step = short_note.with_options(job_id="step-1")
    assert await jobs.enqueue(step, "once") == "step-1"
    assert await jobs.enqueue(step, "once") is None
    assert await _queued(redis, Queue.SHORT) == ["step-1"]

    later = await jobs.enqueue(short_note.with_options(defer_by=timedelta(minutes=5)), "later")
    assert later is not None
    score = await redis.zscore(Queue.SHORT.arq_name, later)
    assert score is not None and score > (await redis.time())[0] * 1000 + 4 * 60 * 1000
