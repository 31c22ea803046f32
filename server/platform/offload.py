"""CPU-bound work off the IOLoop: the court's PDFs (fontTools and fpdf2, pure Python, a few
tenths of a second each) rendered in worker processes, so that requests are not kept waiting
behind them; or, with no processes configured, in one thread of this process (off the
IOLoop, but sharing its interpreter lock).

The processes are spawned, not forked (forking a process that runs an event loop, the
driver's threads and the log writer is unsafe), once per process and number, and shared by
every application of the process (the tests build many); they start on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

T = TypeVar("T")

_pools: dict[int, Executor] = {}
_lock = threading.Lock()
#: how much lower the workers run than the server: under load the requests (and, on one
#: machine, the embedded database) get the CPU first and the documents wait
NICENESS = 10


def _lower_priority() -> None:
    with contextlib.suppress(OSError):
        os.nice(NICENESS)


def _executor(processes: int) -> Executor:
    with _lock:
        pool = _pools.get(processes)
        if pool is None:
            if processes == 0:
                pool = ThreadPoolExecutor(1, thread_name_prefix="microcourt-render")
            else:
                spawn = multiprocessing.get_context("spawn")
                pool = ProcessPoolExecutor(processes, mp_context=spawn, initializer=_lower_priority)
            _pools[processes] = pool
        return pool


def _forget(processes: int, pool: Executor) -> None:
    with _lock:
        if _pools.get(processes) is pool:
            del _pools[processes]


class Offload:
    """Runs a pure function (module-level, its arguments picklable) away from the IOLoop."""

    def __init__(self, processes: int) -> None:
        self.processes = processes

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        pool = _executor(self.processes)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(pool, functools.partial(fn, *args))
        except BrokenProcessPool:
            _forget(self.processes, pool)  # a worker died (killed, out of memory): a new pool
            raise
