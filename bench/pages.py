"""Requests per second of Marid's pages and API, next to a bare Starlette + Jinja2 page served the same way.

    .venv/bin/python bench/pages.py [--concurrency 16] [--seconds 8] [--rounds 3]

Starts a private PostgreSQL and Redis, migrates, makes a person, a workspace and a read API key through the
real pages, then serves, each as one `uvicorn` process on its own port:

(a) Marid's authenticated workspace dashboard, ``GET /w/<slug>`` with a session cookie;
(b) Marid's authenticated JSON API, ``GET /api/v1/workspaces/<slug>/members`` with the API key;
(c) the floor: a bare Starlette app rendering a Jinja2 template of the dashboard's size (the dashboard's own
    HTML, as a template with a few variables), no middleware, no database.

A load generator (httpx, keep-alive, ``--concurrency`` clients) hits each for ``--seconds``, in turns, for
``--rounds`` rounds; the median round counts. It prints requests per second, the ratios (a)/(c) and (b)/(c)
(goal: >= 0.5), and the database transactions per request (from ``pg_stat_database``: commits and rollbacks
of every role, connection checks included). Everything is stopped and deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import asyncpg
import httpx

from app.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from app.security.passwords import hash_password

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery staple 42"
TARGET_RATIO = 0.5

BARE_APP = """
from jinja2 import Environment, DictLoader
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

env = Environment(loader=DictLoader({"page.html": open(__file__ + ".html").read()}), autoescape=True)
template = env.get_template("page.html")


async def page(request):
    return HTMLResponse(template.render(name="Bench Team", user="Bench Person", items=range(20)))


app = Starlette(routes=[Route("/", page)])
"""


@dataclass
class Target:
    label: str
    url: str
    headers: dict[str, str]
    rps: list[float] = field(default_factory=list)
    transactions: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def serve(argv: list[str], env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    handle = open(log, "wb")
    process = subprocess.Popen(argv, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return process
        except httpx.HTTPError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start; see {log}")


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    if match is None:
        raise RuntimeError("no CSRF token on the page")
    return match[1]


async def set_up(pg_dsn: str, base: str) -> tuple[str, str, str]:
    """A confirmed person (straight in the database), then sign-in, workspace and API key through the pages.

    Returns the workspace slug, the session cookie header and the API key.
    """
    connection = await asyncpg.connect(pg_dsn)
    try:
        await connection.execute(
            "INSERT INTO public.users (id, email, display_name, password_hash, email_verified_at, password_changed_at)"
            " VALUES (gen_random_uuid(), 'bench@example.com', 'Bench Person', $1, now(), now())",
            hash_password(PASSWORD),
        )
    finally:
        await connection.close()
    async with httpx.AsyncClient(base_url=base, headers={"Origin": base}) as client:
        page = await client.get("/login")
        answer = await client.post(
            "/login", data={"csrf_token": csrf_of(page.text), "email": "bench@example.com", "password": PASSWORD}
        )
        if answer.status_code != 303:
            raise RuntimeError(f"sign-in failed: {answer.status_code}")
        page = await client.get("/workspaces/new")
        answer = await client.post(
            "/workspaces/new", data={"csrf_token": csrf_of(page.text), "name": "Bench Team", "slug": "bench"}
        )
        if answer.status_code != 303:
            raise RuntimeError(f"creating the workspace failed: {answer.status_code} {answer.text[:300]}")
        page = await client.get("/w/bench/api-keys")
        form_id = re.search(r'name="form_id" value="([^"]*)"', page.text)
        answer = await client.post(
            "/w/bench/api-keys",
            data={
                "csrf_token": csrf_of(page.text),
                "name": "bench",
                "kind": "personal",
                "scope": "read",
                "expires": "never",
                **({"form_id": form_id[1]} if form_id else {}),
            },
            follow_redirects=True,
        )
        key = re.search(r"marid_pk_[A-Za-z0-9_]+", answer.text)
        if key is None:
            raise RuntimeError(f"no API key in the answer ({answer.status_code})")
        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
        return "bench", cookie, key[0]


async def transactions(pg_dsn: str) -> int:
    connection = await asyncpg.connect(pg_dsn)
    try:
        value: int = await connection.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        )
        return value
    finally:
        await connection.close()


async def hammer(
    target: Target, concurrency: int, seconds: float, latencies: list[float] | None = None
) -> tuple[int, float]:
    """Requests completed in ``seconds`` by ``concurrency`` keep-alive clients; refuses any non-200.

    ``latencies`` (if given) receives each request's time in seconds."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    done = 0
    times = latencies if latencies is not None else []
    async with httpx.AsyncClient(headers=target.headers, limits=limits, timeout=30) as client:
        for _ in range(concurrency):  # warm the connections
            (await client.get(target.url)).raise_for_status()
        deadline = time.monotonic() + seconds
        started = time.monotonic()

        async def loop() -> None:
            nonlocal done
            while (sent := time.monotonic()) < deadline:
                answer = await client.get(target.url)
                if answer.status_code != 200:
                    raise RuntimeError(f"{target.label}: {answer.status_code} {answer.text[:200]}")
                times.append(time.monotonic() - sent)
                done += 1

        await asyncio.gather(*(loop() for _ in range(concurrency)))
        return done, time.monotonic() - started


