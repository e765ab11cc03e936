"""The attacker: a script run *inside* a sandbox (``python3 probe.py '<targets as JSON>'``) that tries to get out.

It imports nothing but the standard library, changes nothing it should not be able to, and prints one JSON
report as its last line: what it could read, list, write and connect to, and where it found a secret.
"""

import json
import os
import socket
import sys

targets = json.loads(sys.argv[1])
report: dict[str, object] = {"uid": os.getuid()}


def opens(path: str) -> bool:
    try:
        with open(path, "rb") as file:
            file.read(1)
        return True
    except OSError:
        return False


def lists(path: str) -> list[str] | None:
    try:
        return os.listdir(path)
    except OSError:
        return None


def writes(path: str) -> bool:
    try:
        with open(path, "w") as file:
            file.write("x")
        os.unlink(path)
        return True
    except OSError:
        return False


def tcp(host: str, port: int) -> str:
    try:
        with socket.create_connection((host, port), timeout=2):
            return "connected"
    except OSError as error:
        return error.strerror or type(error).__name__


def unix(path: str) -> str:
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(2)
            sock.connect(path)
            return "connected"
    except OSError as error:
        return error.strerror or type(error).__name__


def route(host: str) -> str:
    # A UDP "connect" only looks the route up: it tells whether anything could leave, and sends nothing.
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((host, 9))
            return "route exists"
    except OSError as error:
        return error.strerror or type(error).__name__


report["read"] = {path: opens(path) for path in targets["files"]}
report["list"] = {path: lists(path) for path in targets["dirs"]}
report["write"] = {path: writes(path) for path in targets["writes"]}
report["tcp"] = {f"{host}:{port}": tcp(host, port) for host, port in targets["tcp"]}
report["unix"] = {path: unix(path) for path in targets["unix"]}
report["route"] = {host: route(host) for host in targets["routes"]}
report["interfaces"] = sorted(name for _, name in socket.if_nameindex())
report["root"] = sorted(os.listdir("/"))

# Every process it can see but itself (its own command line holds the targets).
processes = {}
for pid in os.listdir("/proc"):
    if pid.isdigit() and int(pid) != os.getpid():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as file:
                processes[pid] = file.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            processes[pid] = "?"
report["processes"] = processes

status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
report["cap_eff"] = status["CapEff"].strip()
report["cap_bnd"] = status["CapBnd"].strip()
report["no_new_privs"] = status["NoNewPrivs"].strip()

# Look for the platform's secrets everywhere the sandbox can read: its environment, every process's environment
# and command line, and every file outside the read-only system trees (/usr, and the kernel's /proc and /sys).
needles = [secret.encode() for secret in targets["secrets"]]
found: list[str] = []
if any(needle in "\0".join(f"{k}={v}" for k, v in os.environ.items()).encode() for needle in needles):
    found.append("environment")
for pid in os.listdir("/proc"):
    for name in ("environ", "cmdline"):
        try:
            with open(f"/proc/{pid}/{name}", "rb") as file:
                data = file.read()
        except OSError:
            continue
        if any(needle in data for needle in needles):
            found.append(f"/proc/{pid}/{name}")
scanned = 0
for top in sorted(set(os.listdir("/")) - {"usr", "proc", "sys", "dev", "bin", "sbin", "lib", "lib64"}):
    for folder, _dirs, files in os.walk("/" + top):
        for name in files:
            path = os.path.join(folder, name)
            try:
                if os.path.islink(path) or not os.path.isfile(path) or os.path.getsize(path) > 8 << 20:
                    continue
                with open(path, "rb") as file:
                    data = file.read()
            except OSError:
                continue
            scanned += 1
            if any(needle in data for needle in needles):
                found.append(path)
report["secrets_found"] = found
report["files_scanned"] = scanned
print(json.dumps(report))
