"""The statistics' rollups: what each order adds to the report, kept per court, local day
and grouping (assignee, category, court, channel) and, inside, per key of that grouping; a
year's report reads 365 documents a court instead of every order.

Pure functions only: server/workorders/store.py writes the cells, in the transaction of
the order's own change, by the difference between what the order added before the change
and what it adds after (``delta``); server/workorders/stats.py adds them up (``merge``).

A cell is one document per (court, grouping, day) holding every key of that grouping
(``g.<key>``): the report reads one document a day whatever the number of assignees,
categories or channels, which measured faster than a document per key (7,300 a year at 20
assignees: 1 s to read alone; README, "Work-order statistics").

What a key keeps: the exact counts (received, replied, closed, on_time, called_back, rated,
rating_sum), and

- ``s``: the first replies' elapsed seconds, every one, as a sorted array of 64-bit floats
  packed in one binary value (the float is the order's own, so the ranks, hence the
  percentiles, are exactly the aggregation's). Packed and sorted because a year's report
  merges about a million of them: a binary decodes at once where a BSON array or a map of
  value -> count is decoded (and a map's keys parsed) value by value, and sorted runs merge
  faster than unsorted values sort. Changed by a read and a write of that one key's array
  in the order's transaction (a write conflict retries it, as for any change).
- ``w``: the unanswered orders' first-reply deadlines -> number of orders: ``due`` counts
  them once passed at the report's ``now``.
- ``o``: the open orders' ``overdue_at`` -> number: ``overdue_now`` counts those passed.

A deadline is kept by its minute, the first whole minute at or after it (``deadline_key``),
and a report is as of a whole minute (``as_of``): a deadline has passed at that minute
exactly when its minute has, so the counts stay the aggregation's. Kept to the millisecond,
every order had added keys of its own to its day's cells, which grew with every order of the
day, and each write of a cell rewrote (and SecantusDB diffed) all of them: after ~4,000
orders in a day the raw message row fell from ~470 to ~290 a second (README, "Performance").
By the minute, a day's cell holds at most the minutes its deadlines fall on.

The two time-dependent counts are kept as deadlines, not as flags, so that nothing has to
move them as time passes. A deadline whose count falls to 0 is removed, so the maps hold
only what is still there.
"""

from __future__ import annotations

import array
import datetime as dt
import enum
import itertools
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from models.workorders import Channel, GroupBy
from server.platform.clock import SHANGHAI
from server.platform.config import Settings

COUNTS = ("received", "replied", "closed", "on_time", "called_back", "rated", "rating_sum")
MAPS = ("w", "o")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MS = dt.timedelta(milliseconds=1)
MINUTE_MS = 60_000
#: the fields of an order a cell counts (what the rebuild reads)
COUNTED = {
    **dict.fromkeys(("court_id", "created_at", "assignee_id", "category", "channel"), 1),
    **dict.fromkeys(("status", "first_reply_seconds", "first_reply_on_time"), 1),
    **dict.fromkeys(("first_reply_due_at", "overdue_at", "called_back", "rating_score"), 1),
}

ZoneOf = Callable[[str], dt.tzinfo]


@dataclass
class KeyChange:
    """What changes in one key of one cell: counts and deadlines (``inc``, by field path
    under the key), first-reply seconds added (+n) or taken away (-n)."""

    key: Any
    inc: Counter[str] = field(default_factory=Counter)
    seconds: Counter[float] = field(default_factory=Counter)

    def empty(self) -> bool:
        return not any(self.inc.values()) and not any(self.seconds.values())


#: cell id -> (the fields naming the cell, key name -> its change)
Delta = dict[str, tuple[dict[str, Any], dict[str, KeyChange]]]


def zones(settings: Settings) -> ZoneOf:
    """Each court's time zone (its days are the report's days); Shanghai for one unknown."""
    by_court = {c.id: ZoneInfo(c.timezone) for c in settings.courts}
    return lambda court_id: by_court.get(court_id, SHANGHAI)


