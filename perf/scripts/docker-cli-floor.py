#!/usr/bin/env python3
"""The docker CLI's own cost for `docker run --rm busybox true`.

Serves the Docker API requests that `docker run --rm` makes (ping, create,
attach, wait, start) on a unix socket, answering each at once without
running anything, and times the real docker CLI against it. What is left is
the client's own time: process start, its protocol work and its exit. Any
daemon's `docker run` takes at least this long.

Usage: perf/scripts/docker-cli-floor.py [RUNS]   (docker on PATH)
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

CID = "f" * 64


def handle(conn):
    with conn, conn.makefile("rb") as r:
        while True:
            line = r.readline()
            if not line:
                return
            method, path, _ = line.decode().split(" ", 2)
            length = 0
            while (h := r.readline()) not in (b"\r\n", b""):
                name, _, value = h.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            r.read(length)
            if "/attach" in path:
                # The hijacked stream: the upgrade, then EOF (no output).
                conn.sendall(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: "
                             b"application/vnd.docker.raw-stream\r\n"
                             b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
                return
            status, body = "200 OK", b""
            if path.endswith("/_ping"):
                body = b"OK"
            elif path.endswith("/containers/create"):
                status = "201 Created"
                body = json.dumps({"Id": CID, "Warnings": []}).encode()
            elif "/wait" in path:
                body = b'{"StatusCode":0}'
            elif "/start" in path:
                status = "204 No Content"
            head = (f"HTTP/1.1 {status}\r\nApi-Version: 1.47\r\n"
                    f"Content-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
            conn.sendall(head + (b"" if method == "HEAD" else body))


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    path = os.path.join(tempfile.mkdtemp(), "floor.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(64)

    def serve():
        while True:
            conn, _ = server.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    cmd = ["docker", "-H", f"unix://{path}", "run", "--rm", "busybox", "true"]
    times = []
    for i in range(runs + 3):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        if i >= 3:
            times.append((time.perf_counter() - start) * 1e3)
    version = ["docker", "--version"]
    alone = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(version, check=True, stdout=subprocess.DEVNULL)
        alone.append((time.perf_counter() - start) * 1e3)
    print(f"docker run --rm against an instant API: median {statistics.median(times):.2f} ms "
          f"(min {min(times):.2f}, {runs} runs)")
    print(f"docker --version: median {statistics.median(alone):.2f} ms")


if __name__ == "__main__":
    main()
