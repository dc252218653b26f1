"""Runs the fake APIs in a process of their own, so their CPU is not counted as cmoc's."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from contextlib import contextmanager


def wait_until_up(url: str, *, tries: int = 300) -> None:
    """Waits for a just-started server to answer /healthz (0.1 s between tries)."""
    import time

    import requests

    for _ in range(tries):
        try:
            requests.get(url + "/healthz", timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def fake_apis_process(latency: dict[str, float] | None = None):
    """Yields the fakes' base URL; the server runs in a child process."""
    port = free_port()
    code = ("import sys; from cmoc.fake_apis import FakeApis; "
            f"FakeApis(port={port}, latency={latency or {}!r}).serve_forever()")
    process = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