def deadline_key(t: dt.datetime) -> str:
    """A deadline as a key: the first whole minute at or after it, in milliseconds since the
    epoch."""
    ms = (t - EPOCH) // MS
    return f"t{-(-ms // MINUTE_MS) * MINUTE_MS}"


def ms_of(key: str) -> int:
    return int(key[1:])


def as_of(now: dt.datetime) -> dt.datetime:
    """The whole minute a report is as of: ``now`` without its seconds."""
    return now.replace(second=0, microsecond=0)


def key_name(key: Any) -> str:
    """A grouping's key as a field name: no dot, no leading ``$``, None as ``-``."""
    if key is None:
        return "-"
    return "k" + str(key).replace("%", "%25").replace(".", "%2E")


def pack(values: Iterable[float]) -> bytes:
    """Seconds as a sorted little-endian float64 array."""
    packed = array.array("d", sorted(values))
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


def unpack(blob: bytes | None) -> array.array[float]:
    found = array.array("d")
    found.frombytes(blob or b"")
    if sys.byteorder == "big":
        found.byteswap()
    return found


def _get(order: Any, name: str) -> Any:
    value = order.get(name) if isinstance(order, dict) else getattr(order, name, None)
    return value.value if isinstance(value, enum.Enum) else value


def group_key(order: Any, group_by: GroupBy) -> Any:
    """The order's key under ``group_by``, as the aggregation's ``KEYS`` computes it."""
    if group_by == GroupBy.channel:
        return _get(order, "channel") or Channel.miniprogram.value
    names = {GroupBy.assignee: "assignee_id", GroupBy.category: "category"}
    return _get(order, names.get(group_by, "court_id"))


def cells_of(order: Any, zone_of: ZoneOf) -> list[tuple[str, dict[str, Any], Any]]:
    """The order's cells: (id, the fields naming it, the order's key there), one per
    grouping."""
    court = _get(order, "court_id")
    day = _get(order, "created_at").astimezone(zone_of(court)).date().isoformat()
    out = []
    for group_by in GroupBy:
        fields = {"court_id": court, "by": group_by.value, "day": day}
        out.append((f"{court}|{group_by.value}|{day}", fields, group_key(order, group_by)))
    return out


def adds(order: Any) -> dict[str, int]:
    """The counts and deadlines the order adds under its key in each of its cells."""
    seconds, score = _get(order, "first_reply_seconds"), _get(order, "rating_score")
    out = {
        "received": 1,
        "replied": int(seconds is not None),
        "closed": int(_get(order, "status") == "closed"),
        "on_time": int(_get(order, "first_reply_on_time") is True),
        "called_back": int(_get(order, "called_back") is True),
        "rated": int(score is not None),
        "rating_sum": score or 0,
    }
    if seconds is None and _get(order, "first_reply_due_at") is not None:
        out[f"w.{deadline_key(_get(order, 'first_reply_due_at'))}"] = 1
    if _get(order, "overdue_at") is not None:
        out[f"o.{deadline_key(_get(order, 'overdue_at'))}"] = 1
    return out


def delta(changes: Iterable[tuple[Any | None, Any | None]], zone_of: ZoneOf) -> Delta:
    """What the orders' changes (before, after; None: no order) make of their cells, with
    nothing that does not change: an empty result writes nothing."""
    out: Delta = {}
    for before, after in changes:
        for order, sign in ((before, -1), (after, 1)):
            if order is None:
                continue
            add, seconds = adds(order), _get(order, "first_reply_seconds")
            for cid, fields, key in cells_of(order, zone_of):
                keys = out.setdefault(cid, (fields, {}))[1]
                change = keys.setdefault(key_name(key), KeyChange(key))
                change.inc.update({f: sign * n for f, n in add.items()})
                if seconds is not None:
                    change.seconds[float(seconds)] += sign
    for cid in list(out):
        keys = {k: c for k, c in out[cid][1].items() if not c.empty()}
        out[cid] = (out[cid][0], keys)
        if not keys:
            del out[cid]
    return out


