"""``marid worker`` with the test jobs added to the domains' jobs: ``python -m tests.worker.launch short long``.

Everything else is the production worker (``worker.run.run``): same settings, context, limits and signals.
"""

from __future__ import annotations

import sys

from app.queues import Queue
from tests.worker import jobs
from worker.run import run
from worker.settings import DOMAINS

if __name__ == "__main__":
    sys.exit(run([Queue(name) for name in sys.argv[1:]], domains=(*DOMAINS, jobs)))
