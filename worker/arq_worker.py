"""arq's worker, starting the jobs of one poll side by side instead of one after another.

arq starts each job id a poll returns with four Redis round trips in turn (watch, "already running?", its
score, then claim it), and the next id waits for those. Two things make that slow here:

- a swarm's first pass dispatches up to ``max_concurrent`` tasks at once: the last of 32 jobs started about
  100 ms after the first on a quiet machine;
- a task's job runs on with the next task in its slot, so long-running jobs stay in the queue's sorted set, and
  a worker with a free slot re-checks each of them on every poll (three round trips per job known to run).

So a poll first asks, in one pipelined round trip, which of its ids are already running, drops those, and
starts the rest side by side with arq's own start (each still claims its job with arq's watch/multi, so two
workers never start the same job, and the worker's job slots are counted as arq counts them).

``close`` also differs: arq cancels the jobs still running and then awaits them, and the first one that ends
cancelled makes ``close`` raise ``CancelledError`` before it has closed its Redis pool. Here a cancelled job is
how a job ends at close, and the pool is always closed.
"""

from __future__ import annotations

import asyncio
import signal

from arq.constants import in_progress_key_prefix
from arq.worker import Worker


class MaridWorker(Worker):
    async def start_jobs(self, job_ids: list[bytes]) -> None:
        if not job_ids:
            return
        async with self.pool.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.exists(in_progress_key_prefix + job_id.decode())
            running = await pipe.execute()
        waiting = [job_id for job_id, taken in zip(job_ids, running, strict=True) if not taken]
        if len(waiting) <= 1:
            await super().start_jobs(waiting)
            return
        # arq's start of one id: take a slot, claim the job (watch/multi), run it in a task of its own.
        await asyncio.gather(*(super(MaridWorker, self).start_jobs([job_id]) for job_id in waiting))

    async def close(self) -> None:
        if not self._handle_signals:
            self.handle_sig(signal.SIGUSR1)
        if not self._pool:
            return
        # arq's run_job records a job's own failure itself: what reaches here is the cancellation above.
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        await self.pool.delete(self.health_check_key)
        if self.on_shutdown:
            await self.on_shutdown(self.ctx)
        await self.pool.close(close_connection_pool=True)
        self._pool = None