def applied(blob: bytes | None, seconds: Counter[float]) -> bytes:
    """A key's packed seconds with ``seconds`` added (+n) or taken away (-n)."""
    have = Counter(unpack(blob))
    have.update(seconds)
    return pack(itertools.chain.from_iterable(itertools.repeat(v, n) for v, n in have.items()))


def build(
    orders: Iterable[Any], zone_of: ZoneOf, cells: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``cells`` (by id) with ``orders`` added, their seconds as lists: the rebuild, a batch
    of orders at a time (``packed`` then readies them to be stored)."""
    for order in orders:
        add, seconds = adds(order), _get(order, "first_reply_seconds")
        for cid, fields, key in cells_of(order, zone_of):
            cell = cells.setdefault(cid, {"_id": cid, **fields, "g": {}})
            kept = cell["g"].setdefault(key_name(key), {"key": key, "s": [], "w": {}, "o": {}})
            for name, n in add.items():
                if "." in name:
                    m, k = name.split(".", 1)
                    kept[m][k] = kept[m].get(k, 0) + n
                else:
                    kept[name] = kept.get(name, 0) + n
            if seconds is not None:
                kept["s"].append(float(seconds))
    return cells


def packed(cell: dict[str, Any]) -> dict[str, Any]:
    """A built cell as stored: each key's seconds packed."""
    g = {k: {**v, "s": pack(v["s"])} for k, v in cell["g"].items()}
    return {**cell, "g": g}


def normal(cell: dict[str, Any]) -> dict[str, Any]:
    """A cell without zero counts, empty maps or keys that count nothing (a cell kept
    through changes and one built from the orders are then equal when they count the same)."""
    g = {}
    for name, kept in cell.get("g", {}).items():
        if not kept.get("received"):
            continue
        out = {"key": kept.get("key"), "s": bytes(kept.get("s") or b"")}
        out.update({f: kept[f] for f in COUNTS if kept.get(f)})
        out.update({m: {k: n for k, n in kept[m].items() if n} for m in MAPS if kept.get(m)})
        g[name] = {k: v for k, v in out.items() if v != {}}
    return {**{k: v for k, v in cell.items() if k != "g"}, "g": g}


class Merged:
    """One key's cells added up, at the report's ``now``."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.runs = array.array("d")
        self.seconds: list[float] = []

    def add(self, kept: dict[str, Any], now_ms: int) -> None:
        for name in COUNTS:
            self.counts[name] += int(kept.get(name) or 0)
        waiting = kept.get("w") or {}
        self.counts["due"] += int(kept.get("replied") or 0)
        self.counts["due"] += sum(n for k, n in waiting.items() if ms_of(k) <= now_ms)
        late = kept.get("o") or {}
        self.counts["overdue_now"] += sum(n for k, n in late.items() if ms_of(k) <= now_ms)
        self.runs.extend(unpack(kept.get("s")))

    def sort(self) -> None:
        """The seconds in order: sorted runs, one a day, which a sort merges quickly."""
        self.seconds = sorted(self.runs)
        self.runs = array.array("d")

    def at_ranks(self, wanted: Iterable[int]) -> dict[int, float]:
        """The 1-based ranks ``wanted`` of the replies sorted by time: their values."""
        return {r: self.seconds[r - 1] for r in wanted if 1 <= r <= len(self.seconds)}


def merge(cells: Iterable[dict[str, Any]], now: dt.datetime) -> tuple[dict[Any, Merged], Merged]:
    """A grouping's cells, added up per key and over all keys; keys no order is counted in
    any more (all moved to another assignee) are left out, as the aggregation never sees
    them."""
    now_ms = (now - EPOCH) // MS
    groups: dict[Any, Merged] = defaultdict(Merged)
    for cell in cells:
        for kept in cell.get("g", {}).values():
            groups[kept.get("key")].add(kept, now_ms)
    groups = {k: g for k, g in groups.items() if g.counts["received"] > 0}
    total = Merged()
    for g in groups.values():
        g.sort()
        total.counts.update(g.counts)
    total.seconds = sorted(itertools.chain.from_iterable(g.seconds for g in groups.values()))
    return groups, total