async def measure(targets: list[Target], pg_dsn: str, concurrency: int, seconds: float, rounds: int) -> None:
    for round_number in range(rounds):
        for target in targets:
            before = await transactions(pg_dsn)
            latencies: list[float] = []
            count, elapsed = await hammer(target, concurrency, seconds, latencies)
            target.p50_ms.append(statistics.median(latencies) * 1000)
            await asyncio.sleep(1.2)  # backends report their statistics at most once a second
            after = await transactions(pg_dsn)
            target.rps.append(count / elapsed)
            # The warm-up requests and our own two reads are in the delta too: subtract the reads.
            target.transactions.append(max(0, after - before - 2) / (count + concurrency))
            print(
                f"  round {round_number + 1}: {target.label:<44} {count / elapsed:8.0f} req/s "
                f"{target.transactions[-1]:5.2f} transactions/request, p50 {target.p50_ms[-1]:5.1f} ms, "
                f"load {os.getloadavg()[0]:.2f}",
                file=sys.stderr,
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    root = Path(tempfile.mkdtemp(prefix="marid-bench-pages-"))
    os.chmod(root, 0o755)
    pg = EmbeddedPostgres(root / "pg", durable=False)
    redis = EmbeddedRedis(root / "redis", durable=False)
    servers: list[subprocess.Popen[bytes]] = []
    try:
        pg.start()
        redis.start()
        url = asyncio.run(pg.ensure_database())
        pg_dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        env = {
            **os.environ,
            "MARID_ENV": "test",
            "MARID_DATABASE_URL": url,
            "MARID_REDIS_URL": redis.url,
            "MARID_LOG_LEVEL": "warning",
            # The benchmark measures throughput, not the per-key limit (600 a minute by default).
            "MARID_API_KEY_REQUESTS_PER_MINUTE": "1000000",
        }
        subprocess.run([sys.executable, "-m", "app.cli", "migrate"], env=env, check=True, cwd=ROOT)
        marid_port, bare_port = free_port(), free_port()
        base = f"http://127.0.0.1:{marid_port}"
        env["MARID_BASE_URL"] = base
        uvicorn = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--no-access-log", "--log-level", "warning"]
        servers.append(
            serve(
                [*uvicorn, "--factory", "--port", str(marid_port), "app.main:create_app"],
                env,
                marid_port,
                root / "marid.log",
            )
        )
        slug, cookie, key = asyncio.run(set_up(pg_dsn, base))

        dashboard = httpx.get(f"{base}/w/{slug}", headers={"Cookie": cookie})
        dashboard.raise_for_status()
        # The floor renders a template as large as the dashboard (its HTML, braces escaped, a few variables).
        html = dashboard.text.replace("{", "&#123;").replace("}", "&#125;")
        html = html.replace("Bench Team", "{{ name }}", 1).replace("Bench Person", "{{ user }}", 1)
        html += "<ul>{% for item in items %}<li>{{ item }}</li>{% endfor %}</ul>"
        (root / "bare_app.py").write_text(BARE_APP)
        (root / "bare_app.py.html").write_text(html)
        servers.append(
            serve(
                [*uvicorn, "--port", str(bare_port), "--app-dir", str(root), "bare_app:app"],
                env,
                bare_port,
                root / "bare.log",
            )
        )
        targets = [
            Target("(a) Marid dashboard, signed in", f"{base}/w/{slug}", {"Cookie": cookie}),
            Target(
                "(b) Marid /api/v1 members, API key",
                f"{base}/api/v1/workspaces/{slug}/members",
                {"Authorization": f"Bearer {key}"},
            ),
            Target("(c) bare Starlette + Jinja2 page (floor)", f"http://127.0.0.1:{bare_port}/", {}),
        ]
        size = len(dashboard.content)
        print(
            f"bench: dashboard {size:,} bytes; {args.concurrency} clients, {args.seconds:.0f} s each", file=sys.stderr
        )
        asyncio.run(measure(targets, pg_dsn, args.concurrency, args.seconds, args.rounds))
    except KeyboardInterrupt:
        print("\nbench: interrupted", file=sys.stderr)
        return 130
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
        redis.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)

    floor = statistics.median(targets[2].rps)
    print()
    print(
        f"Marid page benchmark: {args.concurrency} concurrent clients, median of {args.rounds} rounds, "
        f"{os.cpu_count()} CPUs"
    )
    print(f"  {'':<44} {'req/s':>8} {'ratio':>7} {'transactions/request':>21} {'p50 ms':>7}")
    for target in targets:
        rps = statistics.median(target.rps)
        verdict = "" if target is targets[2] else (" ok" if rps / floor >= TARGET_RATIO else " UNDER TARGET")
        print(
            f"  {target.label:<44} {rps:8.0f} {rps / floor:6.2f}x {statistics.median(target.transactions):21.2f}"
            f" {statistics.median(target.p50_ms):7.1f}{verdict}"
        )
    # The same ratios round by round (each round runs the three back to back): how much the machine moved.
    for target in targets[:2]:
        rounds = " ".join(f"{a / c:.2f}" for a, c in zip(target.rps, targets[2].rps, strict=True))
        print(f"  {target.label[:3]} round by round: {rounds}x")
    print(f"  goal: (a) and (b) at >= {TARGET_RATIO}x of (c); load average now {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
