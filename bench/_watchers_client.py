"""Simulated watchers: one keep-alive HTTP/1.1 connection each, doing what a live page's
JavaScript (cmoc/static/live.js) does, with per-watcher state that wrk's shared script state
cannot keep.

A watcher opens its page at a random moment of the first five seconds (people do not all
arrive at the same instant), then every 5 s (jittered ±50%) either reloads the page (`reload`
mode, the pages before live polling) or asks for the page's version with If-None-Match (`live`
mode) and, when the version changed, reloads the page within 2 s as live.js does (it updates
deliveries in place where it can, so this overstates the cost). Latencies are kept after the
warm-up only.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

USER_AGENT = "cmoc-bench-watcher/1.0"


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0

    def add(self, kind: str, seconds: float, status: int) -> None:
        self.latencies.setdefault(kind, []).append(seconds)
        self.statuses[status] = self.statuses.get(status, 0) + 1


async def _exchange(reader, writer, path: str, headers: dict[str, str]) -> tuple[int, dict]:
    lines = [f"GET {path} HTTP/1.1", "Host: bench", f"User-Agent: {USER_AGENT}",
             *(f"{k}: {v}" for k, v in headers.items())]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split()[1])
    answer: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        answer[name.strip().lower()] = value.strip()
    await reader.readexactly(int(answer.get("content-length", 0)))
    return status, answer


async def _watcher(host: str, port: int, *, label: str, cookie: str, page: str, version: str,
                   live: bool,
                   warm_until: float, stop_at: float, tally: Tally) -> None:
    await asyncio.sleep(random.uniform(0, 5))
    reader, writer = await asyncio.open_connection(host, port)
    etag, path, kind = None, page, "page"
    try:
        while time.monotonic() < stop_at:
            headers = {"Cookie": cookie}
            if kind == "version" and etag:
                headers["If-None-Match"] = etag
            started = time.perf_counter()
            try:
                status, answer = await _exchange(reader, writer, path, headers)
            except (ConnectionError, asyncio.IncompleteReadError):
                tally.errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            if time.monotonic() >= warm_until:
                tally.add(f"{label} {kind}", time.perf_counter() - started, status)
            if answer.get("connection", "").lower() == "close":
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
            changed = kind == "version" and status == 200 and etag is not None
            if kind == "version" and status == 200:
                etag = answer.get("etag")
            if live and changed:
                path, kind, wait = page, "page", random.uniform(0, 2)
            elif live:
                path, kind, wait = version, "version", random.uniform(2.5, 7.5)
                if etag is None:
                    wait = 0.0   # the page just loaded: learn its version (live.js has it)
            else:
                wait = random.uniform(2.5, 7.5)
            await asyncio.sleep(wait)
    finally:
        writer.close()


def watch(url: str, *, watchers: dict[tuple[str, str, str], int], cookie: str, live: bool,
          seconds: float, warm_up: float = 10.0) -> Tally:
    """Runs `watchers[(label, page, version_path)]` watchers per page for warm_up + seconds;
    latencies are kept per "label page" and "label version"."""
    host, port = url.removeprefix("http://").split(":")
    tally = Tally()

    async def main() -> None:
        now = time.monotonic()
        await asyncio.gather(*(
            _watcher(host, int(port), label=label, cookie=cookie, page=page, version=version,
                     live=live, warm_until=now + warm_up, stop_at=now + warm_up + seconds,
                     tally=tally)
            for (label, page, version), count in watchers.items() for _ in range(count)))

    asyncio.run(main())
    return tally
