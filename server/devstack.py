"""The development stack: what ``serve`` starts in place of what is not configured.

- The embedded database, SecantusDB as a child process, when no ``mongodb.uri`` is set. The
  child gets its own process group (so that Ctrl-C reaches us first and we stop it in order)
  and dies with us if we are killed (PR_SET_PDEATHSIG), so it is never left behind.
- The WeChat + WeChat Pay emulator (``miniapp_stubs``), when no WeChat or WeChat Pay
  credentials are set.

Only ``server.main`` imports this module, and only when something is embedded or emulated;
the emulator itself is imported only when it is started. Code that runs in production never
imports either (tests/platform/test_devstack.py).
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import logging
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from server.platform.config import Settings
from server.platform.mongo import EMBEDDED_MAIN
from server.wechat.pay_config import PayCredentials

if TYPE_CHECKING:
    from miniapp_stubs.emulator import Emulator as Emulator

log = logging.getLogger("microcourt.embedded")

PR_SET_PDEATHSIG = 1


class EmbeddedDatabaseError(Exception):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def find_command(command: str) -> str:
    """The server binary: beside our interpreter (a virtualenv's bin) or on PATH."""
    beside = Path(sys.executable).parent / command
    found = str(beside) if beside.exists() else shutil.which(command)
    if not found:
        raise EmbeddedDatabaseError(
            f"cannot find {command!r}: install SecantusDB or set mongodb.uri"
        )
    return found


async def _wait_unlocked(lock: Path, deadline: float) -> None:
    """Wait until no process holds WiredTiger's lock on the data (the byte-range lock it
    takes with ``fcntl``): a database killed with its ``serve`` (PR_SET_PDEATHSIG) takes a
    few seconds to stop, and a second one opened meanwhile fails with ``Device or resource
    busy``."""
    if not lock.exists():
        return
    while True:
        with lock.open("rb+") as f:
            try:
                fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
                return  # free (closing the file lets go of our test lock)
            except OSError:
                pass
        if time.monotonic() > deadline:
            raise EmbeddedDatabaseError(f"{lock} is still held by another process")
        log.info("waiting for the database in %s to be released", lock.parent)
        await asyncio.sleep(0.2)


def embedded_argv(command: str, port: int, storage: Path) -> list[str]:
    """The embedded database's command line (the server, the tests and the bench start it
    so): for ``secantusd-py``, SecantusDB's own main through ``run_embedded``, with what it
    needs that its command line does not offer (``server.platform.mongo``)."""
    launch = [sys.executable, "-c", EMBEDDED_MAIN, command]
    return [
        *(launch if Path(command).name == "secantusd-py" else [command]),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--storage-path",
        str(storage),
        "--log-level",
        "WARNING",
        # every commit on disk before it is acknowledged (with the client's j:true)
        "--sync-on-commit",
    ]


class EmbeddedDatabase:
    def __init__(self, command: str, data_dir: Path, timeout: float = 30.0) -> None:
        self.command = command
        self.data_dir = data_dir.resolve()
        self.timeout = timeout
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    async def start(self) -> str:
        """Start the server on ``data_dir``; one still letting go of it (a ``serve`` killed a
        moment ago, whose database is stopping) is waited for, not failed on."""
        storage = self.data_dir / "db"
        storage.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.timeout
        while True:
            await _wait_unlocked(storage / "WiredTiger.lock", deadline)
            try:
                return await self._start(storage)
            except EmbeddedDatabaseError as e:
                # taken between our look and its open: look again
                if "resource busy" not in str(e) or time.monotonic() > deadline:
                    raise

    async def _start(self, storage: Path) -> str:
        self.port = free_port()
        logfile = (self.data_dir / "secantusd.log").open("ab")
        argv = embedded_argv(find_command(self.command), self.port, storage)
        self.process = subprocess.Popen(
            argv,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            cwd=self.data_dir,
        )
        logfile.close()
        await self._wait_ready()
        log.info("embedded database up on port %d, data in %s", self.port, storage)
        return self.uri

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
            self.uri, serverSelectionTimeoutMS=300
        )
        try:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise EmbeddedDatabaseError(
                        f"embedded database exited with status {self.process.returncode}: "
                        f"{self._log_tail()}"
                    )
                try:
                    await client.admin.command("ping")
                    return
                except PyMongoError:
                    await asyncio.sleep(0.1)
        finally:
            await client.close()
        await self.stop()
        raise EmbeddedDatabaseError(f"embedded database did not answer ping in {self.timeout}s")

    def _log_tail(self) -> str:
        try:
            lines = (self.data_dir / "secantusd.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return " | ".join(lines[-3:])

    async def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.run_in_executor(None, proc.wait), timeout=15)
        except TimeoutError:
            log.warning("embedded database did not stop in 15 s; killing it")
            proc.kill()
            await loop.run_in_executor(None, proc.wait)
        log.info("embedded database stopped")


async def database_uri(settings: Settings, stack: AsyncExitStack) -> str:
    """The embedded database started (and stopped with ``stack``); its URI."""
    embedded = EmbeddedDatabase(
        settings.mongodb.embedded_command,
        settings.server.data_dir,
        settings.mongodb.startup_timeout_seconds,
    )
    uri = await embedded.start()
    stack.push_async_callback(embedded.stop)
    return uri


async def start_emulator(
    settings: Settings, stack: AsyncExitStack, pay: PayCredentials, platform_key: str | None
) -> Emulator:
    """The WeChat + WeChat Pay emulator started (and stopped with ``stack``), our merchant
    registered with it when WeChat Pay is emulated."""
    from miniapp_stubs.emulator import PayOptions
    from miniapp_stubs.emulator import start_emulator as start

    options = PayOptions(
        platform_private_key_pem=platform_key,
        platform_public_key_id=pay.platform_public_key_id,
        time_scale=1 / 30,  # callbacks retried after 0.5 s, 0.5 s, 1 s, 6 s ...
        check_request_time=True,  # the emulator runs on the wall clock here
    )
    emulator = await start(settings.wechat.appid, secrets.token_hex(16), pay=options)
    stack.push_async_callback(emulator.stop)
    if platform_key is not None:
        emulator.pay.add_merchant(
            pay.mchid, pay.appid, pay.merchant_public_key_pem, pay.serial_no, pay.apiv3_key
        )
    return emulator
