"""``microcourt serve --processes N``: N server processes on one port and one database (N may
be 1: one worker, with the database and the emulator in the parent, not in it).

The parent starts what must exist once (the embedded database and the WeChat emulator, when
configured so; the development keys in the data directory), reserves the port, then starts N
workers, each ``microcourt serve`` itself, told by ``WORKER_ENV`` where the database and the
emulator are. Each worker binds its own listening socket to the port with ``SO_REUSEPORT``,
so the kernel spreads new connections evenly over them; the parent's socket is bound but
never listens, so it only holds the port (and makes ``--port 0`` pick one for all).

Why workers started afresh rather than Tornado's ``fork_processes``: a fork copies the parent
as it is, and the parent here runs an event loop, the database client's threads, the log
writer's thread and the emulator; forking those is unsafe, and forking before any of them
starts would leave no parent to own the database. With one shared accepting socket (what
``fork_processes`` gives) the busiest process tends to accept most connections; separate
``SO_REUSEPORT`` sockets are balanced by the kernel.

Background jobs stay done once: each periodic job, the outbox and the escalation sweep take a
lease in the database (``server.platform.lease``); the live feed and the revocation poll run
in every worker, as they must. Rate limits are counted in the database
(``server.platform.ratelimit``). A worker that dies stops the rest: the parent exits 1.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
from contextlib import AsyncExitStack
from dataclasses import dataclass

from server.platform.config import Settings
from server.platform.crypto import resolve_keys
from server.platform.db import ensure_indexes
from server.platform.mongo import connect
from server.wechat.pay_config import resolve_pay_credentials

log = logging.getLogger("microcourt.processes")

#: set for a worker: JSON {"db": uri, "emulator": url or null, "secret": its app secret}
WORKER_ENV = "_MICROCOURT_WORKER"
READY_PREFIX = "microcourt ready: "
START_SECONDS = 120.0


@dataclass(frozen=True)
class EmulatorSecret:
    secret: str


@dataclass(frozen=True)
class SharedEmulator:
    """The parent's emulator, as a worker reaches it."""

    url: str
    state: EmulatorSecret


@dataclass(frozen=True)
class Worker:
    db: str
    emulator: SharedEmulator | None

    @classmethod
    def from_env(cls) -> Worker | None:
        raw = os.environ.get(WORKER_ENV)
        if not raw:
            return None
        found = json.loads(raw)
        url = found.get("emulator")
        shared = SharedEmulator(url, EmulatorSecret(found["secret"])) if url else None
        return cls(found["db"], shared)


def _reserve(host: str, port: int) -> socket.socket:
    """The port, held (bound with SO_REUSEPORT, not listening) for the workers to share."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    holder = socket.socket(family, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind((host, port))
    return holder


async def supervise(settings: Settings, processes: int) -> int:
    """Run ``processes`` workers until SIGINT or SIGTERM; 1 if a worker failed."""
    from server.main import _database_uri, _emulator, sms_receipts_to

    resolve_keys(settings)  # the development keys made once, before the workers read them
    pay, platform_key = resolve_pay_credentials(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        uri = await _database_uri(settings, stack)
        client = connect(uri, settings.mongodb.write_concern.concern)
        await ensure_indexes(client[settings.mongodb.database])  # once, not raced by N
        await client.close()
        emulator = await _emulator(settings, stack, pay, platform_key)
        holder = _reserve(settings.server.host, settings.server.port)
        stack.callback(holder.close)
        port = int(holder.getsockname()[1])
        if emulator is not None and settings.sms.emulated:
            sms_receipts_to(emulator, port)
        env = {
            **os.environ,
            WORKER_ENV: json.dumps(
                {
                    "db": uri,
                    "emulator": emulator.url if emulator else None,
                    "secret": emulator.state.secret if emulator else None,
                }
            ),
        }
        workers = [await _spawn(settings, port, env) for _ in range(processes)]
        stack.push_async_callback(_stop_all, workers)
        ready = await asyncio.wait_for(asyncio.gather(*(_ready(w) for w in workers)), START_SECONDS)
        print(ready[0], flush=True)  # the same line as one process's (the port is shared)
        return await _until_stopped(stop, workers)


async def _spawn(settings: Settings, port: int, env: dict[str, str]) -> asyncio.subprocess.Process:
    argv = [sys.executable, "-m", "server.cli", "serve", "--host", settings.server.host]
    argv += ["--port", str(port), "--data-dir", str(settings.server.data_dir)]
    from server.devstack import _die_with_parent

    return await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        preexec_fn=_die_with_parent,
    )


async def _ready(worker: asyncio.subprocess.Process) -> str:
    """The worker's ready line; what it prints after is passed on to our stdout."""
    assert worker.stdout is not None
    while line := (await worker.stdout.readline()).decode(errors="replace"):
        if line.startswith(READY_PREFIX):
            asyncio.get_running_loop().create_task(_pass_on(worker))
            return line.rstrip("\n")
        sys.stdout.write(line)
    raise RuntimeError(f"worker {worker.pid} exited before it was ready ({await worker.wait()})")


async def _pass_on(worker: asyncio.subprocess.Process) -> None:
    assert worker.stdout is not None
    while line := await worker.stdout.readline():
        sys.stdout.write(line.decode(errors="replace"))
        sys.stdout.flush()


async def _until_stopped(stop: asyncio.Event, workers: list[asyncio.subprocess.Process]) -> int:
    stopped = asyncio.ensure_future(stop.wait())
    exits = [asyncio.ensure_future(w.wait()) for w in workers]
    await asyncio.wait([stopped, *exits], return_when=asyncio.FIRST_COMPLETED)
    if stop.is_set():
        log.info("shutting down %d workers", len(workers))
        return 0
    stopped.cancel()
    dead = next(w for w in workers if w.returncode is not None)
    log.error("worker %d exited with %s; stopping the others", dead.pid, dead.returncode)
    return 1


async def _stop_all(workers: list[asyncio.subprocess.Process]) -> None:
    for worker in workers:
        if worker.returncode is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            await asyncio.wait_for(worker.wait(), 30)
        except TimeoutError:
            worker.kill()
            await worker.wait()
