"""Private PostgreSQL and Redis servers for ``marid dev`` and the test suite.

Each server runs as a child process (never daemonized) with ``PR_SET_PDEATHSIG``, so it dies with its parent
even on SIGKILL: no orphans. PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` user
(Debian's package creates it) or ``nobody``.
"""

from app.embedded.postgres import EmbeddedPostgres
from app.embedded.redis import EmbeddedRedis
from app.embedded.util import MissingDependency, free_port

__all__ = ["EmbeddedPostgres", "EmbeddedRedis", "MissingDependency", "free_port"]
