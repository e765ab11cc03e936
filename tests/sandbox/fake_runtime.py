"""Misbehaving "runtimes" for the supervisor's bad-input tests: ``python fake_runtime.py <behaviour>``.

Each speaks just enough of the channel protocol (or none) to misbehave in one way. Standard library only: this
runs as the sandbox's command, like the real runtime would. It writes its pid to ``fake.pid`` in its workdir,
so a test can check that the supervisor killed it.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from typing import Any


def connect() -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(os.environ["MARID_CHANNEL"].removeprefix("unix:"))
    return sock


def send(sock: socket.socket, type_: str, **fields: Any) -> None:
    sock.sendall(json.dumps({"v": 1, "type": type_, **fields}).encode() + b"\n")


def read_frame(sock: socket.socket, buffer: bytearray) -> dict[str, Any]:
    while b"\n" not in buffer:
        data = sock.recv(65536)
        if not data:
            raise SystemExit(0)
        buffer += data
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    value: dict[str, Any] = json.loads(line)
    return value


def until(sock: socket.socket, buffer: bytearray, type_: str) -> dict[str, Any]:
    while True:
        frame = read_frame(sock, buffer)
        if frame["type"] == type_:
            return frame


def main(behaviour: str) -> None:
    with open("fake.pid", "w") as f:
        f.write(str(os.getpid()))
    if behaviour == "exit-at-once":
        raise SystemExit(5)
    if behaviour == "never-connects":
        time.sleep(3600)
    sock = connect()
    buffer = bytearray()
    if behaviour == "silent-after-connecting":
        time.sleep(3600)
    if behaviour == "no-hello":
        send(sock, "status", state="busy")
        time.sleep(3600)
    send(sock, "hello", runtime="fake", protocol=1, pid=os.getpid())
    start = until(sock, buffer, "start")
    send(sock, "status", state="busy")
    if behaviour == "crash":
        send(sock, "output", text="about to crash")
        os._exit(3)
    elif behaviour == "garbage":
        sock.sendall(b"this is not json\n")
    elif behaviour == "huge-line":
        sock.sendall(b'{"v":1,"type":"output","text":"' + b"x" * (2 * 1024 * 1024) + b'"}\n')
    elif behaviour == "flood":
        line = json.dumps({"v": 1, "type": "output", "text": "flood"}).encode() + b"\n"
        for _ in range(200):
            sock.sendall(line * 500)
    elif behaviour == "bad-field":
        send(sock, "tool_end", call_id="c1", tool="bash", ok=True, result="", duration_ms="12")
    elif behaviour == "escaping-path":
        send(sock, "file_changed", path="../../etc/passwd", change="modified", size=1)
    elif behaviour == "hello-twice":
        send(sock, "hello", runtime="fake", protocol=1, pid=os.getpid())
    elif behaviour == "silent-while-busy":
        pass
    elif behaviour == "ignores-abort":
        until(sock, buffer, "abort")
        while True:
            send(sock, "status", state="busy")
            time.sleep(0.2)
    elif behaviour == "rpc-flood":
        for n in range(int(os.environ.get("FAKE_RPCS", "40"))):
            send(sock, "rpc_request", id=f"r{n}", method="slow", params={})
    elif behaviour == "polite":
        # Probes the supervisor, then reports what it heard in its outputs: an unknown frame type, an RPC it
        # may not call, an LLM path it may not use, and a request carrying its own Authorization header.
        send(sock, "frobnicate", x=1)
        refused = until(sock, buffer, "error")
        send(sock, "rpc_request", id="r1", method="not_offered", params={})
        rpc = until(sock, buffer, "rpc_response")
        send(sock, "llm_request", id="l1", method="GET", path="/v1/models", headers={}, body="")
        models = until(sock, buffer, "llm_response_start")
        outputs = {
            "refused": refused["about"],
            "rpc": rpc["error"]["code"],
            "models": str(models["status"]),
            "tools": ",".join(t["name"] for t in start["rpc_tools"]),
        }
        send(sock, "result", status="complete", outputs=outputs, summary="probed")
        until(sock, buffer, "shutdown")
        send(sock, "status", state="exiting")
        return
    time.sleep(3600)


if __name__ == "__main__":
    main(sys.argv[1])
