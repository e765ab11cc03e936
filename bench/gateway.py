"""The LLM gateway's overhead: streamed completions through ``marid web`` next to the same requests sent straight
to the provider (the scripted server), in the same run.

    .venv/bin/python bench/gateway.py [--requests 300] [--concurrency 32] [--seconds 8] [--rounds 3]

Starts a private PostgreSQL and Redis, migrates, runs the scripted LLM server (``python -m app.llm.scripted``)
and ``marid web`` as processes of their own, makes a workspace whose OpenAI-compatible provider is the scripted
server (with a priced model, so every call is metered, costed and logged) and mints a step token. Every request
is made with the official ``openai`` client, streaming with usage, as a sandbox makes it:

- **time to first token**: ``--requests`` streamed completions each way, one at a time, alternating (gateway,
  direct, gateway, ...), each from sending the request to the first content delta; the added latency is the
  gateway's percentile minus the direct one (p50, p99);
- **throughput**: ``--concurrency`` clients streaming for ``--seconds`` each way, alternating, ``--rounds``
  times; completions per second, and the ratio gateway / direct (median of the rounds).

Two answer shapes: ``burst`` (40 chunks, no pause: the first token comes at once, and the throughput shows what the
gateway's own CPU costs when nothing waits on the model) and ``paced`` (20 chunks 25 ms apart, half a second: a
model streaming at a modest speed). The first token is measured on burst answers.
Goal (issue 11): <= 5 ms added at p50 to the first token; >= 0.8x the direct throughput. Everything runs on this
machine's cores together (client, gateway, provider, PostgreSQL, Redis), so burst throughput is CPU-bound and
the gateway's work shows there in full.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import openai
from redis.asyncio import Redis

from app.audit.actor import Actor
from app.config import Settings
from app.db import Database
from app.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from app.embedded.util import stop_process
from app.llm import pricing, service
from app.llm.pricing import ModelInput
from app.llm.scripted import Reply, Script, ScriptedAdmin
from app.llm.scripted import command as scripted_command
from app.llm.service import ProviderInput
from app.llm.tokens import GatewayTokens
from app.security.secrets import SecretsService
from app.workspaces.service import create_workspace

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-bench-" + secrets.token_hex(16)
TEXT = "The quick brown fox jumps over the lazy dog. " * 4  # 180 characters: 40 chunks of 5, or 20 of 9
SHAPES = {
    "paced": Reply(text=TEXT, chunk_size=9, chunk_delay=0.025),
    "burst": Reply(text=TEXT, chunk_size=5),
}
ADDED_P50_TARGET_MS = 5.0
THROUGHPUT_TARGET = 0.8
USER: list[Any] = [{"role": "user", "content": "Say something."}]


class _Interrupted(Exception):
    pass


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise _Interrupted


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start(argv: list[str], env: dict[str, str], health: str, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not _ready(health):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{argv[2:4]} did not start; see {log}:\n{log.read_text()[-2000:]}")
        time.sleep(0.05)
    return process


async def set_up(settings: Settings, provider_url: str) -> str:
    """A workspace whose provider "scripted" is the scripted server, a priced model "bench", and a step token."""
    keyring = settings.keyring()
    db = Database(settings.database_url, keyring=keyring, pool_size=2)
    redis = Redis.from_url(settings.redis_url)
    try:
        actor = Actor.system("bench")
        async with db.public_session() as session:
            workspace = await create_workspace(session, name="Bench", slug=f"bench-{secrets.token_hex(3)}")
        async with db.tenant_session(workspace.id) as session:
            provider = await service.create_provider(
                session,
                SecretsService(keyring, db),
                settings,
                workspace_id=workspace.id,
                actor=actor,
                values=ProviderInput(preset="custom", slug="scripted", base_url=provider_url, api_key=KEY),
            )
            for name in SHAPES:
                await pricing.add_model(
                    session,
                    actor=actor,
                    provider_id=provider.id,
                    values=ModelInput(name=name, input_price="3", output_price="15"),
                )
        minted = await GatewayTokens(db, redis).mint(
            workspace.id, agent_id="bench", run_id="run_bench", step_id="step_bench", ttl=timedelta(hours=2)
        )
        return minted.token
    finally:
        await redis.aclose()
        await db.dispose()


async def first_token(client: openai.AsyncOpenAI, model: str) -> float:
    """Seconds from sending a streamed request to its first content delta (the rest is read to the end)."""
    started = time.perf_counter()
    first = 0.0
    stream = await client.chat.completions.create(
        model=model, messages=USER, stream=True, stream_options={"include_usage": True}
    )
    async for chunk in stream:
        if not first and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
    return first


@dataclass
class Path_:
    label: str
    client: openai.AsyncOpenAI
    prefix: str
    ttft: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)

    def model(self, shape: str) -> str:
        return self.prefix + shape


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


async def throughput(path: Path_, shape: str, concurrency: int, seconds: float) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await first_token(path.client, path.model(shape))
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


async def measure(gateway_url: str, direct_url: str, token: str, args: argparse.Namespace) -> dict[str, Any]:
    limits = {"max_retries": 0, "timeout": 60}
    results: dict[str, Any] = {}
    async with (
        openai.AsyncOpenAI(base_url=gateway_url, api_key=token, **limits) as through,  # type: ignore[arg-type]
        openai.AsyncOpenAI(base_url=direct_url, api_key=KEY, **limits) as straight,  # type: ignore[arg-type]
    ):
        latency_g, latency_d = Path_("gateway", through, "scripted/"), Path_("direct", straight, "")
        for path in (latency_g, latency_d):  # warm up: connections, caches, the token's first read
            for _ in range(10):
                await first_token(path.client, path.model("burst"))
        # One request at a time, alternating: the gateway's own latency, on an otherwise idle path.
        for _ in range(args.requests):
            for path in (latency_g, latency_d):
                path.ttft.append(await first_token(path.client, path.model("burst")))
        results["first token"] = (latency_g, latency_d)
        for shape in SHAPES:
            gateway, direct = Path_("gateway", through, "scripted/"), Path_("direct", straight, "")
            for _ in range(args.rounds):
                for path in (gateway, direct):
                    path.rates.append(await throughput(path, shape, args.concurrency, args.seconds))
            results[shape] = (gateway, direct)
            ratio = statistics.median(gateway.rates) / statistics.median(direct.rates)
            print(
                f"  {shape}: {statistics.median(gateway.rates):.1f} vs {statistics.median(direct.rates):.1f}/s "
                f"({ratio:.2f}x)",
                file=sys.stderr,
            )
    return results


def report(results: dict[str, Any], args: argparse.Namespace) -> bool:
    gateway, direct = results["first token"]
    g50, d50 = percentile(gateway.ttft, 0.5) * 1000, percentile(direct.ttft, 0.5) * 1000
    g99, d99 = percentile(gateway.ttft, 0.99) * 1000, percentile(direct.ttft, 0.99) * 1000
    print()
    print(
        f"LLM gateway benchmark: first token over {args.requests} streamed completions each way, one at a time, "
        f"alternating; throughput with {args.concurrency} concurrent streams for {args.seconds:g} s x {args.rounds} "
        "rounds each way (median)"
    )
    print()
    print("| | gateway | direct | added / ratio |")
    print("| --- | --- | --- | --- |")
    print(f"| first token p50 | {g50:.1f} ms | {d50:.1f} ms | **+{g50 - d50:.1f} ms** |")
    print(f"| first token p99 | {g99:.1f} ms | {d99:.1f} ms | +{g99 - d99:.1f} ms |")
    ratios = {}
    for shape in SHAPES:
        through, straight = results[shape]
        gr, dr = statistics.median(through.rates), statistics.median(straight.rates)
        ratios[shape] = gr / dr
        print(f"| throughput, {shape} answers | {gr:.1f}/s | {dr:.1f}/s | **{gr / dr:.2f}x** |")
    ok = g50 - d50 <= ADDED_P50_TARGET_MS and ratios["paced"] >= THROUGHPUT_TARGET
    print()
    print(
        f"Goal: <= {ADDED_P50_TARGET_MS:g} ms added at p50 to the first token, >= {THROUGHPUT_TARGET:g}x the direct "
        f"throughput (paced answers): {'met' if ok else 'NOT met'}."
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    root = Path(tempfile.mkdtemp(prefix="marid-bench-gateway-"))
    os.chmod(root, 0o755)
    pg = EmbeddedPostgres(root / "pg", durable=False)
    redis = EmbeddedRedis(root / "redis", durable=False)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        pg.start()
        redis.start()
        database_url = asyncio.run(pg.ensure_database())
        env = {
            **os.environ,
            "MARID_ENV": "test",
            "MARID_DATABASE_URL": database_url,
            "MARID_REDIS_URL": redis.url,
            "MARID_LOG_LEVEL": "warning",
        }
        subprocess.run([sys.executable, "-m", "app.cli", "migrate"], env=env, check=True, cwd=ROOT)
        provider_port, web_port = free_port(), free_port()
        provider = f"http://127.0.0.1:{provider_port}"
        processes.append(
            start(
                scripted_command(port=provider_port) + ["--no-demo", "--log-level", "warning"],
                {**env, "MARID_SCRIPTED_LLM_KEY": KEY},
                provider + "/healthz",
                root / "scripted.log",
            )
        )
        with ScriptedAdmin(provider, KEY) as admin:
            for shape, reply in SHAPES.items():
                admin.register(shape, Script(turns=Script.always(reply).turns))
        web = f"http://127.0.0.1:{web_port}"
        env["MARID_BASE_URL"] = web
        processes.append(
            start(
                [sys.executable, "-m", "app.cli", "web", "--port", str(web_port)],
                env,
                web + "/readyz",
                root / "web.log",
            )
        )
        settings = Settings(env="test", database_url=database_url, redis_url=redis.url)
        token = asyncio.run(set_up(settings, provider + "/v1"))
        print(f"bench: gateway {web}/llm/v1, provider {provider}/v1", file=sys.stderr)
        results = asyncio.run(measure(f"{web}/llm/v1", f"{provider}/v1", token, args))
    except (KeyboardInterrupt, _Interrupted):
        print("\nbench: interrupted", file=sys.stderr)
        return 130
    finally:
        for process in processes:
            stop_process(process)
        redis.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0 if report(results, args) else 1


if __name__ == "__main__":
    sys.exit(main())
