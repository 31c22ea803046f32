"""The embedded database's TTL sweeper (``server.platform.mongo.embedded_storage``) lets go of
its WiredTiger session once a sweep ends: no snapshot or positioned cursor of it stays behind,
between sweeps, to keep other writers' pages from being evicted."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
from secantus.storage import Storage

from server.platform.mongo import embedded_storage

SWEEP_SECONDS = 0.2


def sessions_holding_a_snapshot(store: Any, capfd: pytest.CaptureFixture[str]) -> int:
    """WiredTiger's own account of its sessions with a snapshot open (printed to stdout)."""
    capfd.readouterr()
    store._conn.debug_info("txn=true")
    dump = capfd.readouterr().out
    active = dump.split("Transaction state of active sessions:", 1)[1]
    return active.count("pinned ID:")


def after_a_sweep(made: type, path: Path, capfd: pytest.CaptureFixture[str]) -> int:
    store = made(str(path), ttl_sweep_seconds=SWEEP_SECONDS)
    try:
        store.create_index("db", "limits", "expire", {"expires_at": 1}, {"expireAfterSeconds": 0})
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        store.insert("db", "limits", [{"expires_at": later} for _ in range(20)])
        store.release_thread_snapshot()  # as a connection does once its request is answered
        time.sleep(SWEEP_SECONDS * 3)  # the sweeper has read the TTL index and parked
        for i in range(50):  # other writers meanwhile
            store.insert("db", "other", [{"n": i}])
            store.release_thread_snapshot()
        return sessions_holding_a_snapshot(store, capfd)
    finally:
        store.close()


def test_the_stock_sweeper_parks_holding_a_snapshot(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # what the accommodation is for: if this fails, SecantusDB has mended it itself
    assert after_a_sweep(Storage, tmp_path, capfd) >= 1


def test_the_sweeper_holds_nothing_between_sweeps(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert after_a_sweep(embedded_storage(), tmp_path, capfd) == 0


def test_the_sweeper_still_removes_what_expired(tmp_path: Path) -> None:
    store = embedded_storage()(str(tmp_path), ttl_sweep_seconds=SWEEP_SECONDS)
    try:
        store.create_index("db", "limits", "expire", {"expires_at": 1}, {"expireAfterSeconds": 0})
        now = dt.datetime.now(dt.UTC)
        gone, kept = now - dt.timedelta(minutes=1), now + dt.timedelta(hours=1)
        store.insert("db", "limits", [{"expires_at": gone, "n": 1}, {"expires_at": kept, "n": 2}])
        store.release_thread_snapshot()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            left = [d["n"] for d in store.find_matching("db", "limits", {})]
            store.release_thread_snapshot()
            if left == [2]:
                break
            time.sleep(SWEEP_SECONDS)
        assert left == [2]
    finally:
        store.close()
