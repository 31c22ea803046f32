"""A diagnostic of the embedded database: WiredTiger's own statistics, sampled from inside the
server process (``run_embedded`` starts ``sample_wiredtiger`` when ``MICROCOURT_WT_STATS`` is
set). It found what stalled the bench (``server.platform.mongo.embedded_storage``)."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

#: A diagnostic: with ``MICROCOURT_WT_STATS=<file>`` set, the embedded server appends a line of
#: WiredTiger's cache and transaction statistics to the file every second (``sample_wiredtiger``).
WT_STATS_ENV = "MICROCOURT_WT_STATS"

#: A pinned range of transaction IDs this wide has WiredTiger's sessions dumped to the log.
WT_PINNED_DUMP = 3000
#: ... and so do this many forced evictions refused in a second.
WT_REFUSED_DUMP = 500

#: The statistics sampled: gauges as read, counters as the change over the second.
WT_GAUGES = (
    "cache: bytes currently in the cache",
    "cache: tracked dirty bytes in the cache",
    "transaction: transaction range of IDs currently pinned",
    "transaction: transaction range of IDs currently pinned by a checkpoint",
    "transaction: transaction checkpoint currently running",
)
WT_COUNTERS = (
    "cache: forced eviction - pages selected unable to be evicted count",
    "cache: pages selected for eviction unable to be evicted",
    "cache: pages selected for eviction unable to be evicted because of failure in reconciliation",
    "cache: pages selected for eviction unable to be evicted because of race between"
    " checkpoint and updates without timestamps",
    "cache: pages evicted by application threads",
    "cache: application threads page read from disk to cache count",
    "cache: unmodified pages evicted",
    "cache: modified pages evicted",
    "transaction: transaction checkpoints",
    "cache: hazard pointer blocked page eviction",
    "cache: internal page split blocked its eviction",
    "cache: eviction gave up due to no progress being made",
)
#: Per table, its change over the second: the tables most refused eviction are named.
WT_TABLE_COUNTERS = (
    "cache: data source pages selected for eviction unable to be evicted",
    "cache: hazard pointer blocked page eviction",
)


def _table_counters(session: Any) -> dict[str, list[int]]:
    """Each WiredTiger table's ``WT_TABLE_COUNTERS``."""
    meta = session.open_cursor("metadata:", None, None)
    names = []
    while meta.next() == 0:
        key = meta.get_key()
        if key.startswith("table:"):
            names.append(key)
    meta.close()
    found: dict[str, list[int]] = {}
    for name in names:
        try:
            cursor = session.open_cursor("statistics:" + name, None, "statistics=(fast)")
        except Exception:
            continue
        values = dict.fromkeys(WT_TABLE_COUNTERS, 0)
        while cursor.next() == 0:
            desc, _shown, value = cursor.get_values()
            if desc in values:
                values[desc] = int(value)
        cursor.close()
        found[name] = list(values.values())
    return found


def sample_wiredtiger(conn: Any, path: str, every: float = 1.0) -> None:
    """Append ``WT_GAUGES`` and the change of ``WT_COUNTERS`` to ``path`` each ``every`` s,
    one JSON line each, read in a WiredTiger session of its own each time (SecantusDB closes
    every session when it drops a database)."""
    conn.reconfigure("statistics=(fast)")
    wanted = set(WT_GAUGES) | set(WT_COUNTERS)
    before: dict[str, int] = {}
    next_dump = 0.0
    tables_before: dict[str, list[int]] = {}
    tables: dict[str, list[int]] = {}
    while True:
        now: dict[str, int] = {}
        try:
            session = conn.open_session()
            try:
                cursor = session.open_cursor("statistics:", None, None)
                while cursor.next() == 0:
                    desc, _shown, value = cursor.get_values()
                    if desc in wanted:
                        now[desc] = int(value)
                cursor.close()
                tables = _table_counters(session)
            finally:
                session.close()
        except Exception as e:  # the store closing under it: the line says so
            now = {}
            error = repr(e)
        else:
            error = ""
        line: dict[str, Any] = {"t": round(time.time(), 1)}
        if error:
            line["error"] = error
        line |= {k.split(": ", 1)[1]: now.get(k, 0) for k in WT_GAUGES}
        line |= {k.split(": ", 1)[1]: now.get(k, 0) - before.get(k, 0) for k in WT_COUNTERS}
        before = now or before
        if not error:
            moved = {
                t: [v - tables_before.get(t, [0, 0])[i] for i, v in enumerate(vs)]
                for t, vs in tables.items()
            }
            top = sorted(moved.items(), key=lambda kv: -sum(kv[1]))[:3]
            line["tables"] = {t: v for t, v in top if sum(v)}
            tables_before = tables
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")
        pinned = line["transaction range of IDs currently pinned"]
        refused = line["forced eviction - pages selected unable to be evicted count"]
        stuck = pinned >= WT_PINNED_DUMP or refused >= WT_REFUSED_DUMP
        if stuck and time.monotonic() >= next_dump:
            # who pins: every session's transaction and last operation, to the server's log
            next_dump = time.monotonic() + 20
            with contextlib.suppress(Exception):
                conn.debug_info("txn=true,sessions=true")
        time.sleep(every)
