"""The stack under test, as in production: SecantusDB, then ``microcourt serve`` (README)."""

from __future__ import annotations

import base64
import ctypes
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from server.devstack import embedded_argv
from server.platform.crypto import FieldCipher

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "microcourt"
READY = re.compile(r"^microcourt ready: api=(http://\S+) emulator=(http://\S+)$", re.M)
BARE_READY = re.compile(r"^bare ready: (http://\S+)$", re.M)
PR_SET_PDEATHSIG = 1
T = TypeVar("T")


class StackError(Exception):
    """The stack could not be started; the message says why, with the relevant log lines."""


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n    ".join(text[-lines:]) or "(empty)"


@dataclass(frozen=True)
class Keys:
    token_secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    data_key: bytes = field(default_factory=lambda: os.urandom(32))
    hash_key: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))

    def env(self) -> dict[str, str]:
        key, m = base64.b64encode(self.data_key).decode(), "MICROCOURT_SECURITY__"
        secrets = {f"{m}TOKEN_SECRET": self.token_secret, f"{m}HASH_KEY": self.hash_key}
        return {**secrets, f"{m}DATA_KEY": key, "MICROCOURT_ADMIN_PASSWORD": self.admin_password}


@dataclass
class Stack:
    workdir: Path
    keys: Keys = field(default_factory=Keys)
    db_uri: str = ""
    api: str = ""
    emulator: str = ""
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    exit_codes: dict[str, int | None] = field(default_factory=dict)

    @property
    def cipher(self) -> FieldCipher:
        return FieldCipher(self.keys.data_key, self.keys.hash_key.encode())

    @property
    def data_dir(self) -> Path:
        return self.workdir / "server"

    def start(self) -> None:
        try:
            self.start_database()
            self.start_server()
        except BaseException:
            self.stop()
            raise

    def start_database(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port, log = int(s.getsockname()[1]), self.workdir / "secantusd.log"
        secantusd = Path(sys.executable).parent / "secantusd-py"
        if not secantusd.exists():
            raise StackError(f"secantusd-py not found beside {sys.executable}: install SecantusDB")
        # started as the server starts it (its accommodations: server.platform.mongo)
        argv = embedded_argv(str(secantusd), port, self.workdir / "db")
        with log.open("ab") as out:
            self._spawn("secantusd", argv, out, subprocess.STDOUT, cwd=self.workdir)
        self.db_uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
        with MongoClient[dict[str, Any]](self.db_uri, serverSelectionTimeoutMS=300) as client:

            def ping() -> bool | None:
                try:
                    return bool(client.admin.command("ping"))
                except PyMongoError:
                    return None

            self._await(30, lambda: tail(log), ping)

    def server_env(self) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("MICROCOURT_")}
        return {
            **inherited,
            **self.keys.env(),
            "MICROCOURT_MONGODB__URI": self.db_uri,
            "MICROCOURT_MONGODB__DATABASE": DATABASE,
            "MICROCOURT_SERVER__DEBUG": "false",
            "MICROCOURT_SERVER__BEHIND_PROXY": "true",
            "MICROCOURT_SERVER__LOG_FILE": str(self.workdir / "server.log"),
            # one user sends every POST /messages of the load; the sweep looks every second
            "MICROCOURT_WORKORDERS__MESSAGES_PER_MINUTE": "1000000000",
            "MICROCOURT_WORKORDERS__SWEEP_SECONDS": "1",
        }

    def start_server(self) -> None:
        self.api, self.emulator = self.serve("server", 1)

    def serve(self, name: str, processes: int) -> tuple[str, str]:
        """``microcourt serve --processes N`` on the database, logging to ``{name}.log``:
        its API and emulator URLs, once ready. Stopped with the stack."""
        serve = ["-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", "0"]
        data_dir = self.workdir / ("server" if name == "server" else name)
        argv = [sys.executable, *serve, "--data-dir", str(data_dir), "--processes", str(processes)]
        out, err = self.workdir / f"{name}.stdout", self.workdir / f"{name}.stderr"
        env = self.server_env() | {"MICROCOURT_SERVER__LOG_FILE": str(self.workdir / f"{name}.log")}
        with out.open("ab") as stdout, err.open("ab") as stderr:
            self._spawn(name, argv, stdout, stderr, cwd=ROOT, env=env)

        def ready() -> tuple[str, str] | None:
            found = READY.search(out.read_text(errors="replace"))
            return (found.group(1), found.group(2)) if found else None

        def logs() -> str:
            return f"{tail(err)}\n    {tail(self.workdir / f'{name}.log')}"

        return self._await(60 + 30 * processes, logs, ready)

    def bare(self, processes: int) -> str:
        """The bare Tornado server (``bench.bare``) on ``processes`` processes: its URL."""
        out = self.workdir / f"bare{processes}.stdout"
        argv = [sys.executable, "-m", "bench.bare", "--processes", str(processes)]
        with out.open("ab") as stdout:
            self._spawn(f"bare{processes}", argv, stdout, subprocess.STDOUT, cwd=ROOT)

        def ready() -> str | None:
            found = BARE_READY.search(out.read_text(errors="replace"))
            return found.group(1) if found else None

        return self._await(30, lambda: tail(out), ready)

    def stop_one(self, name: str) -> None:
        """Stop the process ``name`` now (the others stay up)."""
        for i, (found, proc) in enumerate(self.procs):
            if found == name:
                del self.procs[i]
                self.exit_codes[name] = _terminate(name, proc)
                return

    def _spawn(self, name: str, argv: list[str], out: Any, err: Any, **kwargs: Any) -> None:
        """``argv`` in a session of its own, dying with the bench; last in ``procs``."""
        kwargs |= {"stdin": subprocess.DEVNULL, "stdout": out, "stderr": err}
        proc = subprocess.Popen(argv, **kwargs, start_new_session=True, preexec_fn=_die_with_parent)
        self.procs.append((name, proc))

    def _await(self, timeout: float, logs: Callable[[], str], ready: Callable[[], T | None]) -> T:
        """``ready()`` once not None; StackError (with ``logs()``) if the last one started exits."""
        name, proc = self.procs[-1]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(f"{name} exited with {proc.returncode}:\n    {logs()}")
            if (found := ready()) is not None:
                return found
            time.sleep(0.1)
        raise StackError(f"{name} not ready within {timeout:.0f} s:\n    {logs()}")

    def stop(self) -> None:
        while self.procs:
            name, proc = self.procs.pop()
            self.exit_codes[name] = _terminate(name, proc)


def _terminate(name: str, proc: subprocess.Popen[bytes], grace: float = 15.0) -> int:
    if proc.poll() is not None:
        print(f"bench: {name} had already exited with {proc.returncode}", flush=True)
        return proc.returncode
    proc.terminate()
    try:
        code = proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        print(f"bench: {name} did not stop in {grace:.0f} s; killing it", flush=True)
        proc.kill()
        code = proc.wait()
    print(f"bench: stopped {name} (pid {proc.pid}, exit {code})", flush=True)
    return code
