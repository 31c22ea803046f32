"""Writes at the national peak: requests sent at a fixed rate, whatever the answers (README).

wrk keeps each of its connections busy, so a write's p99 under wrk is mostly the queue its own
64 connections make (64 waiting requests at ~30/s is a 2 s wait). The project plans for 34
filings a second at the national peak on one 2-core node; these rows send that many requests
a second (``--peak-rate``) for ``--peak-seconds``, each at its time however many are still in
flight (at most ``--connections`` open at once, as wrk), and time each from when it was due
(so a request held back by the 64 in flight counts its wait): the latency a user would see at
that rate. Their target: p99 under 1 s.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tornado.httpclient import HTTPClientError
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from bench import raw

if TYPE_CHECKING:
    from bench.run import Bench

Request = tuple[bytes, dict[str, str]]  # body, headers
TIMEOUT = 30.0  # seconds, as wrk's --timeout for the writes


@dataclass(frozen=True)
class Peak:
    """``name`` (results ``key``): POST ``url``, the ``i``-th request from ``request(i)``,
    answered ``status``."""

    name: str
    key: str
    url: str
    request: Callable[[int], Request]
    status: int


def count(bench: Bench) -> int:
    """Requests of one peak row."""
    return bench.opts.peak_rate * bench.opts.peak_seconds


def run(bench: Bench, peak: Peak) -> None:
    o = bench.opts
    bench.say_load(f"{peak.name} ({o.peak_rate}/s for {o.peak_seconds} s)")
    bench.record_async(peak.name, peak.key, paced(peak, o.peak_rate, count(bench), o.connections))
    raw.settle(bench, f"the {peak.name} load")


async def paced(peak: Peak, rate: int, total: int, connections: int) -> raw.LoadResult:
    """``total`` requests, the ``i``-th due ``i / rate`` s after the start."""
    client = SimpleAsyncHTTPClient(force_instance=True, max_clients=connections)
    tally, wrong = raw.Tally(), Counter[int]()
    start = last = time.perf_counter() + 0.1

    async def one(i: int) -> None:
        nonlocal last
        due = start + i / rate
        body, headers = peak.request(i)
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        try:
            answer = await client.fetch(  # a wait in the client's queue counts as connecting
                peak.url,
                method="POST",
                body=body,
                headers=headers,
                connect_timeout=TIMEOUT,
                request_timeout=TIMEOUT,
            )
            status = answer.code
        except HTTPClientError as e:
            status = e.code
        except OSError as e:
            tally.failures += 1
            tally.last_error = f"{type(e).__name__}: {e}"
            return
        if status != peak.status:
            wrong[status] += 1  # 599: no answer within TIMEOUT
            return
        last = time.perf_counter()
        tally.latencies.append(last - due)

    try:
        await asyncio.gather(*(one(i) for i in range(total)))
    finally:
        client.close()
    # requests/s: as answered, from the first one due to the last answer
    found = raw.result(peak.name, tally, max(last - start, total / rate))
    found.errors = {"connect_or_read": tally.failures}
    found.errors |= {f"http_{status}": n for status, n in sorted(wrong.items())}
    found.problem = ""
    return found
