"""``microcourt serve --processes 2``: both workers serve on one port and one database, a rate
limit holds across them, each background job is held by one of them, and SIGTERM stops all."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pymongo import MongoClient

from server.platform.config import load_settings
from tests.factories import READY, clean_env
from tests.waiting import until

EMBEDDED = re.compile(r"embedded database up on port (\d+)")
JOBS = {"deadline-sweep", "hearing-reminders", "fee-deadlines", "payment-expiry"}
JOBS |= {"outbox", "workorder-sweep"}


def fresh(api: str, method: str, path: str, body: Any = None) -> tuple[int, Any, str]:
    """One request on a connection of its own (so the kernel may pick either worker)."""
    url = urlsplit(api)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=20)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        res = conn.getresponse()
        return res.status, json.loads(res.read() or b"null"), res.getheader("X-Request-Id") or ""
    finally:
        conn.close()


@contextmanager
def serving_two(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    env = clean_env(MICROCOURT_WORKORDERS__SWEEP_SECONDS="1")
    err = tmp_path / "stderr.log"
    with err.open("w") as stderr:
        serve = ["serve", "--port", "0", "--processes", "2", "--data-dir", str(tmp_path / "d")]
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", *serve],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        match = READY.match(line)
        assert match, f"unexpected first line: {line!r}\n{err.read_text()[-2000:]}"
        yield proc, match[1], err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_two_processes_serve_share_limits_and_run_each_job_once(tmp_path: Path) -> None:
    with serving_two(tmp_path) as (proc, api, err):
        # both serve: each process makes request ids under a prefix of its own
        prefixes = {fresh(api, "GET", "/healthz")[2][:16] for _ in range(40)}
        assert len(prefixes) == 2
        # the sign-in limit is one allowance, whichever process counts the attempt
        limit = load_settings().security.login_attempts_per_minute
        tries = [
            fresh(api, "POST", "/api/v1/auth/wx-login", {"code": f"bad{i}"})
            for i in range(limit + 1)
        ]
        assert [status for status, _, _ in tries] == [401] * limit + [429]
        assert len({rid[:16] for _, _, rid in tries}) == 2, "both processes counted attempts"
        # each background job is held by one process, and stays with it
        port = int(EMBEDDED.findall(err.read_text())[0])
        with MongoClient[dict[str, Any]](f"mongodb://127.0.0.1:{port}/?directConnection=true") as c:
            db = c[load_settings().mongodb.database]
            held = wait(lambda: _held(db) if set(_held(db)) >= JOBS else None)
            sweeps = db["leases"].find_one({"_id": "workorder-sweep"})
            assert sweeps is not None
            # the sweep runs every second in both; three rounds later one process still holds it
            wait(lambda: db["leases"].find_one({"_id": "workorder-sweep"}) != sweeps)
            assert _held(db)["workorder-sweep"] == held["workorder-sweep"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


def wait(predicate: Callable[[], Any]) -> Any:
    return asyncio.run(until(predicate, timeout=60, every=0.2))


def _held(db: Any) -> dict[str, str]:
    return {doc["_id"]: doc["owner"] for doc in db["leases"].find({})}
