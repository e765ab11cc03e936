"""Running the scripted server: in a background thread for tests, or in the foreground for ``marid dev``.

``ScriptedServer`` binds its socket itself before the thread starts (port 0: a free port), so the address is
known and taken as soon as ``start`` returns, with no race for a "free" port between tests.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import uvicorn

from app.llm.scripted.app import create_app
from app.llm.scripted.demo import DEMO_LABEL, DEMO_MODEL, DemoModel
from app.llm.scripted.registry import Registry, ResponderLike
from app.llm.scripted.request import ChatRequest
from app.llm.scripted.script import load_script_file


class _Uvicorn(uvicorn.Server):
    """Tells waiting answers (hangs, slow streams) to give up before uvicorn waits for them to finish."""

    def __init__(self, config: uvicorn.Config, closing: threading.Event) -> None:
        super().__init__(config)
        self.closing = closing

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.closing.set()
        await super().shutdown(sockets)


class ScriptedServer:
    """A scripted LLM server speaking the OpenAI and Anthropic protocols.

    ``with ScriptedServer(api_key="k") as server:`` (or ``async with``) runs it on a free 127.0.0.1 port;
    point ``openai.OpenAI(base_url=server.openai_base_url, api_key="k")`` or
    ``anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="k")`` at it. The demo model answers as
    ``demo`` unless ``demo=False``.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        demo: bool = True,
        log_level: str = "warning",
    ) -> None:
        self.api_key = api_key
        self.host = host
        self.port = port
        self.log_level = log_level
        self.registry = Registry()
        if demo:
            self.registry.register(DEMO_MODEL, DemoModel(), label=DEMO_LABEL)
        self.closing = threading.Event()
        self.app = create_app(self.registry, api_key=api_key, closing=self.closing)
        self._server: _Uvicorn | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    # -- addresses ------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """What the ``openai`` SDK takes as ``base_url`` (it adds ``/chat/completions``)."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """What the ``anthropic`` SDK takes as ``base_url`` (it adds ``/v1/messages``)."""
        return self.url

    # -- scripts and the request log --------------------------------------------------------------------------

    def register(self, model: str, script: ResponderLike, *, label: str | None = None) -> None:
        """Requests for ``model`` (or ``scripted/<model>``) answer from ``script``."""
        self.registry.register(model, script, label=label)

    def register_key(self, api_key: str, script: ResponderLike) -> None:
        """Requests made with ``api_key`` answer from ``script``, whatever their model; the key is accepted."""
        self.registry.register_key(api_key, script)

    def unregister(self, *, model: str | None = None, api_key: str | None = None) -> None:
        self.registry.unregister(model=model, api_key=api_key)

    def load(self, path: str | Path) -> None:
        """Register the scripts of a JSON or YAML file (see ``load_script_file``)."""
        for document in load_script_file(path):
            if document.model is not None:
                self.register(document.model, document)
            if document.api_key is not None:
                self.register_key(document.api_key, document)

    @property
    def requests(self) -> list[ChatRequest]:
        """Requests received so far, oldest first."""
        return self.registry.requests

    def clear_requests(self) -> None:
        self.registry.clear_requests()

    # -- running ----------------------------------------------------------------------------------------------

    def _config(self) -> uvicorn.Config:
        # No lifespan, no websockets: nothing to start, and no websocket library warnings in tests.
        return uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            lifespan="off",
            ws="none",
            log_level=self.log_level,
            access_log=False,
            timeout_graceful_shutdown=2,
        )

    def start(self, timeout: float = 10) -> ScriptedServer:
        """Serve in a background thread; returns once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the scripted server is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._socket = sock
        self.closing.clear()
        self._server = _Uvicorn(self._config(), self.closing)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="scripted-llm", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the scripted LLM server did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10) -> None:
        self.closing.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def serve_forever(self) -> None:
        """Serve in this thread until SIGINT or SIGTERM (uvicorn handles both)."""
        _Uvicorn(self._config(), self.closing).run()

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    async def __aenter__(self) -> ScriptedServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)


def run(
    *,
    host: str = "127.0.0.1",
    port: int,
    api_key: str | None = None,
    script_files: Iterable[str | Path] = (),
    demo: bool = True,
    log_level: str = "info",
) -> None:
    """Serve in the foreground (``python -m app.llm.scripted``, ``marid dev``) until SIGINT or SIGTERM."""
    server = ScriptedServer(api_key=api_key, host=host, port=port, demo=demo, log_level=log_level)
    for path in script_files:
        server.load(path)
    models = ", ".join(e.name for e in server.registry.models()) or "none"
    print(
        f"Scripted LLM server on {server.url}: OpenAI base URL {server.openai_base_url}, "
        f"Anthropic base URL {server.anthropic_base_url}; models: {models}",
        file=sys.stderr,
        flush=True,
    )
    server.serve_forever()


def command(*, port: int, host: str = "127.0.0.1", script_files: Iterable[str | Path] = ()) -> list[str]:
    """The argv that runs the server as a child process; give it the key in ``MARID_SCRIPTED_LLM_KEY``."""
    argv = [sys.executable, "-m", "app.llm.scripted", "--host", host, "--port", str(port)]
    for path in script_files:
        argv += ["--script", str(path)]
    return argv
